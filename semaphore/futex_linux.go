//go:build linux

package semaphore

import (
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/futex"
)

// wait and wake are package futex's, on the record's words.
func wait(w *atomic.Uint32, val uint32, d time.Duration) (timedOut bool) {
	return futex.Wait(w, val, d)
}
func wake(w *atomic.Uint32, n int) { futex.Wake(w, n) }

// A clock all processes agree on: CLOCK_MONOTONIC, read once through the
// kernel and then advanced with Go's vDSO-backed monotonic clock.
var (
	monoBase   int64
	monoAnchor = time.Now()
)

func init() {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err == nil {
		monoBase = ts.Nano() - int64(time.Since(monoAnchor))
	}
}

// monoNow is CLOCK_MONOTONIC in nanoseconds, comparable across processes.
func monoNow() int64 { return monoBase + int64(time.Since(monoAnchor)) }
