//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Process is a child process running a registered entry, like Python's
// multiprocessing.Process. Set its fields, then call Start: Start reads
// them once, and changing them afterwards has no effect on the child
// (SetDaemon says so with ErrStarted, as Python's daemon setter raises). A
// Process cannot be started twice; a Start that fails leaves it as it was,
// to be started again. Its methods are safe for concurrent use.
type Process struct {
	// Entry is the registered name of the function the child runs
	// (Python's target).
	Entry string

	// Args are passed to the entry.
	Args []string

	// Name is the child's name; empty means "Process-N", numbered in the
	// order Processes are started ("Process-1:2" for the second child of
	// Process-1), as Python names them.
	Name string

	// Daemon children are terminated when the parent's Main finishes, and
	// killed by the kernel (SIGKILL) if the parent dies, however it dies.
	// A daemon may not start children. The zero value: a child that the
	// parent's Main waits for, and that survives the parent's death as an
	// orphan.
	Daemon bool

	// Stdout and Stderr receive the child's output; nil means the
	// parent's own.
	Stdout, Stderr io.Writer

	// NewPIDNamespace starts the child as process 1 of a PID namespace of
	// its own (CLONE_NEWPID; it needs root or CAP_SYS_ADMIN), as in a
	// container: its process and thread ids start again from 1. The zero
	// value: the parent's namespace.
	NewPIDNamespace bool

	// Files are open files the child inherits (Python passes a Pipe's
	// end in args): the child finds them, in order, in Files(). A child
	// given files is started by exec, never taken from KeepWarm's
	// children, which were started before the files existed.
	Files []*os.File

	mu     sync.Mutex    // guards the fields below, and signalling against reaping
	cmd    *exec.Cmd     // nil until a Start succeeds
	daemon bool          // Daemon as Start read it
	done   chan struct{} // made by Start or Done, closed once the child is reaped
	code   int           // exit status or -signal; valid once done is closed
	seq    int64         // order of Start, for ActiveChildren
}

var (
	childSeq atomic.Int64

	activeMu sync.Mutex
	active   = map[*Process]bool{}
)

// Start starts the child. It fails with ErrStarted, ErrUnknownEntry,
// ErrDaemonChildren (in a daemon), ErrNoMain (main does not call Main) or
// the exec error (wrapped: errors.Is(err, syscall.E2BIG) for arguments too
// long, for one). After a failed Start the Process is as it was before.
//
// The child runs the very binary this process runs (/proc/self/exe), even
// if the file it was started from has since been deleted or replaced, as a
// deploy does: its entries are the parent's.
func (p *Process) Start() error {
	switch {
	case self.Daemon:
		return ErrDaemonChildren
	case !mainCalled.Load():
		return ErrNoMain
	case lookup(p.Entry) == nil:
		return fmt.Errorf("%w: %q", ErrUnknownEntry, p.Entry)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return ErrStarted
	}
	seq := childSeq.Add(1)
	n := strconv.FormatInt(seq, 10)
	id := n
	if identity != "" {
		id = identity + ":" + n
	}
	name := p.Name
	if name == "" {
		name = "Process-" + id
	}
	daemon := "0"
	if p.Daemon {
		daemon = "1"
	}
	// The child checks that its parent is the one that started it. In a
	// PID namespace of its own the parent is outside it and its pid reads
	// 0 there, whether the parent lives or not: Pdeathsig alone covers it.
	parent := strconv.Itoa(os.Getpid())
	if p.NewPIDNamespace {
		parent = "0"
	}
	env := []string{envEntry + "=" + p.Entry, envName + "=" + name, envIdentity + "=" + id,
		envDaemon + "=" + daemon, envParent + "=" + parent, envPName + "=" + self.Name}
	if len(p.Files) > 0 {
		env = append(env, envFiles+"="+strconv.Itoa(len(p.Files)))
	}
	if err := checkExec(p.Args, env); err != nil {
		return fmt.Errorf("process: start %s: %w", name, &os.PathError{Op: "fork/exec", Path: selfExe, Err: err})
	}
	if p.Stdout == nil && p.Stderr == nil && !p.NewPIDNamespace && len(p.Files) == 0 {
		spec := wireSpec{Entry: p.Entry, Name: name, Identity: id, Daemon: p.Daemon,
			Parent: os.Getpid(), ParentName: self.Name, Args: p.Args}
		if c := takeWarm(spec); c != nil {
			p.record(name, c.cmd, seq)
			go func() {
				<-c.exited
				p.reaped(c.cmd, p.done)
			}()
			return nil
		}
	}
	// /proc/self/exe, not os.Executable's path: the kernel resolves the
	// link to the running binary's inode, which lives on as long as this
	// process runs it, deleted or renamed over.
	cmd := exec.Command(selfExe, p.Args...)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(childEnviron(), env...)
	cmd.Stdin = nil
	cmd.Stdout, cmd.Stderr = orDefault(p.Stdout, os.Stdout), orDefault(p.Stderr, os.Stderr)
	cmd.ExtraFiles = p.Files
	// With a Stdout or Stderr that is not a file, a grandchild could keep
	// the pipe open after the child exits; do not wait for it forever.
	cmd.WaitDelay = time.Second
	cmd.SysProcAttr = &syscall.SysProcAttr{}
	if p.Daemon {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	if p.NewPIDNamespace {
		cmd.SysProcAttr.Cloneflags = syscall.CLONE_NEWPID
	}
	if err := spawn(cmd, p.Daemon); err != nil {
		return fmt.Errorf("process: start %s: %w", name, err)
	}
	p.record(name, cmd, seq)
	go p.reap(cmd, p.done)
	return nil
}

// record records a started child. Called with p.mu held.
func (p *Process) record(name string, cmd *exec.Cmd, seq int64) {
	p.Name, p.cmd, p.daemon, p.seq = name, cmd, p.Daemon, seq
	if p.done == nil {
		p.done = make(chan struct{})
	}
	activeMu.Lock()
	active[p] = true
	activeMu.Unlock()
}

// selfExe names the running binary; a variable so that tests can see it.
var selfExe = "/proc/self/exe"

// SetDaemon sets Daemon before Start; after Start it returns ErrStarted,
// as Python's daemon setter raises: a running child's kind cannot change.
func (p *Process) SetDaemon(daemon bool) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return ErrStarted
	}
	p.Daemon = daemon
	return nil
}

func orDefault(w io.Writer, def *os.File) io.Writer {
	if w == nil {
		return def
	}
	return w
}

// reap waits for the child as soon as it exits, so no zombie lingers.
func (p *Process) reap(cmd *exec.Cmd, done chan struct{}) {
	cmd.Wait()
	p.reaped(cmd, done)
}

// reaped records the exit of a child that cmd.Wait has reaped.
func (p *Process) reaped(cmd *exec.Cmd, done chan struct{}) {
	p.mu.Lock()
	p.code = exitCode(cmd.ProcessState)
	close(done)
	p.mu.Unlock()
	activeMu.Lock()
	delete(active, p)
	activeMu.Unlock()
}

func exitCode(st *os.ProcessState) int {
	if ws, ok := st.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal())
	}
	return st.ExitCode()
}

// started returns the child's command and done channel, or nil before a
// successful Start.
func (p *Process) started() (*exec.Cmd, chan struct{}) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd, p.done
}

// Join waits for the child to exit. It returns nil for status 0, an
// *ExitError otherwise, or ctx.Err() if ctx is done first, leaving the
// child running (Python's join(timeout) that returns with the child alive).
// A child that has exited is reported even if ctx is done already.
func (p *Process) Join(ctx context.Context) error {
	cmd, done := p.started()
	if cmd == nil {
		return ErrNotStarted
	}
	select {
	case <-done:
	default:
		select {
		case <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	p.mu.Lock()
	code := p.code
	p.mu.Unlock()
	if code != 0 {
		return &ExitError{Name: p.Name, Pid: cmd.Process.Pid, Code: code}
	}
	return nil
}

// IsAlive reports whether the child has started and not yet exited.
func (p *Process) IsAlive() bool {
	cmd, done := p.started()
	if cmd == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// Terminate sends SIGTERM. On a child that has exited it does nothing.
func (p *Process) Terminate() error { return p.signal(syscall.SIGTERM) }

// Kill sends SIGKILL. On a child that has exited it does nothing.
func (p *Process) Kill() error { return p.signal(syscall.SIGKILL) }

// Interrupt sends SIGINT, what Ctrl-C sends (Python 3.14's interrupt()).
// On a child that has exited it does nothing.
func (p *Process) Interrupt() error { return p.signal(syscall.SIGINT) }

func (p *Process) signal(sig syscall.Signal) error {
	// Holding mu keeps reap from closing done in between: the pid cannot
	// be reaped (and reused) while we signal it.
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return ErrNotStarted
	}
	select {
	case <-p.done:
		return nil
	default:
	}
	if err := p.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return fmt.Errorf("process: signal %s: %w", p.Name, err)
	}
	return nil
}

// Pid is the child's process id, 0 before Start.
func (p *Process) Pid() int {
	if cmd, _ := p.started(); cmd != nil {
		return cmd.Process.Pid
	}
	return 0
}

// ExitCode is the child's exit status, or -signal if a signal killed it;
// ok is false while it runs or before Start (Python's None).
func (p *Process) ExitCode() (code int, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0, false
	}
	select {
	case <-p.done:
		return p.code, true
	default:
		return 0, false
	}
}

// Done is closed when the child has exited and been reaped. Before Start
// it is the channel Start will use: a receive waits for a child that is
// yet to start and exit.
func (p *Process) Done() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.done == nil {
		p.done = make(chan struct{})
	}
	return p.done
}

// gracePeriod is how long shutdown waits after SIGTERM before SIGKILL.
const gracePeriod = 2 * time.Second

// shutdown terminates daemon children and joins the others, as Python does
// at interpreter exit.
func shutdown() {
	KeepWarm(0) // in a daemon: ErrDaemonChildren, and no warm children
	activeMu.Lock()
	var daemons, others []*Process
	for p := range active {
		if p.daemon {
			daemons = append(daemons, p)
		} else {
			others = append(others, p)
		}
	}
	activeMu.Unlock()
	for _, p := range daemons {
		p.Terminate()
	}
	for _, p := range daemons {
		select {
		case <-p.done:
		case <-time.After(gracePeriod):
			p.Kill()
			<-p.done
		}
	}
	for _, p := range others {
		<-p.done
	}
}

// spawner starts daemon children from one OS thread that lives as long as
// the process: the kernel sends Pdeathsig when the thread that forked the
// child exits, not the process (Go issue 27505), and Go may retire the
// thread of an ordinary goroutine.
var spawner struct {
	once sync.Once
	reqs chan spawnReq
}

type spawnReq struct {
	cmd  *exec.Cmd
	errc chan error
}

func spawn(cmd *exec.Cmd, daemon bool) error {
	if !daemon {
		return cmd.Start()
	}
	spawner.once.Do(func() {
		spawner.reqs = make(chan spawnReq)
		go func() {
			runtime.LockOSThread() // never unlocked: the thread lives until exit
			for r := range spawner.reqs {
				r.errc <- r.cmd.Start()
			}
		}()
	})
	errc := make(chan error)
	spawner.reqs <- spawnReq{cmd, errc}
	return <-errc
}

// StartCommand starts cmd, an external program, so that it dies with
// this process: the kernel sends it cmd.SysProcAttr.Pdeathsig (SIGKILL if
// unset) when this process dies, however it dies, as a daemon child gets.
// Setting Pdeathsig on an exec.Cmd alone is not enough in Go: the signal
// comes when the OS thread that started the program exits, and Go retires
// threads when it likes (Go issue 27505); StartCommand starts cmd from a
// thread that lives as long as the process. Wait for cmd as usual.
func StartCommand(cmd *exec.Cmd) error {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	if cmd.SysProcAttr.Pdeathsig == 0 {
		cmd.SysProcAttr.Pdeathsig = syscall.SIGKILL
	}
	return spawn(cmd, true)
}

// SetSubreaper makes this process the reaper of its orphaned descendants
// (PR_SET_CHILD_SUBREAPER): a grandchild whose parent dies is reparented
// here instead of to init. Reap each with ReapOrphan.
func SetSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_CHILD_SUBREAPER)", err)
	}
	return nil
}

// ReapOrphan waits for the process pid, a descendant reparented to this
// subreaper, and returns its exit status (or -signal). It must not be used
// for children started by Start, which are reaped by their Process.
func ReapOrphan(pid int) (int, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(pid, &ws, 0, nil)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return 0, os.NewSyscallError("wait4", err)
		}
		if ws.Signaled() {
			return -int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
}

// childEnviron is a child's environment: this process's. Under the race
// detector (a -race build, whose children are -race too), it adds
// atexit_sleep_ms=0 to GORACE unless GORACE sets it: the race runtime
// otherwise sleeps a second at every exit, to let other goroutines'
// reports land, and every Join of a child would take a second. A child
// reports its races as it finds them, before it exits, all the same.
func childEnviron() []string {
	env := os.Environ()
	if !raceEnabled {
		return env
	}
	gorace := os.Getenv("GORACE")
	if strings.Contains(gorace, "atexit_sleep_ms") {
		return env
	}
	return append(env, "GORACE="+strings.TrimSpace(gorace+" atexit_sleep_ms=0"))
}
