//go:build linux

// Package tserver starts a redis-server for a test: redistest.Start in a
// temporary directory, stopped when the test ends. It is apart from
// redistest because the bench links redistest, and this imports testing.
package tserver

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/shmkit/shmkit/internal/redistest"
)

// Start starts a redis-server for t (durable: an append-only file fsynced
// on every write). Without the binary the test is skipped, except where
// SHMKIT_REQUIRE_REDIS is set (CI), where it fails.
func Start(t testing.TB, durable bool) *redistest.Server {
	t.Helper()
	s, err := redistest.Start(filepath.Join(t.TempDir(), "redis"), durable)
	if errors.Is(err, redistest.ErrNoServer) && os.Getenv("SHMKIT_REQUIRE_REDIS") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}
