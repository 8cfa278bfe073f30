//go:build linux

package process

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

func TestMain(m *testing.M) {
	Main(func() error {
		code := m.Run()
		if left := testproc.Children(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "process: children left behind: %s\n", strings.Join(left, "; "))
			code = 1
		}
		return Exit(code)
	})
}

var counter = 1 // changed by the "mutate" child, never by the parent

func init() {
	Register("exit", func(args []string) error {
		code, _ := strconv.Atoi(args[0])
		return Exit(code)
	})
	Register("getenv", func(args []string) error {
		fmt.Printf("env %s=%q\n", args[0], os.Getenv(args[0]))
		return nil
	})
	Register("sleep", func([]string) error {
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return nil
	})
	Register("mutate", func([]string) error {
		counter = 99
		fmt.Println("child counter", counter)
		return nil
	})
	Register("info", func([]string) error {
		c := Current()
		fmt.Println(c.Pid, c.PPid, c.Name, c.Daemon, c.Child)
		return nil
	})
	Register("spawn", func([]string) error {
		p := &Process{Entry: "exit", Args: []string{"0"}}
		fmt.Println("start:", p.Start())
		return nil
	})
	Register("panic", func([]string) error { panic("boom") })
	Register("error", func([]string) error { return errors.New("boom") })
	// tree: a daemon and a non-daemon child; the non-daemon touches
	// args[0] after a moment; then tree's entry returns and its Main
	// must terminate the daemon and join the other.
	Register("tree", func(args []string) error {
		d, n := startPair(args[0], "0.2")
		fmt.Println("pids", d.Pid(), n.Pid())
		return nil
	})
	// tree-forever: the same, then wait to be killed.
	Register("tree-forever", func(args []string) error {
		d, n := startPair(args[0], "3600")
		fmt.Println("pids", d.Pid(), n.Pid())
		time.Sleep(time.Hour)
		return nil
	})
	Register("command-forever", func([]string) error {
		runtime.LockOSThread() // keep the main thread here, so that the goroutine below runs on another
		pid, tid := make(chan int), make(chan int, 1)
		go func() {
			// Start from a thread that then ends (a goroutine that
			// exits locked takes its thread with it): a Pdeathsig tied
			// to this thread would kill the command now.
			runtime.LockOSThread()
			tid <- syscall.Gettid()
			cmd := exec.Command("sleep", "3600")
			if err := StartCommand(cmd); err != nil {
				panic(err)
			}
			go cmd.Wait()
			pid <- cmd.Process.Pid
		}()
		p, gone := <-pid, fmt.Sprintf("/proc/self/task/%d", <-tid)
		for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
			if _, err := os.Stat(gone); errors.Is(err, fs.ErrNotExist) {
				break
			}
		}
		fmt.Println("pid", p)
		time.Sleep(time.Hour)
		return nil
	})
	Register("fail-exec", func([]string) error {
		return fmt.Errorf("ran false: %w", exec.Command("false").Run())
	})
	Register("touch-after", func(args []string) error {
		secs, _ := strconv.ParseFloat(args[1], 64)
		time.Sleep(time.Duration(secs * float64(time.Second)))
		return os.WriteFile(args[0], []byte("done"), 0o600)
	})
}

// startPair starts a daemon sleeper and a non-daemon touch-after child,
// with output to /dev/null so that they do not hold the test's pipes.
func startPair(file, secs string) (daemon, other *Process) {
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		panic(err)
	}
	daemon = &Process{Entry: "sleep", Daemon: true, Stdout: null, Stderr: null}
	other = &Process{Entry: "touch-after", Args: []string{file, secs}, Stdout: null, Stderr: null}
	if err := daemon.Start(); err != nil {
		panic(err)
	}
	if err := other.Start(); err != nil {
		panic(err)
	}
	return daemon, other
}

// lines collects a child's stdout and lets a test wait for a line.
type lines struct {
	mu   sync.Mutex
	all  []string
	more chan struct{}
	w    *io.PipeWriter
}

func newLines() *lines {
	r, w := io.Pipe()
	l := &lines{more: make(chan struct{}, 1), w: w}
	go func() {
		sc := bufio.NewScanner(r)
		for sc.Scan() {
			l.mu.Lock()
			l.all = append(l.all, sc.Text())
			l.mu.Unlock()
			select {
			case l.more <- struct{}{}:
			default:
			}
		}
	}()
	return l
}

func (l *lines) Write(b []byte) (int, error) { return l.w.Write(b) }

// wait returns the first line with the prefix, failing after a minute (a
// guard against hanging, not a timing check).
func (l *lines) wait(t *testing.T, prefix string) string {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		l.mu.Lock()
		for _, s := range l.all {
			if strings.HasPrefix(s, prefix) {
				l.mu.Unlock()
				return s
			}
		}
		l.mu.Unlock()
		select {
		case <-l.more:
		case <-deadline:
			t.Fatalf("no line %q; got %q", prefix, l.all)
		}
	}
}

// start starts p and makes sure it is gone when the test ends.
func start(t *testing.T, p *Process) *Process {
	t.Helper()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Kill()
		p.Join(context.Background())
	})
	return p
}

func TestStartJoinExitCode(t *testing.T) {
	ok := start(t, &Process{Entry: "exit", Args: []string{"0"}})
	if err := ok.Join(context.Background()); err != nil {
		t.Fatalf("Join: %v", err)
	}
	if code, done := ok.ExitCode(); code != 0 || !done {
		t.Fatalf("ExitCode = %d, %v", code, done)
	}
	bad := start(t, &Process{Entry: "exit", Args: []string{"3"}})
	err := bad.Join(context.Background())
	var ee *ExitError
	if !errors.As(err, &ee) || ee.Code != 3 || ee.Pid != bad.Pid() {
		t.Fatalf("Join: %v, want *ExitError with code 3", err)
	}
}

func TestIsAliveKillTerminate(t *testing.T) {
	out := newLines()
	p := &Process{Entry: "sleep", Stdout: out}
	if p.IsAlive() {
		t.Fatal("alive before Start")
	}
	if code, ok := p.ExitCode(); ok {
		t.Fatalf("ExitCode before Start = %d", code)
	}
	if err := p.Join(context.Background()); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Join before Start: %v", err)
	}
	start(t, p)
	out.wait(t, "ready")
	if !p.IsAlive() {
		t.Fatal("not alive after Start")
	}
	if _, ok := p.ExitCode(); ok {
		t.Fatal("exit code while running")
	}
	if err := p.Terminate(); err != nil {
		t.Fatal(err)
	}
	p.Join(context.Background())
	if code, _ := p.ExitCode(); code != -15 || p.IsAlive() {
		t.Fatalf("after Terminate: code %d alive %v; want -15 false", code, p.IsAlive())
	}
	if err := p.Kill(); err != nil {
		t.Fatalf("Kill of an exited child: %v", err)
	}

	k := start(t, &Process{Entry: "sleep"})
	k.Kill()
	var ee *ExitError
	if err := k.Join(context.Background()); !errors.As(err, &ee) || ee.Code != -9 {
		t.Fatalf("Join after Kill: %v, want code -9", err)
	}
}

func TestJoinDeadline(t *testing.T) {
	p := start(t, &Process{Entry: "sleep"})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := p.Join(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Join: %v, want DeadlineExceeded", err)
	}
	if !p.IsAlive() {
		t.Fatal("a Join that timed out killed the child")
	}
}

func TestIsolation(t *testing.T) {
	out := newLines()
	p := start(t, &Process{Entry: "mutate", Stdout: out})
	if err := p.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := out.wait(t, "child counter"); got != "child counter 99" {
		t.Fatalf("child printed %q", got)
	}
	if counter != 1 {
		t.Fatalf("parent's counter is %d, want 1", counter)
	}
}

func TestCurrentAndNames(t *testing.T) {
	if c := Current(); c.Name != "MainProcess" || c.Child || c.Pid != os.Getpid() || c.PPid != os.Getppid() {
		t.Fatalf("Current() in the parent = %+v", c)
	}
	out := newLines()
	p := start(t, &Process{Entry: "info", Stdout: out})
	named := start(t, &Process{Entry: "info", Name: "worker", Daemon: true, Stdout: out})
	p.Join(context.Background())
	named.Join(context.Background())
	want := fmt.Sprintf("%d %d %s false true", p.Pid(), os.Getpid(), p.Name)
	if got := out.wait(t, strconv.Itoa(p.Pid())); got != want {
		t.Fatalf("child says %q, want %q", got, want)
	}
	if !strings.HasPrefix(p.Name, "Process-") {
		t.Fatalf("default name %q", p.Name)
	}
	want = fmt.Sprintf("%d %d worker true true", named.Pid(), os.Getpid())
	if got := out.wait(t, strconv.Itoa(named.Pid())); got != want {
		t.Fatalf("child says %q, want %q", got, want)
	}
}

func TestMisuse(t *testing.T) {
	p := start(t, &Process{Entry: "exit", Args: []string{"0"}})
	if err := p.Start(); !errors.Is(err, ErrStarted) {
		t.Fatalf("second Start: %v", err)
	}
	if err := (&Process{Entry: "nope"}).Start(); !errors.Is(err, ErrUnknownEntry) {
		t.Fatalf("unknown entry: %v", err)
	}
	out := newLines()
	d := start(t, &Process{Entry: "spawn", Daemon: true, Stdout: out})
	d.Join(context.Background())
	if got := out.wait(t, "start:"); got != "start: "+ErrDaemonChildren.Error() {
		t.Fatalf("daemon's Start: %q", got)
	}
	for entry, want := range map[string]int{"panic": 2, "error": 1} {
		var stderr strings.Builder
		p := start(t, &Process{Entry: entry, Stderr: &stderr})
		var ee *ExitError
		if err := p.Join(context.Background()); !errors.As(err, &ee) || ee.Code != want {
			t.Fatalf("%s: Join %v, want status %d", entry, err, want)
		}
		if !strings.Contains(stderr.String(), "boom") {
			t.Fatalf("%s: stderr %q does not say boom", entry, stderr.String())
		}
	}
}

// TestUnknownEntryNoForkBomb: a binary started with an unknown entry name
// fails loudly and never runs the parent's main (here: the tests).
func TestUnknownEntryNoForkBomb(t *testing.T) {
	exe, _ := os.Executable()
	cmd := exec.Command(exe, "-test.run", "TestUnknownEntryNoForkBomb", "-test.v")
	cmd.Env = append(os.Environ(), envEntry+"=no-such-entry")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 2 {
		t.Fatalf("exit %v, want status 2; output %q", err, out)
	}
	if !strings.Contains(string(out), "unknown entry") || strings.Contains(string(out), "=== RUN") {
		t.Fatalf("output %q", out)
	}
}

// TestMainShutdown: when a process's main (here the tree entry) returns,
// Main terminates its daemon child and waits for the other.
func TestMainShutdown(t *testing.T) {
	file := filepath.Join(t.TempDir(), "touched")
	out := newLines()
	p := start(t, &Process{Entry: "tree", Args: []string{file}, Stdout: out})
	if err := p.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	var daemon, other int
	fmt.Sscanf(out.wait(t, "pids"), "pids %d %d", &daemon, &other)
	if _, err := os.Stat(file); err != nil {
		t.Fatalf("the non-daemon child was not joined: %v", err)
	}
	for _, pid := range []int{daemon, other} {
		if alive(pid) {
			t.Fatalf("pid %d outlived its parent's Main", pid)
		}
	}
}

// TestParentKilled: the parent is SIGKILLed; its daemon dies with it
// (Pdeathsig), its other child lives on as an orphan, reparented to this
// test process, a subreaper, which reaps both.
func TestParentKilled(t *testing.T) {
	if err := SetSubreaper(); err != nil {
		t.Fatal(err)
	}
	out := newLines()
	p := start(t, &Process{Entry: "tree-forever", Args: []string{filepath.Join(t.TempDir(), "x")}, Stdout: out})
	var daemon, orphan int
	fmt.Sscanf(out.wait(t, "pids"), "pids %d %d", &daemon, &orphan)
	p.Kill()
	p.Join(context.Background())
	// The daemon gets SIGKILL when the thread that started it dies. The
	// rest of its dying parent can still reap it (its reaper goroutine
	// runs until the last thread is gone); otherwise it comes to us, the
	// subreaper. Either way it must be gone.
	code, err := ReapOrphan(daemon)
	switch {
	case errors.Is(err, syscall.ECHILD):
		if _, serr := os.Stat(fmt.Sprintf("/proc/%d", daemon)); !errors.Is(serr, fs.ErrNotExist) {
			t.Fatalf("daemon %d is not our child and still exists: %v", daemon, serr)
		}
	case err != nil || code != -9:
		t.Fatalf("daemon: status %d, %v; want killed by SIGKILL with its parent", code, err)
	}
	if !alive(orphan) {
		t.Fatal("the non-daemon child died with its parent")
	}
	if ppid := parentOf(orphan); ppid != os.Getpid() {
		t.Fatalf("orphan's parent is %d, want the subreaper %d", ppid, os.Getpid())
	}
	syscall.Kill(orphan, syscall.SIGKILL)
	if code, err := ReapOrphan(orphan); err != nil || code != -9 {
		t.Fatalf("orphan: status %d, %v", code, err)
	}
}

// TestExitErrorPrinted: an entry that passes on a program's failure (an
// *exec.ExitError, which has an ExitCode method too) exits 1 and says so;
// only Exit's status is silent.
func TestExitErrorPrinted(t *testing.T) {
	var stderr strings.Builder
	p := start(t, &Process{Entry: "fail-exec", Stderr: &stderr})
	p.Join(context.Background())
	if code, _ := p.ExitCode(); code != 1 || !strings.Contains(stderr.String(), "ran false: exit status 1") {
		t.Fatalf("exit code %d, stderr %q; want 1 and the error", code, stderr.String())
	}
}

// TestStartCommand: an external program started with StartCommand lives
// on after the thread that started it ends, and dies with its parent.
func TestStartCommand(t *testing.T) {
	if err := SetSubreaper(); err != nil {
		t.Fatal(err)
	}
	out := newLines()
	p := start(t, &Process{Entry: "command-forever", Stdout: out})
	var pid int
	fmt.Sscanf(out.wait(t, "pid"), "pid %d", &pid)
	// The child said so once the thread that started the command was gone.
	if !alive(pid) {
		t.Fatal("the command died while its parent lives")
	}
	p.Kill()
	p.Join(context.Background())
	code, err := ReapOrphan(pid)
	switch {
	case errors.Is(err, syscall.ECHILD):
		if _, serr := os.Stat(fmt.Sprintf("/proc/%d", pid)); !errors.Is(serr, fs.ErrNotExist) {
			t.Fatalf("command %d is not our child and still exists: %v", pid, serr)
		}
	case err != nil || code != -9:
		t.Fatalf("command: status %d, %v; want killed by SIGKILL with its parent", code, err)
	}
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	st, err := testproc.Stat(pid)
	return err == nil && st.State != 'Z'
}

func parentOf(pid int) int {
	st, _ := testproc.Stat(pid)
	return st.PPid
}

// TestNewPIDNamespace: a child, daemon or not, started in a PID namespace
// of its own is process 1 there (its parent reads as pid 0) and runs its
// entry; it is joined like any other.
func TestNewPIDNamespace(t *testing.T) {
	testproc.NeedRoot(t)
	for _, daemon := range []bool{false, true} {
		out := newLines()
		p := start(t, &Process{Entry: "info", Daemon: daemon, NewPIDNamespace: true, Stdout: out})
		if err := p.Join(context.Background()); err != nil {
			t.Fatalf("daemon %v: Join: %v", daemon, err)
		}
		if got, want := out.wait(t, "1 0 "), fmt.Sprintf("1 0 %s %v true", p.Name, daemon); got != want {
			t.Fatalf("child said %q, want %q", got, want)
		}
	}
}

// TestFailedStart (issue 16, item 8): a Start whose exec fails (here an
// argument longer than the kernel takes: E2BIG) leaves the Process as it
// was: not alive, not joinable, not killable, unnamed, and startable.
// Before the fix it was a ghost: IsAlive true, Join blocked forever, Kill
// panicked on a nil process.
func TestFailedStart(t *testing.T) {
	p := &Process{Entry: "exit", Args: []string{"0", strings.Repeat("x", 256<<10)}}
	done := p.Done()
	if err := p.Start(); !errors.Is(err, syscall.E2BIG) {
		t.Fatalf("Start with a 256 KiB argument: %v, want E2BIG", err)
	}
	if p.IsAlive() || p.Pid() != 0 || p.Name != "" {
		t.Fatalf("after a failed Start: alive %v, pid %d, name %q", p.IsAlive(), p.Pid(), p.Name)
	}
	if _, ok := p.ExitCode(); ok {
		t.Fatal("exit code after a failed Start")
	}
	if err := p.Join(context.Background()); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Join after a failed Start: %v", err)
	}
	if err := p.Kill(); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Kill after a failed Start: %v", err)
	}
	select {
	case <-done:
		t.Fatal("Done closed by a failed Start")
	default:
	}
	p.Args = []string{"0"}
	start(t, p)
	if err := p.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	<-done // the channel Done gave before Start is the one Start closed
	if !strings.HasPrefix(p.Name, "Process-") {
		t.Fatalf("name %q", p.Name)
	}
}

// TestJoinExitedExpiredCtx (issue 16, item 9): Join of a child that has
// exited reports its status even with a ctx that is done already; before
// the fix select chose DeadlineExceeded about half the time.
func TestJoinExitedExpiredCtx(t *testing.T) {
	ok := start(t, &Process{Entry: "exit", Args: []string{"0"}})
	bad := start(t, &Process{Entry: "exit", Args: []string{"3"}})
	<-ok.Done()
	<-bad.Done()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for range 200 {
		if err := ok.Join(ctx); err != nil {
			t.Fatalf("Join of an exited child with a done ctx: %v", err)
		}
		var ee *ExitError
		if err := bad.Join(ctx); !errors.As(err, &ee) || ee.Code != 3 {
			t.Fatalf("Join of a failed child with a done ctx: %v", err)
		}
	}
}

// TestSetDaemon (issue 16, item 11): Daemon can be set until Start, and
// SetDaemon refuses afterwards instead of being ignored.
func TestSetDaemon(t *testing.T) {
	out := newLines()
	p := &Process{Entry: "info", Stdout: out}
	if err := p.SetDaemon(true); err != nil {
		t.Fatal(err)
	}
	start(t, p)
	if err := p.SetDaemon(false); !errors.Is(err, ErrStarted) {
		t.Fatalf("SetDaemon after Start: %v, want ErrStarted", err)
	}
	p.Join(context.Background())
	if got := out.wait(t, strconv.Itoa(p.Pid())); !strings.HasSuffix(got, " true true") {
		t.Fatalf("child says %q: not a daemon", got)
	}
}

func init() {
	// replaced-parent: a parent whose binary the test deletes or
	// replaces; it starts an "info" child when told to (a line on
	// stdin) and reports what the child printed.
	Register("replaced-parent", func([]string) error {
		fmt.Println("ready")
		bufio.NewReader(os.Stdin).ReadString('\n')
		var out strings.Builder
		p := &Process{Entry: "hello", Stdout: &out}
		if err := p.Start(); err != nil {
			fmt.Println("start:", err)
			return nil
		}
		err := p.Join(context.Background())
		fmt.Printf("child: %q %v\n", strings.TrimSpace(out.String()), err)
		return nil
	})
	Register("hello", func([]string) error {
		fmt.Println("hello from the parent's binary")
		return nil
	})
}

// TestReplacedBinary (issue 16, item 10): a parent whose binary is deleted
// or replaced while it runs, as a deploy does, still starts children of
// its own binary. Before the fix Start re-executed the path: ENOENT after
// a delete, and the new program after a replace.
func TestReplacedBinary(t *testing.T) {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"deleted", "replaced"} {
		t.Run(how, func(t *testing.T) {
			dir := t.TempDir()
			bin := filepath.Join(dir, "app")
			copyFile(t, exe, bin)
			cmd := exec.Command(bin)
			cmd.Env = append(os.Environ(), envEntry+"=replaced-parent", envName+"=app")
			stdin, _ := cmd.StdinPipe()
			out := newLines()
			cmd.Stdout, cmd.Stderr = out, os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer cmd.Wait()
			defer cmd.Process.Kill()
			out.wait(t, "ready")
			os.Remove(bin)
			if how == "replaced" {
				script := filepath.Join(dir, "new")
				os.WriteFile(script, []byte("#!/bin/sh\necho the new binary ran\n"), 0o755)
				if err := os.Rename(script, bin); err != nil {
					t.Fatal(err)
				}
			}
			stdin.Write([]byte("go\n"))
			if got, want := out.wait(t, "child:"), `child: "hello from the parent's binary" <nil>`; got != want {
				t.Fatalf("after the binary was %s: %s, want %s (start: %q)", how, got, want, out.all)
			}
			stdin.Close()
			if err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o755); err != nil {
		t.Fatal(err)
	}
}

// TestRaceExitSleep (a new user's trial): under the race detector a
// child's GORACE gets atexit_sleep_ms=0, added to the user's options
// unless they set it; without it, every child of a -race build slept a
// second at exit, and each Join took a second. Built without -race,
// GORACE is the user's, untouched.
func TestRaceExitSleep(t *testing.T) {
	for _, c := range []struct{ user, race, plain string }{
		{"", "atexit_sleep_ms=0", ""},
		{"halt_on_error=1", "halt_on_error=1 atexit_sleep_ms=0", "halt_on_error=1"},
		{"atexit_sleep_ms=250", "atexit_sleep_ms=250", "atexit_sleep_ms=250"},
	} {
		t.Setenv("GORACE", c.user)
		out := newLines()
		p := start(t, &Process{Entry: "getenv", Args: []string{"GORACE"}, Stdout: out})
		if err := p.Join(context.Background()); err != nil {
			t.Fatal(err)
		}
		want := c.plain
		if raceEnabled {
			want = c.race
		}
		if got := out.wait(t, "env "); got != fmt.Sprintf("env GORACE=%q", want) {
			t.Errorf("GORACE %q in the parent (race %v): the child has %s, want %q", c.user, raceEnabled, got, want)
		}
	}
}
