//go:build linux

// Package testproc runs test helpers as real child processes: the test
// binary re-executes itself with the name of an entry, so tests can start
// processes, make them hold locks and SIGKILL them at chosen moments.
//
// Use it from TestMain:
//
//	func TestMain(m *testing.M) {
//		testproc.Main(m, map[string]testproc.Entry{"hold": holdEntry})
//	}
//
// Main also fails the test binary if any child process (or zombie) is left
// when the tests end.
package testproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

const envEntry = "SHMKIT_TESTPROC_ENTRY"

// probeEntry is the entry of CanUnsharePID's child: it exits at once.
const probeEntry = "testproc.probe"

// Entry is a child's body. It gets the arguments given to Start and returns
// the exit code.
type Entry func(args []string) int

var registered map[string]Entry

// Main runs the entry named in the environment if this process is a child,
// and m.Run otherwise, then exits. After the tests it checks that no child
// process of the test binary is left, zombies included.
func Main(m *testing.M, entries map[string]Entry) {
	registered = entries
	if name, ok := os.LookupEnv(envEntry); ok {
		if name == probeEntry {
			os.Exit(0)
		}
		fn := entries[name]
		if fn == nil {
			fmt.Fprintf(os.Stderr, "testproc: unknown entry %q\n", name)
			os.Exit(97)
		}
		os.Exit(fn(os.Args[1:]))
	}
	code := m.Run()
	for _, fn := range afterRun {
		fn()
	}
	if left := Children(); len(left) > 0 {
		fmt.Fprintf(os.Stderr, "testproc: %d child processes left behind: %s\n", len(left), strings.Join(left, "; "))
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

var afterRun []func()

// AfterRun registers fn to run after every test and example of the binary
// (from an init function or TestMain, before Main): for examples that
// leave what a real program would leave, such as a lock segment that other
// processes may still use.
func AfterRun(fn func()) { afterRun = append(afterRun, fn) }

// Children lists the live or zombie children of this process as
// "pid state comm" strings, read from /proc.
func Children() []string {
	self := os.Getpid()
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []string
	for _, p := range stats {
		pid, _ := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(p, "/proc/"), "/stat"))
		st, err := Stat(pid)
		if err != nil {
			continue // exited meanwhile
		}
		if st.PPid == self {
			out = append(out, fmt.Sprintf("%d (%s) %c", pid, st.Comm, st.State))
		}
	}
	return out
}

// childEnv is the environment of a child running entry. A -race child
// would sleep a second at exit (the race runtime's atexit_sleep_ms, which
// lets other goroutines' reports land): the tests start hundreds of
// children, and each reports its races before exiting anyway.
func childEnv(entry string) []string {
	gorace := "atexit_sleep_ms=0"
	if old := os.Getenv("GORACE"); old != "" {
		gorace = old + " " + gorace
	}
	return append(os.Environ(), envEntry+"="+entry, "GORACE="+gorace)
}

// quitChildren sends SIGQUIT to every child of this process.
func quitChildren() {
	for _, c := range Children() {
		if pid, err := strconv.Atoi(strings.Fields(c)[0]); err == nil {
			_ = syscall.Kill(pid, syscall.SIGQUIT)
		}
	}
}

// Proc is a running child.
type Proc struct {
	t    testing.TB
	name string
	cmd  *exec.Cmd

	mu      sync.Mutex
	lines   []string      // everything the child printed on stdout
	changed chan struct{} // closed and replaced when a line arrives
	seen    int           // lines Expect has consumed

	readDone chan struct{}
	waitOnce sync.Once
	state    *os.ProcessState
	waitErr  error
}

// Start starts a child running the named entry with args. The child is
// SIGKILLed and reaped when the test ends, if it has not been already; it
// also gets SIGKILL if the test binary dies first (Pdeathsig).
func Start(t testing.TB, entry string, args ...string) *Proc {
	t.Helper()
	return StartWith(t, 0, entry, args...)
}

// StartInNewPIDNamespace is Start for a child that is process 1 of a PID
// namespace of its own (CLONE_NEWPID; it needs root, or CAP_SYS_ADMIN).
// Its thread ids start again from 1, as in a fresh container, so two such
// children get the same small thread ids. The test is skipped when the
// namespace cannot be made, unless SHMKIT_REQUIRE_NAMESPACES is set (CI
// sets it): then it fails.
func StartInNewPIDNamespace(t testing.TB, entry string, args ...string) *Proc {
	t.Helper()
	if !CanUnsharePID() {
		if os.Getenv("SHMKIT_REQUIRE_NAMESPACES") != "" {
			t.Fatal("testproc: cannot make a PID namespace (CLONE_NEWPID needs root), and SHMKIT_REQUIRE_NAMESPACES is set")
		}
		t.Skip("testproc: cannot make a PID namespace (CLONE_NEWPID needs root)")
	}
	return StartWith(t, syscall.CLONE_NEWPID, entry, args...)
}

// CanUnsharePID reports whether this process may start children in new
// PID namespaces.
func CanUnsharePID() bool {
	canUnshare.Do(func() {
		cmd := exec.Command("/proc/self/exe")
		cmd.Env = childEnv(probeEntry)
		cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWPID}
		canUnshare.ok = cmd.Run() == nil
	})
	return canUnshare.ok
}

var canUnshare struct {
	sync.Once
	ok bool
}

// StartWith is Start with clone flags for the child (syscall.CLONE_*).
func StartWith(t testing.TB, cloneflags uintptr, entry string, args ...string) *Proc {
	t.Helper()
	cmd := command(t, nil, entry, args)
	cmd.SysProcAttr.Cloneflags = cloneflags
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("testproc: start %s: %v", entry, err)
	}
	p := &Proc{t: t, name: entry, cmd: cmd, changed: make(chan struct{}), readDone: make(chan struct{})}
	go func() {
		defer close(p.readDone)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 64<<20) // a child may print every ticket it sold on one line
		add := func(line string) {
			p.mu.Lock()
			p.lines = append(p.lines, line)
			close(p.changed)
			p.changed = make(chan struct{})
			p.mu.Unlock()
		}
		for sc.Scan() {
			add(sc.Text())
		}
		if err := sc.Err(); err != nil {
			// Keep draining: a child blocked on a full pipe would hang
			// the test instead of failing it.
			add("testproc: reading the child's output: " + err.Error())
			io.Copy(io.Discard, stdout)
		}
	}()
	t.Cleanup(func() {
		p.Kill()
		p.Wait()
	})
	return p
}

// command is the command that runs entry with args in a child (this test
// binary again), under wrapper if any.
func command(t testing.TB, wrapper []string, entry string, args []string) *exec.Cmd {
	t.Helper()
	if registered[entry] == nil {
		t.Fatalf("testproc: entry %q not registered in TestMain", entry)
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	argv := append([]string{exe}, args...)
	if len(wrapper) > 0 {
		argv = append(append([]string(nil), wrapper...), argv...)
	}
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = childEnv(entry)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	return cmd
}

// RunUnder runs the named entry as a child under a wrapper command (such
// as strace -f -e inject=pwrite64:error=ENOSPC), waits for it and returns
// what it printed on stdout. The child's exit status is an error only if
// the wrapper or the child fails to run at all: the entry reports its
// outcome on stdout.
func RunUnder(t testing.TB, wrapper []string, entry string, args ...string) string {
	t.Helper()
	out, err := command(t, wrapper, entry, args).Output()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("testproc: run %s under %s: %v", entry, wrapper[0], err)
	}
	return string(out)
}

// Pid is the child's process id.
func (p *Proc) Pid() int { return p.cmd.Process.Pid }

// Expect waits for the child to print the line want on stdout, skipping
// other lines, and fails the test if the child exits first. The 60 s bound
// only keeps a broken test from hanging: no test relies on it for timing.
func (p *Proc) Expect(want string) {
	p.t.Helper()
	p.expect(want, func(line string) bool { return line == want })
}

// ExpectPrefix is Expect for the first line that starts with prefix; it
// returns the rest of that line.
func (p *Proc) ExpectPrefix(prefix string) string {
	p.t.Helper()
	line := p.expect(prefix+"...", func(line string) bool { return strings.HasPrefix(line, prefix) })
	return strings.TrimPrefix(line, prefix)
}

// ExpectMatch waits for a line that match accepts, skipping others, and
// returns it; it fails the test if the child exits first.
func (p *Proc) ExpectMatch(match func(string) bool) string {
	p.t.Helper()
	return p.expect("a matching line", match)
}

func (p *Proc) expect(want string, match func(string) bool) string {
	p.t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		p.mu.Lock()
		for p.seen < len(p.lines) {
			line := p.lines[p.seen]
			p.seen++
			if match(line) {
				p.mu.Unlock()
				return line
			}
		}
		changed := p.changed
		p.mu.Unlock()
		select {
		case <-changed:
		case <-p.readDone:
			p.mu.Lock()
			more := p.seen < len(p.lines)
			p.mu.Unlock()
			if !more {
				p.t.Fatalf("testproc: %s (pid %d) exited before printing %q; it printed:\n%s", p.name, p.Pid(), want, p.Output())
			}
		case <-timeout:
			// A stuck child, perhaps stuck on a sibling: SIGQUIT
			// makes a Go child print every goroutine's stack on
			// its stderr (the test's).
			quitChildren()
			time.Sleep(time.Second)
			p.t.Fatalf("testproc: %s (pid %d) did not print %q within 60s; it printed:\n%s", p.name, p.Pid(), want, p.Output())
		}
	}
}

// Output is what the child has printed on stdout so far.
func (p *Proc) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.lines, "\n")
}

// Kill sends SIGKILL (harmless if the child is gone).
func (p *Proc) Kill() { p.Signal(syscall.SIGKILL) }

// Signal sends sig to the child.
func (p *Proc) Signal(sig syscall.Signal) {
	_ = p.cmd.Process.Signal(sig) // fails only once the child was reaped
}

// Wait reaps the child and returns its exit code, or -signal if a signal
// killed it (as Python's multiprocessing reports).
func (p *Proc) Wait() int {
	p.waitOnce.Do(func() {
		<-p.readDone
		p.waitErr = p.cmd.Wait()
		p.state = p.cmd.ProcessState
	})
	if p.state == nil {
		p.t.Fatalf("testproc: wait %s: %v", p.name, p.waitErr)
	}
	if ws, ok := p.state.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return -int(ws.Signal())
	}
	return p.state.ExitCode()
}

// MustExit waits and fails the test unless the child exited with code 0.
func (p *Proc) MustExit() {
	p.t.Helper()
	if code := p.Wait(); code != 0 {
		p.t.Fatalf("testproc: %s (pid %d) exited with %d; stdout:\n%s", p.name, p.Pid(), code, p.Output())
	}
}

// MustExitWithin is MustExit for a child that might hang: if it has not
// exited after d, every child prints its stacks (SIGQUIT) and the test
// fails. d only keeps a broken test from hanging; pass a generous bound.
func (p *Proc) MustExitWithin(d time.Duration) {
	p.t.Helper()
	select {
	case <-p.readDone:
	case <-time.After(d):
		quitChildren()
		time.Sleep(time.Second)
		p.t.Fatalf("testproc: %s (pid %d) still running after %v; stdout:\n%s", p.name, p.Pid(), d, p.Output())
	}
	p.MustExit()
}

// SetLastPid sets the last process id the kernel handed out in this
// process's PID namespace (/proc/sys/kernel/ns_last_pid, root only), so
// that the next process or thread created on this machine gets pid+1 —
// unless another one is created first: callers check what they got and
// try again. It is how tests force a thread id to be reused.
func SetLastPid(pid int) error {
	return os.WriteFile("/proc/sys/kernel/ns_last_pid", []byte(strconv.Itoa(pid)), 0)
}

// NeedRoot skips a test that needs root (to make PID namespaces or set
// ns_last_pid), or fails it when SHMKIT_REQUIRE_NAMESPACES is set (CI
// sets it and runs as root).
func NeedRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("SHMKIT_REQUIRE_NAMESPACES") != "" {
		t.Fatal("testproc: this test needs root, and SHMKIT_REQUIRE_NAMESPACES is set")
	}
	t.Skip("testproc: this test needs root")
}

// NeedTool returns the path of the command name, which a test needs (such
// as strace, for fault injection). Without it the test is skipped, or
// fails when SHMKIT_REQUIRE_TOOLS is set (CI sets it, and installs them).
func NeedTool(t testing.TB, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil {
		return path
	}
	if os.Getenv("SHMKIT_REQUIRE_TOOLS") != "" {
		t.Fatalf("testproc: this test needs %s, and SHMKIT_REQUIRE_TOOLS is set", name)
	}
	t.Skipf("testproc: this test needs %s", name)
	return ""
}

// TinyTmpfs mounts a tmpfs of size bytes on a new directory for the test
// (root only: NeedRoot) and unmounts it when the test ends: the way to
// fill /dev/shm for real, without touching the real one.
func TinyTmpfs(t testing.TB, size int) string {
	t.Helper()
	NeedRoot(t)
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+strconv.Itoa(size), "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("testproc: mount a tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("testproc: umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// Fill writes a file in dir until its file system is full (ENOSPC) and
// returns its path.
func Fill(t testing.TB, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return path
			}
			t.Fatalf("testproc: fill %s: %v", dir, err)
		}
	}
}
