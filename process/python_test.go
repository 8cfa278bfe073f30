//go:build linux

package process

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func init() {
	Register("interruptible", func([]string) error {
		c := make(chan os.Signal, 1)
		signal.Notify(c, os.Interrupt)
		fmt.Println("ready")
		<-c
		fmt.Println("interrupted")
		return Exit(3)
	})
	Register("parent-info", func([]string) error {
		p := Parent()
		fmt.Println("parent", p.Pid(), p.Name(), p.IsAlive(), p)
		return nil
	})
	// watch-parent: args file. Starts a watcher grandchild that writes
	// file when its parent (this process) has died, prints its pid and
	// waits to be killed.
	Register("watch-parent", func(args []string) error {
		w := &Process{Entry: "parent-gone", Args: args}
		if err := w.Start(); err != nil {
			return err
		}
		fmt.Println("watcher", w.Pid())
		time.Sleep(time.Hour)
		return nil
	})
	Register("parent-gone", func(args []string) error {
		if len(args) > 1 && args[1] == "nopidfd" {
			pidfdOpen = func(int, int) (int, error) { return -1, syscall.ENOSYS }
		}
		p := Parent()
		if !p.IsAlive() {
			return errors.New("parent dead at start")
		}
		fmt.Println("watching")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Join(ctx); err != nil {
			return err
		}
		return os.WriteFile(args[0], fmt.Appendf(nil, "%s %d %v", p.Name(), p.Pid(), p.IsAlive()), 0o600)
	})
}

// TestActiveChildren: the running children, in the order they started;
// a child that exited is gone from the list.
func TestActiveChildren(t *testing.T) {
	out := newLines()
	var ps []*Process
	for range 3 {
		ps = append(ps, start(t, &Process{Entry: "sleep", Stdout: out}))
	}
	got := ActiveChildren()
	if len(got) != 3 || got[0] != ps[0] || got[1] != ps[1] || got[2] != ps[2] {
		t.Fatalf("ActiveChildren: %v, want %v", got, ps)
	}
	ps[1].Kill()
	ps[1].Join(context.Background())
	if got := ActiveChildren(); len(got) != 2 || got[0] != ps[0] || got[1] != ps[2] {
		t.Fatalf("after one exited: %v, want %v", got, []*Process{ps[0], ps[2]})
	}
}

// TestStringAndInterrupt: String reads as Python's repr in each state;
// Interrupt sends SIGINT, which a child may handle (exit status 3 here)
// or die of (-SIGINT).
func TestStringAndInterrupt(t *testing.T) {
	me := os.Getpid()
	out := newLines()
	p := &Process{Entry: "interruptible", Name: "worker", Daemon: true, Stdout: out}
	if got, want := p.String(), fmt.Sprintf("<Process name='worker' parent=%d initial daemon>", me); got != want {
		t.Fatalf("before Start: %s, want %s", got, want)
	}
	if err := p.Interrupt(); !errors.Is(err, ErrNotStarted) {
		t.Fatalf("Interrupt before Start: %v, want ErrNotStarted", err)
	}
	start(t, p)
	out.wait(t, "ready")
	if got, want := p.String(), fmt.Sprintf("<Process name='worker' pid=%d parent=%d started daemon>", p.Pid(), me); got != want {
		t.Fatalf("running: %s, want %s", got, want)
	}
	if err := p.Interrupt(); err != nil {
		t.Fatal(err)
	}
	var ee *ExitError
	if err := p.Join(context.Background()); !errors.As(err, &ee) || ee.Code != 3 {
		t.Fatalf("Join after Interrupt: %v, want exit status 3", err)
	}
	out.wait(t, "interrupted")
	if got, want := p.String(), fmt.Sprintf("<Process name='worker' pid=%d parent=%d stopped exitcode=3 daemon>", p.Pid(), me); got != want {
		t.Fatalf("stopped: %s, want %s", got, want)
	}
	q := start(t, &Process{Entry: "sleep", Stdout: out})
	q.Terminate()
	q.Join(context.Background())
	if got, want := q.String(), fmt.Sprintf("<Process name='%s' pid=%d parent=%d stopped exitcode=-SIGTERM>", q.Name, q.Pid(), me); got != want {
		t.Fatalf("terminated: %s, want %s", got, want)
	}
	ok := start(t, &Process{Entry: "exit", Args: []string{"0"}})
	ok.Join(context.Background())
	if got := ok.String(); !strings.HasSuffix(got, " stopped exitcode=0>") {
		t.Fatalf("exited: %s", got)
	}
}

// TestParent: the main process has no parent (Python's None); a child's
// parent is this process, by pid and name, and alive.
func TestParent(t *testing.T) {
	if p := Parent(); p != nil {
		t.Fatalf("Parent() in the main process: %v, want nil", p)
	}
	out := newLines()
	c := start(t, &Process{Entry: "parent-info", Stdout: out})
	if err := c.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("parent %d MainProcess true <_ParentProcess name='MainProcess' parent=%d>", os.Getpid(), os.Getpid())
	if got := out.wait(t, "parent"); got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
}

// TestParentDeath: a grandchild waits in Parent().Join for its parent,
// which is SIGKILLed; the Join returns and the parent reads dead.
func TestParentDeath(t *testing.T) {
	if err := SetSubreaper(); err != nil {
		t.Fatal(err)
	}
	for _, how := range []string{"pidfd", "nopidfd"} {
		t.Run(how, func(t *testing.T) { parentDeath(t, how) })
	}
}

// parentDeath is TestParentDeath, with pidfd_open working or failing (a
// kernel before 5.3: then getppid is polled).
func parentDeath(t *testing.T, how string) {
	file := filepath.Join(t.TempDir(), "gone")
	out := newLines()
	mid := start(t, &Process{Entry: "watch-parent", Name: "mid", Args: []string{file, how}, Stdout: out})
	watcher, _ := strconv.Atoi(strings.Fields(out.wait(t, "watcher"))[1])
	out.wait(t, "watching") // the watcher's stdout is mid's, which is ours
	mid.Kill()
	mid.Join(context.Background())
	code, err := ReapOrphan(watcher)
	if err != nil || code != 0 {
		t.Fatalf("watcher: status %d, %v", code, err)
	}
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), fmt.Sprintf("mid %d false", mid.Pid()); got != want {
		t.Fatalf("watcher wrote %q, want %q", got, want)
	}
}
