//go:build linux

// Package futex is the futex(2) wait and wake on a word of a shared
// mapping that package semaphore and package queue sleep on.
package futex

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
	opWait = 0 // FUTEX_WAIT
	opWake = 1 // FUTEX_WAKE
)

// Wait sleeps while *w == val, for at most d. It returns early on a wake,
// a signal or a changed value; callers re-check the word either way. It
// reports whether the sleep ran out its time. It is a blocking syscall
// through unix.Syscall6 (not RawSyscall), so the Go scheduler hands this
// thread's P to other goroutines meanwhile.
func Wait(w *atomic.Uint32, val uint32, d time.Duration) (timedOut bool) {
	ts := unix.NsecToTimespec(int64(d))
	_, _, e := unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), opWait, uintptr(val), uintptr(unsafe.Pointer(&ts)), 0, 0)
	return e == unix.ETIMEDOUT
}

// Wake wakes up to n processes waiting on w.
func Wake(w *atomic.Uint32, n int) {
	unix.Syscall6(unix.SYS_FUTEX, uintptr(unsafe.Pointer(w)), opWake, uintptr(n), 0, 0, 0)
}
