//go:build linux

package process

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// envWarm marks a child started ahead of need (KeepWarm): it waits on fd 3
// for what to run.
const envWarm = "SHMKIT_PROCESS_WARM"

// KeepWarm keeps n children started ahead of need, what Python's
// forkserver start method is for: a Start then hands one of them its
// entry over a pipe instead of executing the program anew, and another is
// started in the background to take its place. Start+Join of a child that
// does nothing took p50 3.0 ms cold and 0.45-0.61 ms warm on the machine
// of docs/runs (docs/runs/spawn.txt; Python's fork: 1.7 ms). Start waits
// for the warm child to say it has its entry, so that a SIGKILL of this
// process right after Start treats it as it would a cold child.
//
// A warm child is the program as it was when the child was started: its
// environment and working directory are the parent's then, not at Start.
// Processes with Stdout or Stderr set, or NewPIDNamespace, are always
// started cold. A warm child dies with its parent until it is given an
// entry (Pdeathsig); then it is a daemon or not as its Process says.
//
// KeepWarm(0) stops the idle children and waits for them; Main does so
// before it exits. It fails with ErrNoMain or ErrDaemonChildren as Start
// does.
func KeepWarm(n int) error {
	switch {
	case self.Daemon:
		return ErrDaemonChildren
	case !mainCalled.Load():
		return ErrNoMain
	case n < 0:
		return fmt.Errorf("process: KeepWarm(%d): want 0 or more", n)
	}
	warm.mu.Lock()
	warm.want = n
	var stop []*warmChild
	for len(warm.idle) > n {
		stop = append(stop, warm.idle[len(warm.idle)-1])
		warm.idle = warm.idle[:len(warm.idle)-1]
	}
	refillWarm()
	warm.mu.Unlock()
	for _, w := range stop {
		w.stop()
	}
	if n == 0 {
		warm.starting.Wait() // children still being started stop themselves
	}
	return nil
}

var warm struct {
	mu       sync.Mutex
	want     int
	idle     []*warmChild
	inFlight int
	starting sync.WaitGroup
}

// warmChild is a child started ahead of need, waiting on its pipe.
type warmChild struct {
	cmd    *exec.Cmd
	req    *os.File      // our end of the socket pair: what to run goes here
	exited chan struct{} // closed when cmd.Wait has returned
}

// refillWarm starts children in the background until the idle and the
// starting ones make warm.want. Called with warm.mu held.
func refillWarm() {
	for len(warm.idle)+warm.inFlight < warm.want {
		warm.inFlight++
		warm.starting.Add(1)
		go func() {
			defer warm.starting.Done()
			c, err := startWarm()
			warm.mu.Lock()
			warm.inFlight--
			if err == nil && len(warm.idle) < warm.want {
				warm.idle = append(warm.idle, c)
				c = nil
			}
			warm.mu.Unlock()
			if c != nil {
				c.stop()
			}
		}()
	}
}

// startWarm starts one child that waits for its entry on fd 3. Like a
// daemon it is started from the spawner's thread with Pdeathsig: idle, it
// dies with its parent.
func startWarm() (*warmChild, error) {
	// A socket pair, not a pipe: the child answers on it once it has
	// its entry (see takeWarm).
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("socketpair", err)
	}
	w, r := os.NewFile(uintptr(fds[0]), "warm"), os.NewFile(uintptr(fds[1]), "warm-child")
	cmd := exec.Command(selfExe)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(os.Environ(), envWarm+"=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	cmd.ExtraFiles = []*os.File{r}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	err = spawn(cmd, true)
	r.Close()
	if err != nil {
		w.Close()
		return nil, err
	}
	c := &warmChild{cmd: cmd, req: w, exited: make(chan struct{})}
	go func() {
		cmd.Wait() // reaped as soon as it exits, idle or not
		close(c.exited)
	}()
	return c, nil
}

// stop closes the child's pipe, which makes an idle child exit, and waits
// for it.
func (c *warmChild) stop() {
	c.req.Close()
	<-c.exited
}

// takeWarm hands spec to an idle warm child and returns it, or nil when
// there is none that is alive. It starts a replacement.
func takeWarm(spec wireSpec) *warmChild {
	for {
		warm.mu.Lock()
		if len(warm.idle) == 0 {
			warm.mu.Unlock()
			return nil
		}
		c := warm.idle[0]
		warm.idle = warm.idle[1:]
		refillWarm()
		warm.mu.Unlock()
		// The child answers once it has its entry and has made itself
		// what the Process says (a non-daemon stops dying with us):
		// when Start returns, a SIGKILL of this process treats the
		// child as it would treat a cold one.
		err := json.NewEncoder(c.req).Encode(spec)
		if err == nil {
			var ack [1]byte
			_, err = io.ReadFull(c.req, ack[:])
		}
		c.req.Close()
		if err == nil {
			return c
		}
		<-c.exited // it died idle (EPIPE, or no answer): try the next
	}
}

// wireSpec is childSpec on the pipe.
type wireSpec struct {
	Entry, Name, Identity string
	Daemon                bool
	Parent                int
	ParentName            string
	Args                  []string
}

// runWarm is a warm child's Main: it waits for its entry, then runs it
// as Start's children do. A closed pipe (KeepWarm(0), or its parent gone)
// ends it quietly.
func runWarm() int {
	f := os.NewFile(3, "warm")
	var s wireSpec
	if err := json.NewDecoder(f).Decode(&s); err != nil {
		return 0
	}
	if !s.Daemon {
		// Started to die with its parent; given an entry that
		// outlives it, as a cold non-daemon child does.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0); err != nil {
			fmt.Fprintf(os.Stderr, "process: warm child: prctl: %v\n", err)
			return 2
		}
	}
	if _, err := f.Write([]byte{1}); err != nil {
		return 2 // the parent gave up on us
	}
	f.Close()
	return runChild(childSpec{
		entry: s.Entry, name: s.Name, identity: s.Identity, daemon: s.Daemon,
		parent: s.Parent, parentName: s.ParentName, args: s.Args,
	})
}
