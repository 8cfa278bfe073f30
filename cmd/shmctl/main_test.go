//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

func TestMain(m *testing.M) {
	testproc.Main(m, map[string]testproc.Entry{
		"buy":        buyEntry,
		"lock":       lockEntry,
		"unlock-bad": unlockBadEntry,
		"acquire":    acquireEntry,
		"recv-die":   recvDieEntry,
	})
}

// recvDieEntry: args path. Takes a message in RecvFunc and is SIGKILLed
// holding it.
func recvDieEntry(args []string) int {
	q, err := queue.Open(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	q.RecvFunc(context.Background(), func([]byte) error {
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		return nil
	})
	return 1
}

// TestQueue: a receiver killed taking a message: stat names the cell and
// its dead process, audit holds with a note, repair puts the message back.
func TestQueue(t *testing.T) {
	path := filepath.Join(t.TempDir(), "q")
	q, err := queue.Create(context.Background(), path, 8, 32)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	q.Send(context.Background(), []byte("one"))
	q.Send(context.Background(), []byte("two"))
	child := testproc.Start(t, "recv-die", path)
	child.Wait()
	s := statJSON(t, path).Queue
	if s == nil || s.Len != 2 || s.Ready != 1 || len(s.Taking) != 1 || s.Taking[0].Alive || s.Taking[0].Pid != child.Pid() || s.Capacity != 8 {
		t.Fatalf("queue with a dead taker: %+v", s)
	}
	if out := want(t, 0, "audit", path); !strings.Contains(out, "the cell at position 0 is pid") {
		t.Errorf("audit: %q", out)
	}
	if out := want(t, 0, "repair", path); !strings.Contains(out, "settled 1 cell(s)") {
		t.Errorf("repair: %q", out)
	}
	if s := statJSON(t, path).Queue; s.Ready != 2 || len(s.Taking) != 0 {
		t.Errorf("after repair: %+v", s)
	}
	if m, err := q.RecvMsg(context.Background()); err != nil || string(m) != "one" {
		t.Errorf("first message after repair: %q %v", m, err)
	}
}

// buyEntry: args path, total, mode (locked|lockfree), n. Opens or makes
// the Counter, buys n tickets, says "bought", waits to be killed.
func buyEntry(args []string) int {
	total, _ := strconv.ParseInt(args[1], 10, 64)
	n, _ := strconv.Atoi(args[3])
	mode := ticketshm.Locked
	if args[2] == "lockfree" {
		mode = ticketshm.LockFree
	}
	c, err := ticketshm.OpenOrCreate(context.Background(), args[0], total, mode)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	for range n {
		if _, err := c.Buy(context.Background()); err != nil {
			fmt.Println("error", err)
			return 1
		}
	}
	fmt.Println("bought")
	time.Sleep(time.Hour)
	return 0
}

// lockEntry: args path. Locks the Mutex, says "locked", waits to be killed.
func lockEntry(args []string) int {
	m, err := semaphore.OpenOrCreateMutex(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	if err := m.Lock(); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("locked")
	time.Sleep(time.Hour)
	return 0
}

// unlockBadEntry: args path. Locks the Mutex (its owner died), unlocks it
// without Consistent, making it not recoverable; says "done", waits.
func unlockBadEntry(args []string) int {
	m, err := semaphore.OpenMutex(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	if err := m.Lock(); !errors.Is(err, semaphore.ErrOwnerDead) {
		fmt.Println("error: want ErrOwnerDead, got", err)
		return 1
	}
	m.Unlock()
	fmt.Println("done")
	time.Sleep(time.Hour)
	return 0
}

// acquireEntry: args path, capacity, n. Acquires n permits, says
// "acquired", waits to be killed.
func acquireEntry(args []string) int {
	capacity, _ := strconv.ParseInt(args[1], 10, 64)
	n, _ := strconv.ParseInt(args[2], 10, 64)
	s, err := semaphore.OpenOrCreateSemaphore(context.Background(), args[0], capacity)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	if err := s.Acquire(context.Background(), n); err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("acquired")
	time.Sleep(time.Hour)
	return 0
}

// shmctl runs the tool in this process and returns its exit status,
// stdout and stderr.
func shmctl(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(context.Background(), args, &out, &errb)
	return code, out.String(), errb.String()
}

// want runs the tool and fails the test unless it exits with code.
func want(t *testing.T, code int, args ...string) string {
	t.Helper()
	got, out, errs := shmctl(t, args...)
	if got != code {
		t.Fatalf("shmctl %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(args, " "), got, code, out, errs)
	}
	return out
}

// statJSON is shmctl stat -json of path, decoded.
func statJSON(t *testing.T, path string) segment {
	t.Helper()
	var s segment
	out := want(t, 0, "stat", "-json", path)
	if err := json.Unmarshal([]byte(out), &s); err != nil {
		t.Fatalf("stat -json: %v\n%s", err, out)
	}
	return s
}

// fileBytes is the whole file: a look must leave it as it was.
func fileBytes(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCounter: a Counter biased to a live buyer, then the buyer killed;
// a lock-free buyer killed with buys in its log. ls, stat and audit see
// them without changing a byte; repair settles the dead log.
func TestCounter(t *testing.T) {
	dir := t.TempDir()
	t.Run("locked", func(t *testing.T) {
		path := filepath.Join(dir, "locked")
		child := testproc.Start(t, "buy", path, "100", "locked", "3")
		child.Expect("bought")
		before := fileBytes(t, path)
		s := statJSON(t, path)
		c := s.Counter
		switch {
		case c == nil:
			t.Fatalf("stat: no counter view: %+v", s)
		case c.Total != 100 || c.Remaining != 97 || c.Mode != ticketshm.Locked || !c.Audit.OK() || c.Audit.Sold != 3:
			t.Errorf("counter: %+v", c)
		case c.Lock.BiasedTo == nil || c.Lock.BiasedTo.Pid != child.Pid() || !c.Lock.BiasedTo.Alive || c.Lock.State != "free":
			t.Errorf("lock: %+v, want free and biased to the live buyer %d", c.Lock, child.Pid())
		case s.Live != 1 || len(s.Pids) != 1 || s.Pids[0] != child.Pid():
			t.Errorf("processes: live %d, pids %v; want the buyer", s.Live, s.Pids)
		}
		out := want(t, 0, "stat", path)
		for _, w := range []string{"ticketshm.Counter/5", "locked, 100 tickets, 97 remaining", "audit      OK: sold 3 + remaining 97 of 100",
			fmt.Sprintf("bias       pid %d (slot 0), inside a critical section: no", child.Pid())} {
			if !strings.Contains(out, w) {
				t.Errorf("stat text lacks %q:\n%s", w, out)
			}
		}
		want(t, 0, "audit", path)
		if code, _, errs := shmctl(t, "rm", path); code != 1 || !strings.Contains(errs, strconv.Itoa(child.Pid())) {
			t.Errorf("rm of a counter in use: exit %d, stderr %q; want 1 naming pid %d", code, errs, child.Pid())
		}
		child.Kill()
		child.Wait()
		s = statJSON(t, path)
		if s.Live != 0 || s.Dead != 1 || len(s.Pids) != 0 {
			t.Errorf("after the kill: live %d, dead %d, pids %v; want 0, 1, none", s.Live, s.Dead, s.Pids)
		}
		if lk := s.Counter.Lock; lk.BiasedTo == nil || lk.BiasedTo.Alive || lk.State != "free" || lk.Consistency != "consistent" {
			t.Errorf("lock after the biased holder's death outside a critical section: %+v", lk)
		}
		want(t, 0, "audit", path)
		if !bytes.Equal(before[:shm.HeaderSize], fileBytes(t, path)[:shm.HeaderSize]) {
			t.Error("the look changed the header")
		}
	})
	t.Run("lockfree killed", func(t *testing.T) {
		path := filepath.Join(dir, "lockfree")
		child := testproc.Start(t, "buy", path, "1000", "lockfree", "10")
		child.Expect("bought")
		child.Kill()
		child.Wait()
		before := fileBytes(t, path)
		s := statJSON(t, path)
		if s.Counter == nil || s.Counter.Unsettled != 10 || !s.Counter.Audit.OK() || s.Counter.Audit.Sold != 10 {
			t.Fatalf("a dead buyer's 10 logged buys: %+v", s.Counter)
		}
		out := want(t, 0, "audit", path)
		if !strings.Contains(out, "10 ticket(s) in dead buyers' logs") {
			t.Errorf("audit does not say what is unsettled:\n%s", out)
		}
		want(t, 0, "ls", "-json", dir)
		if !bytes.Equal(before, fileBytes(t, path)) {
			t.Fatal("stat, audit or ls changed the segment")
		}
		var r repairResult
		out = want(t, 0, "repair", "-json", path)
		if err := json.Unmarshal([]byte(out), &r); err != nil || len(r.Did) != 1 || !strings.Contains(r.Did[0], "settled 10 ticket(s)") {
			t.Errorf("repair: %v %+v\n%s", err, r, out)
		}
		if s := statJSON(t, path); s.Counter.Unsettled != 0 || !s.Counter.Audit.OK() {
			t.Errorf("after repair: %+v", s.Counter)
		}
		if out := want(t, 0, "repair", path); !strings.Contains(out, "left alone: nothing to settle") {
			t.Errorf("second repair: %q", out)
		}
	})
}

// TestMutex: held by a live process, then SIGKILLed holding it, then made
// not recoverable; rm, audit and repair each answer as documented.
func TestMutex(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mutex")
	child := testproc.Start(t, "lock", path)
	child.Expect("locked")
	m := statJSON(t, path).Mutex
	if m == nil || m.State != "held" || m.Owner == nil || m.Owner.Pid != child.Pid() || !m.Owner.Alive {
		t.Fatalf("held by %d: %+v", child.Pid(), m)
	}
	code, out, errs := shmctl(t, "rm", "-json", path)
	var r rmResult
	if code != 1 || json.Unmarshal([]byte(out), &r) != nil || r.Removed || len(r.Pids) != 1 || r.Pids[0] != child.Pid() ||
		!strings.Contains(errs, fmt.Sprint(child.Pid())) {
		t.Errorf("rm -json of a held mutex: exit %d, %q, %q; want 1, not removed, naming %d", code, out, errs, child.Pid())
	}
	child.Kill()
	child.Wait()
	m = statJSON(t, path).Mutex
	if m.Consistency != "owner died" || m.Held() && m.Owner != nil {
		t.Errorf("after the holder's death: %+v", m)
	}
	want(t, 0, "audit", path) // robust: the next locker repairs
	if out := want(t, 0, "repair", path); !strings.Contains(out, "the next locker gets ErrOwnerDead") {
		t.Errorf("repair of an owner-died mutex: %q", out)
	}

	bad := testproc.Start(t, "unlock-bad", path)
	bad.Expect("done")
	if m := statJSON(t, path).Mutex; m.Consistency != "not recoverable" {
		t.Fatalf("after an unlock without Consistent: %+v", m)
	}
	var a auditResult
	if out := want(t, 1, "audit", "-json", path); json.Unmarshal([]byte(out), &a) != nil || a.OK || len(a.Problems) != 1 {
		t.Errorf("audit -json of a not-recoverable mutex: %q", out)
	}
	code, _, errs = shmctl(t, "repair", path)
	if code != 1 || !strings.Contains(errs, fmt.Sprint(bad.Pid())) {
		t.Errorf("repair while a live process has it open: exit %d, %q; want 1 naming %d", code, errs, bad.Pid())
	}
	bad.Kill()
	bad.Wait()
	if out := want(t, 0, "repair", path); !strings.Contains(out, "reset the not-recoverable mutex") {
		t.Errorf("repair: %q", out)
	}
	want(t, 0, "audit", path)
	if m := statJSON(t, path).Mutex; m.State != "free" || m.Consistency != "consistent" {
		t.Errorf("after repair: %+v", m)
	}
	want(t, 0, "rm", path)
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("rm left the file: %v", err)
	}
}

// TestOtherNamespace: a process of another PID namespace holding a slot
// is counted live but its pid, which means nothing here, is not listed
// as ours; rm refuses all the same.
func TestOtherNamespace(t *testing.T) {
	path := filepath.Join(t.TempDir(), "mutex")
	child := testproc.StartInNewPIDNamespace(t, "lock", path)
	child.Expect("locked")
	s := statJSON(t, path)
	if s.Live != 1 || s.Foreign != 1 || len(s.Pids) != 1 || s.Pids[0] != child.Pid() || len(s.Slots) != 1 || !s.Slots[0].Foreign || s.Slots[0].Pid != 1 {
		t.Errorf("a holder in its own PID namespace (pid 1 there, %d here): %+v", child.Pid(), s)
	}
	if code, _, errs := shmctl(t, "rm", path); code != 1 || !strings.Contains(errs, "1 in other PID namespaces") {
		t.Errorf("rm: exit %d, %q", code, errs)
	}
}

// TestSemaphore: a dead holder's permits are shown, audited as a note, and
// given back by repair.
func TestSemaphore(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sem")
	live := testproc.Start(t, "acquire", path, "3", "1")
	live.Expect("acquired")
	dead := testproc.Start(t, "acquire", path, "3", "2")
	dead.Expect("acquired")
	dead.Kill()
	dead.Wait()
	s := statJSON(t, path).Semaphore
	if s == nil || s.Capacity != 3 || s.Available != 0 || !s.Balanced || len(s.Holders) != 2 {
		t.Fatalf("semaphore: %+v", s)
	}
	for _, h := range s.Holders {
		if h.Alive != (h.Permits == 1) || h.Alive && h.Pid != live.Pid() {
			t.Errorf("holder %+v", h)
		}
	}
	if out := want(t, 0, "audit", path); !strings.Contains(out, "holds 2 permit(s): the next Acquire") {
		t.Errorf("audit: %q", out)
	}
	if out := want(t, 0, "repair", path); !strings.Contains(out, "gave back 2 permit(s)") {
		t.Errorf("repair: %q", out)
	}
	if s := statJSON(t, path).Semaphore; s.Available != 2 || len(s.Holders) != 1 {
		t.Errorf("after repair: %+v", s)
	}
}

// TestFiles: ls skips files that are not segments and lists a corrupt one
// with its reason (exit 1); rm never removes a foreign file nor follows a
// symbolic link; bad names and missing files exit 2.
func TestFiles(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good")
	seg, err := shm.Create(good, 64, "test.thing/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	seg.Close()
	corrupt := filepath.Join(dir, "corrupt")
	b := fileBytes(t, good)
	b[40] ^= 0xff // inside the header: the checksum fails
	if err := os.WriteFile(corrupt, b, 0o600); err != nil {
		t.Fatal(err)
	}
	foreign := filepath.Join(dir, "notes.txt")
	os.WriteFile(foreign, []byte("hello\n"), 0o600)
	link := filepath.Join(dir, "link")
	os.Symlink(good, link)

	out := want(t, 1, "ls", dir)
	for _, w := range []string{"good", "test.thing/1", "corrupt (", "ready"} {
		if !strings.Contains(out, w) {
			t.Errorf("ls lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "notes.txt") || strings.Contains(out, "link") {
		t.Errorf("ls lists a file that is no segment, or a link:\n%s", out)
	}
	out = want(t, 1, "ls", "-json", dir)
	if n := strings.Count(out, "\n"); n != 2 {
		t.Errorf("ls -json: %d lines, want 2 (one per segment):\n%s", n, out)
	}
	if out := want(t, 0, "audit", good); !strings.Contains(out, "header OK") {
		t.Errorf("audit of a type shmctl has no view of: %q", out)
	}
	want(t, 1, "audit", corrupt)
	want(t, 1, "stat", corrupt)
	want(t, 2, "rm", foreign)
	want(t, 2, "rm", link)
	want(t, 2, "stat", filepath.Join(dir, "missing"))
	want(t, 2, "stat", "a/../b")
	want(t, 2, "stat")
	want(t, 2, "frobnicate")
	for _, f := range []string{foreign, link, good} {
		if _, err := os.Lstat(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	// Files of zeros or of nothing are what OpenOrCreate makes before it
	// writes a header, and any other program's fresh shared memory
	// (Python's shared_memory) or empty file: outside /dev/shm/shmkit.*
	// they are not segments (before, ls listed them as corrupt, exit 1,
	// and rm removed them).
	empty, zeros := filepath.Join(dir, "empty"), filepath.Join(dir, "psm_1234")
	os.WriteFile(empty, nil, 0o600)
	os.WriteFile(zeros, make([]byte, 4096), 0o600)
	short := filepath.Join(dir, "S") // a byte that starts like the magic
	os.WriteFile(short, []byte("S"), 0o600)
	defer os.Remove(short)
	want(t, 2, "rm", short)
	if out := want(t, 1, "ls", dir); strings.Contains(out, "empty") || strings.Contains(out, "psm_1234") {
		t.Errorf("ls lists files of zeros not named as segments:\n%s", out)
	}
	want(t, 2, "rm", empty)
	want(t, 2, "rm", zeros)
	// A name that would paint the terminal or forge a row is escaped.
	odd := filepath.Join(dir, "x\x1b[2J\ny\x9b")
	if seg, err := shm.Create(odd, 64, "test.thing/1", nil); err != nil {
		t.Fatal(err)
	} else {
		seg.Close()
	}
	if out := want(t, 1, "ls", dir); strings.ContainsAny(out, "\x1b") || strings.Contains(out, "\x9b") || !strings.Contains(out, `x\x1b[2J\ny\x9b`) || strings.Count(out, "\n") != 4 {
		t.Errorf("ls of a name with an escape and a newline, raw or not on one row:\n%q", out)
	}
	for _, f := range []string{empty, zeros} {
		if _, err := os.Lstat(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	os.Remove(empty)
	os.Remove(zeros)
	want(t, 0, "rm", corrupt, good, odd)

	// A bare name lives in /dev/shm, which ls lists by default.
	bare := fmt.Sprintf("shmctl-test.%d", os.Getpid())
	seg, err = shm.Create(bare, 64, "test.thing/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer shm.Remove(bare)
	// Other packages' tests, running meanwhile, may have corrupt
	// segments there: exit 1 then, with ours listed all the same.
	code, out, _ := shmctl(t, "ls")
	if code == exitUsage || !strings.Contains(out, bare+" ") {
		t.Errorf("ls of /dev/shm lacks %s:\n%s", bare, out)
	}
	s := statJSON(t, bare)
	if s.Name != bare || s.Path != filepath.Join(shm.Dir, shm.Prefix+bare) {
		t.Errorf("stat of a bare name: %q at %q", s.Name, s.Path)
	}
	seg.Close()
	// A file of nothing named as ours is a segment never initialized:
	// empty, not corrupt; rm removes it.
	never := bare + ".never"
	neverPath := filepath.Join(shm.Dir, shm.Prefix+never)
	if err := os.WriteFile(neverPath, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(neverPath)
	if s := statJSON(t, never); s.State != "empty" || s.Reason == "" {
		t.Errorf("stat of a 0-byte shmkit.* file: state %q (%s), want empty with a reason", s.State, s.Reason)
	}
	if out := want(t, 0, "stat", never); strings.Contains(out, "corrupt") {
		t.Errorf("stat of a 0-byte shmkit.* file:\n%s", out)
	}
	want(t, 0, "rm", never, bare)
	if out := want(t, 0, "ls", dir); strings.Count(out, "\n") != 1 {
		t.Errorf("ls after rm: %q, want the header line alone", out)
	}
}
