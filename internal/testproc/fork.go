//go:build linux

package testproc

import (
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// ForkWithoutExec forks this process without exec, as C code called
// through cgo, daemon(3) or a non-Go program can, and returns the fork's
// pid. The fork shares this process's open files (and their OFD locks)
// and, but for MADV_DONTFORK ones, its mappings. It has one thread and a
// Go runtime that cannot run anything else: it closes stdout and stderr
// (the test reads this process's), runs child, which must touch nothing
// of the runtime but atomics and raw system calls (RawSleep), and exits.
//
//go:noinline
func ForkWithoutExec(child func()) (int, error) {
	pid, _, errno := unix.RawSyscall(unix.SYS_FORK, 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	if pid == 0 {
		unix.RawSyscall(unix.SYS_CLOSE, 1, 0, 0)
		unix.RawSyscall(unix.SYS_CLOSE, 2, 0, 0)
		child()
		unix.RawSyscall(unix.SYS_EXIT_GROUP, 0, 0, 0)
	}
	return int(pid), nil
}

// RawSleep sleeps d with a raw nanosleep, for a fork's child (see
// ForkWithoutExec): time.Sleep needs the runtime's scheduler.
func RawSleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}
