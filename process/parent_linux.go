//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"golang.org/x/sys/unix"
)

// ParentProcess is the process that started this one, as Python's
// parent_process() gives it: its pid and name, whether it is alive, and a
// way to wait for its death (a worker that should stop when its parent
// is gone, without being a daemon).
type ParentProcess struct {
	pid  int
	name string

	once sync.Once
	done chan struct{} // closed when the parent has died
	err  error         // why its death cannot be watched, if it cannot
}

// pidfdOpen is unix.PidfdOpen; tests make it fail as an old kernel's would.
var pidfdOpen = unix.PidfdOpen

// parentInfo is set by Main in a child.
var parentInfo *ParentProcess

// Parent is the process that started this one with Start, or nil in a
// process that was not started so (Python's None).
func Parent() *ParentProcess { return parentInfo }

// Pid is the parent's process id; 0 in a child started in a PID namespace
// of its own, where the parent is outside and has no number.
func (p *ParentProcess) Pid() int { return p.pid }

// Name is the parent's name ("MainProcess", "Process-1", ...).
func (p *ParentProcess) Name() string { return p.name }

// Done is closed when the parent has died. Its death is seen through a
// pidfd, opened while the parent was still this process's parent, so a
// later process with the same pid is never mistaken for it.
func (p *ParentProcess) Done() <-chan struct{} {
	p.watch()
	return p.done
}

// IsAlive reports whether the parent is alive. In a child started in a
// PID namespace of its own it reports false: the parent cannot be seen.
// Where pidfds are missing it reports whether this process's parent is
// still the one that started it.
func (p *ParentProcess) IsAlive() bool {
	p.watch()
	if p.err != nil {
		return p.pid > 0 && os.Getppid() == p.pid
	}
	return !isClosed(p.done)
}

// Join waits until the parent has died, or ctx is done. In a child started
// in a PID namespace of its own it fails at once with an error wrapping
// errors.ErrUnsupported; where the kernel has no pidfds (before 5.3, or a
// seccomp filter refuses them), with pidfd_open's error.
func (p *ParentProcess) Join(ctx context.Context) error {
	p.watch()
	if p.err != nil {
		return p.err
	}
	select {
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (p *ParentProcess) String() string {
	return fmt.Sprintf("<_ParentProcess name='%s' parent=%d>", p.name, p.pid)
}

// watch opens a pidfd on the parent and starts a goroutine that closes
// done when it becomes readable (the process has exited).
func (p *ParentProcess) watch() {
	p.once.Do(func() {
		p.done = make(chan struct{})
		if p.pid <= 0 {
			p.err = fmt.Errorf("process: the parent of a child in a PID namespace of its own cannot be watched: %w", errors.ErrUnsupported)
			return
		}
		fd, err := pidfdOpen(p.pid, 0)
		switch {
		case err == unix.ESRCH:
			close(p.done) // no such process: the parent is gone
			return
		case err != nil:
			// No pidfds here (a kernel before 5.3, a seccomp
			// filter): death cannot be waited for. IsAlive still
			// answers, from getppid.
			p.err = fmt.Errorf("process: watching the parent (pid %d): %w", p.pid, os.NewSyscallError("pidfd_open", err))
			return
		case os.Getppid() != p.pid:
			// Opened, but the parent had died before (this process
			// was reparented when it did): whoever has its number
			// now is not it.
			unix.Close(fd)
			close(p.done)
			return
		}
		// Opened while the parent was still ours: it is the parent.
		go func() {
			defer unix.Close(fd)
			fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			for {
				// A blocking poll: the runtime hands this thread's P to
				// other goroutines meanwhile. One thread per process,
				// once something asks.
				if _, err := unix.Poll(fds, -1); err != unix.EINTR {
					break
				}
			}
			close(p.done)
		}()
	})
}
