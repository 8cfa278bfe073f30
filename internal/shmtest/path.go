//go:build linux

package shmtest

import (
	"testing"

	"github.com/shmkit/shmkit/shm"
)

// Path is the file of the segment name (shm.Path), for a test that
// reaches the file itself (testproc's HoldFile).
func Path(t testing.TB, name string) string {
	t.Helper()
	p, err := shm.Path(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
