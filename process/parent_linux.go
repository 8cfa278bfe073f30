//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

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

// parentPoll is how often the parent's death is looked for where no pidfd
// can be had.
const parentPoll = 100 * time.Millisecond

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
// later process with the same pid is never mistaken for it; where no
// pidfd can be had, by polling getppid every parentPoll (100 ms). In a
// child in a PID namespace of its own it is never closed (see Join).
func (p *ParentProcess) Done() <-chan struct{} {
	p.watch()
	return p.done
}

// IsAlive reports whether the parent is alive. In a child started in a
// PID namespace of its own it reports false: the parent cannot be seen.
func (p *ParentProcess) IsAlive() bool {
	p.watch()
	if p.err != nil {
		return false
	}
	if !isClosed(p.done) && os.Getppid() != p.pid {
		return false // dead, and the watcher has yet to say so
	}
	return !isClosed(p.done)
}

// Join waits until the parent has died, or ctx is done. In a child started
// in a PID namespace of its own it fails at once with an error wrapping
// errors.ErrUnsupported. Where pidfd_open fails (a kernel before 5.3, a
// seccomp filter), the death is seen by polling getppid, within
// parentPoll.
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
			// No pidfd (a kernel before 5.3, a seccomp filter, no
			// file descriptor left): watch getppid instead, which
			// changes when the parent dies and this process is
			// reparented. A poll, every parentPoll, for want of
			// anything to wait on.
			go func() {
				for os.Getppid() == p.pid {
					time.Sleep(parentPoll)
				}
				close(p.done)
			}()
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
