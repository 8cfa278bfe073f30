//go:build linux

package semaphore

import (
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Shared (not FUTEX_PRIVATE_FLAG) futex operations: the word lives in a
// MAP_SHARED mapping used by several processes, and the kernel keys the
// wait queue on the page, not on this process's address.
const (
	futexWait = 0 // FUTEX_WAIT
	futexWake = 1 // FUTEX_WAKE
)

// wait sleeps while *w == val, for at most d. It returns early on a wake, a
// signal or a changed value; callers re-check the word either way. It
// reports whether the sleep ran out its time. It is a blocking syscall
// through unix.Syscall6 (not RawSyscall), so the Go scheduler hands this
// thread's P to other goroutines meanwhile.
func wait(w *atomic.Uint32, val uint32, d time.Duration) (timedOut bool) {
	ts := unix.NsecToTimespec(int64(d))
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWait, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
	return e == unix.ETIMEDOUT
}

// wake wakes up to n processes waiting on w.
func wake(w *atomic.Uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), futexWake, uintptr(n), 0, 0, 0)
}

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
