//go:build linux

// Package tserver starts a redis-server for a test: redistest.Start in a
// temporary directory, stopped when the test ends. It is apart from
// redistest because the bench links redistest, and this imports testing.
package tserver

import (
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/redistest"
	"github.com/shmkit/shmkit/internal/testproc"
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

// CrashWhileSelling SIGKILLs srv and restarts it after a pause of up to
// maxPause, at most n times, while buyers sell: about 300 tickets between
// crashes, until remaining (the counter's, read through the server) says
// the sale is over. It returns how many restarts it made.
func CrashWhileSelling(t testing.TB, srv *redistest.Server, n int, maxPause time.Duration, remaining func() int64) int {
	t.Helper()
	restarts := 0
	for last := remaining(); restarts < n; {
		r := remaining()
		if r == 0 {
			break
		}
		if r > last-300 {
			time.Sleep(time.Millisecond) // sell a little between crashes
			continue
		}
		srv.Kill()
		time.Sleep(rand.N(maxPause))
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		restarts++
		last = remaining()
	}
	return restarts
}

// Collect waits for buyer processes and reads what they print: a line
// "tickets n n n ..." of the tickets each received, and a line
// "uncertain N unavailable N" of the purchases it was told were not known
// or not made.
func Collect(ps []*testproc.Proc) (tickets []int64, uncertain, unavailable int) {
	for _, p := range ps {
		p.MustExitWithin(2 * time.Minute)
		for _, line := range strings.Split(p.Output(), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 0 && f[0] == "tickets":
				for _, s := range f[1:] {
					n, _ := strconv.ParseInt(s, 10, 64)
					tickets = append(tickets, n)
				}
			case len(f) == 4 && f[0] == "uncertain":
				u, _ := strconv.Atoi(f[1])
				a, _ := strconv.Atoi(f[3])
				uncertain += u
				unavailable += a
			}
		}
	}
	return tickets, uncertain, unavailable
}
