//go:build linux

package process

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// envWarm marks a child started ahead of need (KeepWarm): it waits on fd 3
// for what to run.
const envWarm = "SHMKIT_PROCESS_WARM"

// KeepWarm keeps n children started ahead of need, what Python's
// forkserver start method is for: a Start then hands one of them its
// entry over a socket instead of executing the program anew, and another is
// started in the background to take its place. Start+Join of a child that
// does nothing took p50 3.0-3.7 ms cold and 0.45-0.88 ms warm on the
// machine of docs/runs (docs/runs/spawn.txt; Python's fork: 1.7 ms). Start waits
// for the warm child to say it has its entry, so that a SIGKILL of this
// process right after Start treats it as it would a cold child. A warm
// child found stopped (SIGSTOP) while Start waits for it is killed and,
// unless it took the entry before it stopped, passed over.
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
	if n == 0 {
		for warm.inFlight > 0 { // children being started stop themselves
			warm.started.Wait()
		}
	}
	warm.mu.Unlock()
	var wg sync.WaitGroup
	for _, w := range stop {
		wg.Go(w.stop) // at once: each that does not exit is given warmPatience
	}
	wg.Wait()
	return nil
}

var warm struct {
	mu       sync.Mutex
	want     int
	idle     []*warmChild
	inFlight int        // children being started
	started  *sync.Cond // signalled when inFlight goes down
}

func init() { warm.started = sync.NewCond(&warm.mu) }

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
		go func() {
			c, err := startWarm()
			warm.mu.Lock()
			if err == nil && len(warm.idle) < warm.want {
				warm.idle = append(warm.idle, c)
				c = nil
			}
			warm.mu.Unlock()
			if c != nil {
				c.stop()
			}
			warm.mu.Lock()
			warm.inFlight--
			warm.started.Broadcast()
			warm.mu.Unlock()
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
	// Ours non-blocking, so that os.File polls it: a Start waiting for
	// an answer parks its goroutine, not a thread.
	if err := unix.SetNonblock(fds[0], true); err != nil {
		unix.Close(fds[0])
		unix.Close(fds[1])
		return nil, os.NewSyscallError("fcntl", err)
	}
	w, r := os.NewFile(uintptr(fds[0]), "warm"), os.NewFile(uintptr(fds[1]), "warm-child")
	cmd := exec.Command(selfExe)
	cmd.Args[0] = os.Args[0]
	cmd.Env = append(childEnviron(), envWarm+"=1")
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

// warmPatience is how long an idle warm child, asked to stop, is given to
// exit before it is killed: one that does not is stopped (SIGSTOP) or
// starved.
const warmPatience = time.Second

// stop closes the child's socket, which makes an idle child exit, and
// waits for it; one that does not exit in warmPatience is killed.
func (c *warmChild) stop() {
	c.req.Close()
	c.awaitExit()
}

func (c *warmChild) awaitExit() {
	select {
	case <-c.exited:
	case <-time.After(warmPatience):
		c.kill()
	}
}

// kill kills the child and waits until it is reaped.
func (c *warmChild) kill() {
	c.cmd.Process.Kill()
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
		// what the Process says (a non-daemon stops dying with us),
		// then runs it: when Start returns, a SIGKILL of this process
		// treats the child as it would treat a cold one. Once the spec
		// is sent the child is the Process's unless it shows it never
		// took the entry: no answer, only the socket's end (it died),
		// or stopped with no answer (see awaitAnswer). Then the next is
		// tried; an entry never runs twice.
		_, err := c.req.Write(spec.marshal())
		if err == nil {
			err = awaitAnswer(c)
		}
		c.req.Close()
		if err == nil {
			return c
		}
		<-c.exited
	}
}

// awaitAnswer waits for c's answer to its spec. A child that is stopped
// (SIGSTOP, a debugger: before the hand-over or during it) is killed, and then its answer decides: there, it took the entry before
// it stopped, and is the Process's (killed); not there, it never ran the
// entry, and the next child is tried. Either way the entry never runs
// twice, and Start is not held up by a child that does not run.
func awaitAnswer(c *warmChild) error {
	var ack [1]byte
	for {
		c.req.SetReadDeadline(time.Now().Add(answerPoll))
		_, err := io.ReadFull(c.req, ack[:])
		if !errors.Is(err, os.ErrDeadlineExceeded) {
			return err
		}
		if !stopped(c.cmd.Process.Pid) {
			continue // slow, but running
		}
		c.kill()
		// What is there now, without waiting (a past deadline would
		// not even look).
		answered := false
		if rc, err := c.req.SyscallConn(); err == nil {
			rc.Control(func(fd uintptr) {
				n, _, err := unix.Recvfrom(int(fd), ack[:], unix.MSG_DONTWAIT)
				answered = err == nil && n == 1
			})
		}
		if answered {
			return nil
		}
		return errors.New("stopped before it took the entry")
	}
}

// answerPoll is how often a Start that waits for a warm child's answer
// looks whether the child is stopped.
const answerPoll = 50 * time.Millisecond

// wireSpec is childSpec on the socket.
type wireSpec struct {
	Entry, Name, Identity string
	Daemon                bool
	Parent                int
	ParentName            string
	Args                  []string
}

// marshal is the spec as the child reads it: a 4-byte length, then each
// string as a uvarint length and its bytes, as they are (an argument
// need not be UTF-8), the daemon flag as a byte and the parent's pid as
// a uvarint.
func (s wireSpec) marshal() []byte {
	b := make([]byte, 4, 64)
	str := func(v string) { b = append(binary.AppendUvarint(b, uint64(len(v))), v...) }
	str(s.Entry)
	str(s.Name)
	str(s.Identity)
	str(s.ParentName)
	b = append(b, boolByte(s.Daemon))
	b = binary.AppendUvarint(b, uint64(s.Parent))
	b = binary.AppendUvarint(b, uint64(len(s.Args)))
	for _, a := range s.Args {
		str(a)
	}
	binary.LittleEndian.PutUint32(b, uint32(len(b)-4))
	return b
}

func boolByte(v bool) byte {
	if v {
		return 1
	}
	return 0
}

// maxSpec bounds a spec a warm child accepts: more than exec would take.
const maxSpec = 64 << 20

func readSpec(r io.Reader) (wireSpec, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return wireSpec{}, err
	}
	size := binary.LittleEndian.Uint32(n[:])
	if size > maxSpec {
		return wireSpec{}, fmt.Errorf("a spec of %d bytes", size)
	}
	b := make([]byte, size)
	if _, err := io.ReadFull(r, b); err != nil {
		return wireSpec{}, err
	}
	bad := errors.New("malformed spec")
	uv := func() uint64 {
		v, k := binary.Uvarint(b)
		if k <= 0 {
			panic(bad)
		}
		b = b[k:]
		return v
	}
	str := func() string {
		n := uv()
		if n > uint64(len(b)) {
			panic(bad)
		}
		v := string(b[:n])
		b = b[n:]
		return v
	}
	var s wireSpec
	err := func() (err error) {
		defer func() {
			if r := recover(); r != nil {
				err = bad
			}
		}()
		s.Entry, s.Name, s.Identity, s.ParentName = str(), str(), str(), str()
		if len(b) == 0 {
			return bad
		}
		s.Daemon, b = b[0] == 1, b[1:]
		s.Parent = int(uv())
		n := uv()
		if n > uint64(len(b)) {
			return bad
		}
		s.Args = make([]string, n)
		for i := range s.Args {
			s.Args[i] = str()
		}
		if len(b) != 0 {
			return bad
		}
		return nil
	}()
	return s, err
}

// runWarm is a warm child's Main: it waits for its entry, then runs it
// as Start's children do. A closed pipe (KeepWarm(0), or its parent gone)
// ends it quietly.
func runWarm() int {
	var st unix.Stat_t
	if unix.Fstat(3, &st) != nil || st.Mode&unix.S_IFMT != unix.S_IFSOCK {
		fmt.Fprintf(os.Stderr, "process: %s is set, but fd 3 is not a warm child's socket\n", envWarm)
		return 2
	}
	f := os.NewFile(3, "warm")
	s, err := readSpec(f)
	if err != nil {
		return 0 // closed: KeepWarm(0) or the parent gone
	}
	// The entry sees the arguments where a cold child has them too.
	os.Args = append([]string{os.Args[0]}, s.Args...)
	if !s.Daemon {
		// Started to die with its parent; given an entry that
		// outlives it, as a cold non-daemon child does. On the main
		// thread, which init locked us to: that is the thread that
		// has the Pdeathsig.
		if unix.Gettid() != os.Getpid() {
			fmt.Fprintln(os.Stderr, "process: warm child: not on the main thread, whose Pdeathsig must be cleared")
			return 2
		}
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, 0, 0, 0, 0); err != nil {
			fmt.Fprintf(os.Stderr, "process: warm child: prctl: %v\n", err)
			return 2
		}
	}
	runtime.UnlockOSThread()
	if _, err := f.Write([]byte{1}); err != nil {
		return 2 // the parent is gone
	}
	f.Close()
	return runChild(childSpec{
		entry: s.Entry, name: s.Name, identity: s.Identity, daemon: s.Daemon,
		parent: s.Parent, parentName: s.ParentName, args: s.Args,
	})
}

// checkExec fails as execve would for a child with these arguments and
// environment variables (beside this process's environment), so that a
// Start does not succeed warm where it would fail cold: a NUL byte
// (EINVAL), a string of 128 KiB or more, or more than the kernel's limit
// in all (E2BIG: a quarter of the stack limit, at most 6 MiB, at least
// 128 KiB). Start checks it cold too, so both fail alike.
func checkExec(args, env []string) error {
	const maxArgStrlen = 32 * 4096
	total := len(selfExe) + 1
	for _, list := range [][]string{{os.Args[0]}, args, env, os.Environ()} {
		for _, a := range list {
			if strings.IndexByte(a, 0) >= 0 {
				return syscall.EINVAL
			}
			if len(a)+1 > maxArgStrlen {
				return syscall.E2BIG
			}
			total += len(a) + 1 + 8
		}
	}
	limit := uint64(maxArgStrlen)
	var rl unix.Rlimit
	if unix.Getrlimit(unix.RLIMIT_STACK, &rl) == nil {
		limit = max(min(rl.Cur/4, 6<<20), maxArgStrlen)
	}
	if uint64(total) > limit {
		return syscall.E2BIG
	}
	return nil
}

// stopped reports whether process pid is stopped (state T or t in
// /proc/pid/stat): a read of a few hundred bytes, some microseconds.
func stopped(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && (b[i+2] == 'T' || b[i+2] == 't')
}
