//go:build linux

package cyard

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/process"

	"github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) {
	process.Main(func() error { return process.Exit(m.Run()) })
}

func init() {
	// A parent of yard: starts a seller that waits at a barrier that
	// never opens, says its pid, and waits to be killed.
	process.Register("parent", func(args []string) error {
		c, err := Start(context.Background(), args[0], "sell", "cas", args[1], off(64), off(64), "10", args[1], off(8), "0")
		if err != nil {
			return err
		}
		if _, err := c.Line("ready"); err != nil {
			return err
		}
		fmt.Println("yard", c.Pid())
		time.Sleep(time.Hour)
		return nil
	})
}

func yard(t *testing.T) string {
	t.Helper()
	p, err := Build(context.Background())
	if errors.Is(err, ErrNoCompiler) && os.Getenv("SHMKIT_REQUIRE_CC") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return p
}

var segSeq atomic.Int64

// segment makes a shm segment of size data bytes, removed after the test.
func segment(t *testing.T, size int) *shm.Segment {
	t.Helper()
	name := fmt.Sprintf("cyard.test.%d.%d", os.Getpid(), segSeq.Add(1))
	shm.Remove(name)
	s, err := shm.Create(name, size, "cyard.test/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(); shm.Remove(name) })
	return s
}

func off(o int) string { return strconv.Itoa(shm.DataOffset + o) }

func word(s *shm.Segment, o int) *atomic.Int64 {
	// 8-aligned inside a shared mapping that outlives the test's uses.
	return (*atomic.Int64)(unsafe.Pointer(&s.Data()[o]))
}

func TestBuild(t *testing.T) {
	p := yard(t)
	built.path = ""
	q, err := Build(context.Background())
	if err != nil || q != p {
		t.Fatalf("second build: %q, %v; want the cached %q", q, err, p)
	}
	out, err := Run(context.Background(), p, "clock")
	if err != nil {
		t.Fatal(err)
	}
	var ns float64
	if _, err := fmt.Sscanf(out, "clock %g\n", &ns); err != nil || ns <= 0 {
		t.Fatalf("clock: %q, %v", out, err)
	}

	built.path = ""
	t.Setenv("CC", "/nonexistent/cc")
	if _, err := Build(context.Background()); !errors.Is(err, ErrNoCompiler) {
		t.Fatalf("CC missing: %v, want ErrNoCompiler", err)
	}
	t.Setenv("CC", "false") // a compiler that fails: a new hash, so a build
	if _, err := Build(context.Background()); !errors.Is(err, ErrBuild) {
		t.Fatalf("CC=false: %v, want ErrBuild", err)
	}
	t.Setenv("CC", "")
	t.Setenv("PATH", t.TempDir())
	if _, err := Build(context.Background()); !errors.Is(err, ErrNoCompiler) {
		t.Fatalf("no cc on PATH: %v, want ErrNoCompiler", err)
	}
	built.path = ""
}

// TestSell: buyers in C, through the mutex and through the CAS, sell
// exactly the tickets, timed or not, after the start barrier opens.
func TestSell(t *testing.T) {
	y := yard(t)
	for _, kind := range []string{"robust", "cas"} {
		for _, timed := range []string{"0", "1"} {
			t.Run(kind+timed, func(t *testing.T) {
				store, ctl := segment(t, 128), segment(t, 64)
				if _, err := Run(context.Background(), y, "init", store.Path(), off(0)); err != nil {
					t.Fatal(err)
				}
				const limit, buyers = 200000, 3
				var cs []*Cmd
				for range buyers {
					c, err := Start(context.Background(), y, "sell", kind, store.Path(), off(0), off(64), strconv.Itoa(limit), ctl.Path(), off(8), timed)
					if err != nil {
						t.Fatal(err)
					}
					defer c.Wait()
					defer c.Kill() // on failure: nothing left behind
					if _, err := c.Line("ready"); err != nil {
						t.Fatal(err)
					}
					cs = append(cs, c)
				}
				if n := word(store, 64).Load(); n != 0 {
					t.Fatalf("sold %d before the barrier opened", n)
				}
				word(ctl, 8).Store(1)
				var total int64
				for _, c := range cs {
					f, err := c.Line("sold")
					if err != nil {
						t.Fatal(err)
					}
					mine, _ := strconv.ParseInt(f[0], 10, 64)
					if len(f) != 3 || f[1] != "0" {
						t.Fatalf("sold %q: want no error", f)
					}
					total += mine
					if timed == "1" {
						f, err := c.Line("hist")
						if err != nil {
							t.Fatal(err)
						}
						h, err := ParseHist(f)
						if err != nil {
							t.Fatal(err)
						}
						if int64(h.Count) != mine {
							t.Fatalf("hist counts %d gaps, the buyer sold %d", h.Count, mine)
						}
					}
					if err := c.Wait(); err != nil {
						t.Fatal(err)
					}
				}
				if got := word(store, 64).Load(); total != limit || got != limit {
					t.Fatalf("buyers sold %d, counter %d; want %d", total, got, limit)
				}
			})
		}
	}
}

// TestHoldTakeover: a holder SIGKILLed with the pthread mutex hands it to
// the waiter with EOWNERDEAD; a waiter on a free lock says it was free.
func TestHoldTakeover(t *testing.T) {
	y := yard(t)
	store, ctl := segment(t, 128), segment(t, 64)
	if _, err := Run(context.Background(), y, "init", store.Path(), off(0)); err != nil {
		t.Fatal(err)
	}
	for i := range 3 { // a repaired lock is taken, and lost, again
		h, err := Start(context.Background(), y, "hold", store.Path(), off(0), ctl.Path(), off(8), "4")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.Line("held"); err != nil {
			h.Kill()
			h.Wait()
			t.Fatal(err)
		}
		if n := word(ctl, 8).Load(); n != int64(i+1) {
			t.Fatalf("ready count %d after %d holders", n, i+1)
		}
		if tasks, err := os.ReadDir(fmt.Sprintf("/proc/%d/task", h.Pid())); err != nil || len(tasks) != 4 {
			t.Fatalf("the holder has %d threads (%v), want 4", len(tasks), err)
		}
		w, err := Start(context.Background(), y, "takeover", store.Path(), off(0))
		if err != nil {
			t.Fatal(err)
		}
		h.Kill()
		if err := h.Wait(); err == nil {
			t.Fatal("the holder exited 0; want its SIGKILL")
		}
		if _, err := w.Line("took"); err != nil {
			t.Fatal(err)
		}
		if err := w.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := Run(context.Background(), y, "takeover", store.Path(), off(0)); err == nil {
		t.Fatal("takeover of a free lock succeeded; want exit status 3")
	}
}

// TestRing: two producers and two consumers through the C ring deliver
// every message once, none torn.
func TestRing(t *testing.T) {
	y := yard(t)
	const cap, size, producers, consumers, each = 64, 64, 2, 2, 20000
	ring := segment(t, 256+cap*((8+size+63)&^63))
	bits := segment(t, producers*each/8)
	ctl := segment(t, 64)
	if _, err := Run(context.Background(), y, "ring-init", ring.Path(), off(0), strconv.Itoa(cap), strconv.Itoa(size)); err != nil {
		t.Fatal(err)
	}
	var cs, ps []*Cmd
	start := func(args ...string) *Cmd {
		c, err := Start(context.Background(), y, args...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Kill(); c.Wait() })
		if _, err := c.Line("ready"); err != nil {
			t.Fatal(err)
		}
		return c
	}
	for range consumers {
		cs = append(cs, start("ring-consume", ring.Path(), off(0), bits.Path(), off(0), strconv.Itoa(producers*each/64), strconv.Itoa(each), strconv.Itoa(producers), ctl.Path(), off(8)))
	}
	for i := range producers {
		ps = append(ps, start("ring-produce", ring.Path(), off(0), strconv.Itoa(i), "1", strconv.Itoa(each), strconv.Itoa(producers), strconv.Itoa(consumers), ctl.Path(), off(8)))
	}
	word(ctl, 8).Store(1)
	for _, p := range ps {
		if err := p.Wait(); err != nil {
			t.Fatal(err)
		}
	}
	var got int64
	for _, c := range cs {
		f, err := c.Line("consumed")
		if err != nil {
			t.Fatal(err)
		}
		if len(f) != 3 || f[1] != "0" || f[2] != "0" {
			t.Fatalf("consumed %q: want no duplicates, nothing torn", f)
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		got += n
	}
	if got != producers*each {
		t.Fatalf("consumed %d messages, sent %d", got, producers*each)
	}
	for i, b := range bits.Data()[:producers*each/8] {
		if b != 0xff {
			t.Fatalf("bitmap byte %d is %#x: a message never arrived", i, b)
		}
	}
}

// TestDiesWithParent: yard dies with the process that started it, even
// waiting at a barrier that never opens (Start's Pdeathsig).
func TestDiesWithParent(t *testing.T) {
	y := yard(t)
	if err := process.SetSubreaper(); err != nil {
		t.Fatal(err)
	}
	s := segment(t, 128)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	p := &process.Process{Entry: "parent", Args: []string{y, s.Path()}, Stdout: w}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer func() { p.Kill(); p.Join(context.Background()) }()
	var pid int
	if _, err := fmt.Fscanf(r, "yard %d\n", &pid); err != nil {
		t.Fatal(err)
	}
	p.Kill()
	p.Join(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		code, err := process.ReapOrphan(pid) // ours: we are the subreaper
		if err != nil || code != -9 {
			t.Errorf("yard: status %d, %v; want SIGKILLed with its parent", code, err)
		}
	}()
	select {
	case <-done:
	case <-time.After(time.Minute):
		syscall.Kill(pid, syscall.SIGKILL)
		<-done
		t.Fatal("yard outlived its parent")
	}
}

// TestBadArguments: yard refuses offsets outside its file, misaligned
// ones, bad numbers and unknown commands, with a message, not a crash.
func TestBadArguments(t *testing.T) {
	y := yard(t)
	s := segment(t, 128)
	for _, args := range [][]string{
		{},
		{"nonsense"},
		{"init", s.Path(), off(128)},
		{"init", s.Path(), off(4)},
		{"init", s.Path(), "-8"},
		{"init", s.Path(), "12x"},
		{"init", "/nonexistent", "0"},
		{"sell", "robust", s.Path(), off(0), off(64), "10", s.Path()},
		{"sell", "ticket", s.Path(), off(0), off(64), "10", s.Path(), off(8), "0"},
		{"ring-init", s.Path(), off(0), "3", "64"},
		{"ring-produce", s.Path(), off(0), "0", "1", "2", "1", "1", s.Path(), off(8)}, // no ring there: its header says capacity 1, size 0
	} {
		out, err := Run(context.Background(), y, args...)
		var ee interface{ ExitCode() int }
		if !errors.As(err, &ee) || ee.ExitCode() == 0 || out != "" {
			t.Errorf("yard %q: %q, %v; want a failure with a message", args, out, err)
		}
	}
}

// TestRingHeaderLies: a ring's header is shared memory, anyone's to
// write. yard refuses a header whose cell stride its message size does
// not make (it used to trust the stride and crash with SIGSEGV), and a
// producer that checked the header goes on with what it read then, not
// with a header changed afterwards (it used to re-read it on every
// message and write past the mapping).
func TestRingHeaderLies(t *testing.T) {
	y := yard(t)
	const cap, size = 4, 16
	ring, ctl := segment(t, 256+cap*64), segment(t, 64)
	bits := segment(t, 64)
	initRing := func() {
		t.Helper()
		if _, err := Run(context.Background(), y, "ring-init", ring.Path(), off(0), strconv.Itoa(cap), strconv.Itoa(size)); err != nil {
			t.Fatal(err)
		}
	}
	produce := []string{"ring-produce", ring.Path(), off(0), "0", "1", "2", "1", "1", ctl.Path(), off(8)}

	initRing()
	word(ring, 16).Store(1 << 40) // the cell stride
	word(ctl, 8).Store(1)         // no wait at the barrier: straight to the ring
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	out, err := Run(ctx, y, produce...)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() <= 0 || out != "" {
		t.Fatalf("a header with a wrong stride: %q, %v; want an exit status and a message", out, err)
	}

	initRing()
	word(ctl, 8).Store(0)
	c, err := Start(ctx, y, produce...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Wait()
	defer c.Kill()
	if _, err := c.Line("ready"); err != nil {
		t.Fatal(err)
	}
	word(ring, 0).Store(1<<24 - 1) // mask: cells a gigabyte past the file
	word(ring, 8).Store(1 << 20)   // size
	word(ring, 16).Store(1<<20 + 64)
	word(ctl, 8).Store(1)
	if err := c.Wait(); err != nil {
		t.Fatalf("a producer whose ring header changed after its check: %v", err)
	}
	word(ring, 0).Store(cap - 1)
	word(ring, 8).Store(size)
	word(ring, 16).Store(64)
	out, err = Run(context.Background(), y, "ring-consume", ring.Path(), off(0), bits.Path(), off(0), "1", "2", "1", ctl.Path(), off(8))
	if err != nil || out != "ready\nconsumed 2 0 0\n" {
		t.Fatalf("consumer: %q, %v; want the producer's 2 messages, none torn", out, err)
	}
}

// TestBuildCacheDamaged: a cached yard that does not run as yard (cut
// short, or replaced by another program) is built again; it used to be
// run, and every command failed until someone deleted it.
func TestBuildCacheDamaged(t *testing.T) {
	yard(t) // skips without a compiler
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	built.path = ""
	defer func() { built.path = "" }()
	p, err := Build(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for what, content := range map[string]string{
		"cut short": "",
		"replaced":  "#!/bin/sh\necho ready\n",
	} {
		if err := os.WriteFile(p, []byte(content), 0o700); err != nil {
			t.Fatal(err)
		}
		built.path = ""
		q, err := Build(context.Background())
		if err != nil || q != p {
			t.Fatalf("%s: Build = %q, %v; want %q", what, q, err, p)
		}
		if out, err := Run(context.Background(), q, "clock"); err != nil || !strings.HasPrefix(out, "clock ") {
			t.Fatalf("%s: the cached yard: %q, %v; want it built again", what, out, err)
		}
	}
}

// TestBuildCancelled: a Build whose context ends stops the compiler and
// the passes it started (gcc's cc1 and as are its children), returns the
// context's error, and leaves no temporary file. It used to kill the
// driver alone: the passes ran on as orphans, Build waited for them (they
// held its output pipe), and their files stayed in $TMPDIR.
func TestBuildCancelled(t *testing.T) {
	dir := t.TempDir()
	tmp := filepath.Join(dir, "tmp")
	if err := os.Mkdir(tmp, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", filepath.Join(dir, "cache"))
	t.Setenv("TMPDIR", tmp)
	pidFile := filepath.Join(dir, "pass.pid")
	t.Setenv("PASS_PID", pidFile)
	cc := filepath.Join(dir, "slowcc")
	script := "#!/bin/sh\n" +
		"# a driver whose pass is a child, writing a temporary file, as gcc's cc1 does\n" +
		"sh -c 'echo $$ > \"$PASS_PID.tmp\"; mv \"$PASS_PID.tmp\" \"$PASS_PID\"; exec sleep 3600' > \"${TMPDIR:-/tmp}/pass.s\" &\n" +
		"wait\n"
	if err := os.WriteFile(cc, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CC", cc)
	built.path = ""
	defer func() { built.path = "" }()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := Build(ctx)
		done <- err
	}()
	var pid int
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		if b, err := os.ReadFile(pidFile); err == nil {
			pid, _ = strconv.Atoi(strings.TrimSpace(string(b)))
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the compiler's pass did not start")
		}
	}
	defer syscall.Kill(pid, syscall.SIGKILL) // if the test fails
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Build cancelled: %v, want context.Canceled", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("Build still waiting 30s after its context ended: for the compiler's orphaned pass")
	}
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(st), ") Z ") {
			break // gone, or dead and waiting for its reaper
		}
		if time.Now().After(deadline) {
			t.Fatalf("the compiler's pass (pid %d) outlived the cancelled Build", pid)
		}
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("left in $TMPDIR: %v", left)
	}
	if left, _ := filepath.Glob(filepath.Join(dir, "cache", "shmkit", "build-*")); len(left) > 0 {
		t.Errorf("build directories left: %v", left)
	}
}

// TestLineCutShort: text after the last newline is not a line: a yard
// killed as it printed "sold 123456 0 ..." left "sold 12", which Line
// returned as a line (its number shorter), and a caller blamed the output
// rather than the kill. Line now says how yard ended; a program that
// exits 0 after an unfinished line is ErrOutput.
func TestLineCutShort(t *testing.T) {
	c, err := Start(context.Background(), "/bin/sh", "-c", `printf 'sold 12'; kill -9 $$`)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := c.Line("sold"); err == nil || !strings.Contains(err.Error(), "signal: killed") {
		t.Errorf("a line cut short by SIGKILL: %q, %v; want the kill", f, err)
	}
	c, err = Start(context.Background(), "/bin/sh", "-c", `printf 'sold 12'`)
	if err != nil {
		t.Fatal(err)
	}
	if f, err := c.Line("sold"); !errors.Is(err, ErrOutput) {
		t.Errorf("an unfinished last line, status 0: %q, %v; want ErrOutput", f, err)
	}
	if out, err := Run(context.Background(), "/bin/sh", "-c", `printf 'clock 1\nclock 2'`); !errors.Is(err, ErrOutput) || out != "clock 1\n" {
		t.Errorf("Run of an unfinished last line: %q, %v; want the whole lines and ErrOutput", out, err)
	}
}

// TestInts: a line of a word and whole numbers reads as the numbers; the
// wrong count, a number that is not one, or another word is ErrOutput.
func TestInts(t *testing.T) {
	c, err := Start(context.Background(), "/bin/sh", "-c", `printf 'sold 3 0 -7\nsold 1 2\nsold 1 x 3\ntook 1\nclock 1\n'`)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Wait()
	if v, err := c.Ints("sold", 3); err != nil || len(v) != 3 || v[0] != 3 || v[1] != 0 || v[2] != -7 {
		t.Fatalf("sold 3 0 -7: %v, %v", v, err)
	}
	for _, tc := range []struct {
		word string
		n    int
	}{{"sold", 3}, {"sold", 3}, {"took", 2}, {"took", 1}} {
		if v, err := c.Ints(tc.word, tc.n); !errors.Is(err, ErrOutput) {
			t.Errorf("Ints(%q, %d): %v, %v; want ErrOutput", tc.word, tc.n, v, err)
		}
	}
}
