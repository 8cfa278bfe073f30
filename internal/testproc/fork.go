//go:build linux

package testproc

import (
	"fmt"
	"strconv"
	"strings"
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

// ForkAndPark is a child entry's end: it runs child in a fork without
// exec (ForkWithoutExec), says "forked <pid>" on stdout for the test
// (Proc.Forked), and waits to be killed. It returns only if the fork
// failed, with the entry's exit status.
func ForkAndPark(child func()) int {
	pid, err := ForkWithoutExec(child)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("forked", pid)
	for {
		time.Sleep(time.Hour)
	}
}

// Forked waits for the "forked <pid>" line of a child that called
// ForkAndPark and returns the fork's pid.
func (p *Proc) Forked() int {
	p.t.Helper()
	pid, err := strconv.Atoi(strings.TrimSpace(p.ExpectPrefix("forked ")))
	if err != nil {
		p.t.Fatalf("forked: %v", err)
	}
	return pid
}

// RawSleep sleeps d with a raw nanosleep, for a fork's child (see
// ForkWithoutExec): time.Sleep needs the runtime's scheduler.
func RawSleep(d time.Duration) {
	ts := unix.NsecToTimespec(int64(d))
	unix.RawSyscall(unix.SYS_NANOSLEEP, uintptr(unsafe.Pointer(&ts)), 0, 0)
}
