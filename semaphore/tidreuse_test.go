//go:build linux

package semaphore

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

// The tests below were written by the sixth adversarial review, which
// reproduced each failure with real processes on the code before the fix.
// A biased holder P dies between critical sections and its thread id T
// goes to N, a process in another slot, which takes the word (T again)
// and stops before its settle clears the bias word. The word then looks
// held by P, alive: a locker revoked "P's" bias and took the word from N
// (two holders), a stale revoker's seize committed on it (two holders),
// and TryLock spun on it. Now a revoker and TryLock require the holder's
// slot to be the live one with the word's id, also under the seizure.

// biasedDeadHolderReused leaves the record's bias naming a dead holder P
// (killed between critical sections, in slot ps, its word marked
// OWNER_DIED by the kernel), P's slot not reused, and starts N, a process
// whose robust thread has P's thread id T, in another slot. N locks and
// stops at the given steps. It returns N and T once N is stopped at its
// first step.
func biasedDeadHolderReused(t *testing.T, name string, steps string) (n *testproc.Proc, ptid uint32, pslot, nslot int) {
	t.Helper()
	// F holds a low slot for a moment, so that N, which takes the lowest
	// free slot, does not take P's (a joiner in P's slot would judge P).
	f := testproc.Start(t, "attach", name, "-1", "none")
	f.ExpectPrefix("slot ")
	f.Expect("joined")
	p := testproc.Start(t, "bias-hold", name, "between")
	pslot, ptid = parseID(t, p.ExpectPrefix("id "))
	p.Expect("biased true")
	p.Expect("between")
	f.Kill()
	f.Wait()
	p.Kill()
	p.Wait()
	barrier := filepath.Join(t.TempDir(), "go")
	n, nslot = startWithTID(t, ptid, int(ptid)-p.Pid(), "stop-at", name, steps, barrier)
	if nslot == pslot {
		t.Fatalf("N took P's slot %d", pslot)
	}
	os.WriteFile(barrier, nil, 0o600)
	return n, ptid, pslot, nslot
}

// TestRevokeTIDReuse: the bias word names a dead holder P; N, a live
// process in another slot with P's thread id T, took the word (T) and is
// about to settle (which clears the bias). A locker X sees the word held
// by T, a live owner (ownerSlot finds N), and the bias naming P whose entry
// says T: it takes N for the biased holder, revokes "P's" bias, and its
// seize commits (its claim stands): it takes the word from N. N's lock call
// then returns ErrOwnerDead: two holders.
func TestRevokeTIDReuse(t *testing.T) {
	needBias(t)
	testproc.NeedRoot(t)
	name, seg, m := newTestMutex(t)
	n, ptid, pslot, nslot := biasedDeadHolderReused(t, name, "settling")
	n.Expect("stopped settling")
	waitStopped(t, n)
	b := biasWord(seg)
	t.Logf("P slot %d tid %d, N slot %d; word %#x bias %#x", pslot, ptid, nslot, word(seg), b)
	if word(seg)&tidMask != ptid || biasHolder(b) != pslot {
		t.Fatalf("word %#x, bias %#x: want N's id in the word, the bias naming P", word(seg), b)
	}
	done := make(chan error, 1)
	go func() { done <- m.Lock() }()
	select {
	case err := <-done:
		inside := view(seg, offHolder).CompareAndSwap(0, int64(os.Getpid()))
		t.Logf("X (this process) Lock returned %v while N holds the word; word now %#x, bias %#x", err, word(seg), biasWord(seg))
		n.Signal(syscall.SIGCONT)
		got := n.ExpectPrefix("got ")
		t.Errorf("EXCLUSION BROKEN: X's Lock returned %v (inside alone: %v) while N held the word; N's Lock then returned %q", err, inside, got)
	case <-time.After(500 * time.Millisecond):
		n.Signal(syscall.SIGCONT)
		if got := n.ExpectPrefix("got "); got != "ok alone" {
			t.Fatalf("N got %q", got)
		}
		n.Kill()
		n.Wait()
		if err := <-done; err != ErrOwnerDead {
			t.Fatalf("X's Lock after N died inside: %v", err)
		}
		m.Unlock()
	}
}

// TestStaleRevokerTIDReuse: the same hole reached by a revoker that
// was stopped once its claim was answered ("fenced"), or once it won the
// bias word ("won"). R claims the bias of an idle holder P and stops. P
// is killed (the kernel marks the word OWNER_DIED); N, in another slot,
// gets P's thread id T and locks: the word holds T again and N stops
// before settle clears R's claim. R goes on: the word is T as it read it;
// were its claim (or its win) still standing, its seize would commit and
// take N's lock. N's take judged P, which voided it.
func TestStaleRevokerTIDReuse(t *testing.T) {
	needBias(t)
	testproc.NeedRoot(t)
	for _, step := range []string{"fenced", "won"} {
		t.Run(step, func(t *testing.T) { staleRevokerTIDReuse(t, step) })
	}
}

func staleRevokerTIDReuse(t *testing.T, step string) {
	name, seg, _ := newTestMutex(t)
	f := testproc.Start(t, "attach", name, "-1", "none") // keeps slot 1 for N
	f.ExpectPrefix("slot ")
	f.Expect("joined")
	p, pslot, ptid := idleBiased(t, name)
	r := stoppedAt(t, name, step)
	f.Kill()
	f.Wait()
	p.Kill()
	p.Wait()
	t.Logf("after P's death: word %#x bias %#x", word(seg), biasWord(seg))
	barrier := filepath.Join(t.TempDir(), "go")
	n, nslot := startWithTID(t, ptid, int(ptid)-p.Pid(), "stop-at", name, "settling", barrier)
	if nslot == pslot {
		t.Fatalf("N took P's slot %d", pslot)
	}
	os.WriteFile(barrier, nil, 0o600)
	n.Expect("stopped settling")
	waitStopped(t, n)
	t.Logf("N stopped in settle: word %#x bias %#x", word(seg), biasWord(seg))
	r.Signal(syscall.SIGCONT)
	time.Sleep(300 * time.Millisecond)
	rout := r.Output()
	n.Signal(syscall.SIGCONT)
	got := n.ExpectPrefix("got ")
	t.Logf("R printed:\n%s\nN got %q", rout, got)
	if rgot := indexLine(rout, "got "); rgot != "" {
		t.Errorf("EXCLUSION BROKEN: stale revoker R got %q while N held the word; N then got %q", rgot, got)
	}
}

func indexLine(out, prefix string) string {
	for _, l := range strings.Split(out, "\n") {
		if rest, ok := strings.CutPrefix(l, prefix); ok {
			return rest
		}
	}
	return ""
}

// TestTryLockTIDReuse: in the state of TestRevokeTIDReuse (bias
// naming dead P, the word held by N with P's thread id, N stopped before
// settle), TryLock does not return: it finds P dead, "takes" the word
// through a seize whose check (ownerSlot(T) < 0) fails because N is alive,
// undoes, and loops, burning a CPU, for as long as N is stopped.
func TestTryLockTIDReuse(t *testing.T) {
	needBias(t)
	testproc.NeedRoot(t)
	name, _, m := newTestMutex(t)
	n, _, _, _ := biasedDeadHolderReused(t, name, "settling")
	n.Expect("stopped settling")
	waitStopped(t, n)
	done := make(chan string, 1)
	go func() {
		ok, err := m.TryLock()
		done <- lockResult(err) + " " + map[bool]string{true: "took", false: "not taken"}[ok]
	}()
	var ru0 syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
	select {
	case got := <-done:
		t.Logf("TryLock returned at once: %s", got)
	case <-time.After(time.Second):
		var ru1 syscall.Rusage
		syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
		cpu := time.Duration(ru1.Utime.Nano()+ru1.Stime.Nano()-ru0.Utime.Nano()-ru0.Stime.Nano()) * time.Nanosecond
		t.Errorf("TryLock has not returned after 1s while N is stopped; this process used %v of CPU meanwhile", cpu)
		n.Signal(syscall.SIGCONT)
		t.Logf("after N resumed, TryLock returned %s", <-done)
	}
}

// cpuOf is the user+system CPU time of process pid, from /proc.
func cpuOf(t *testing.T, pid int) time.Duration {
	t.Helper()
	b, err := os.ReadFile("/proc/" + itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := 0
	for j := range s {
		if s[j] == ')' {
			i = j
		}
	}
	f := strings.Fields(s[i+2:])
	// after ") ": state(0) ppid(1) ... utime is field 14 of stat, index 11 here
	ut, st := atoi(f[11]), atoi(f[12])
	return time.Duration(ut+st) * (time.Second / 100) // USER_HZ 100
}

func itoa(i int) string { return strconv.Itoa(i) }

// TestWaiterNapsOnStoppedRevoker: a revoker R of an idle biased
// holder P is stopped right after its claim ("claimed"). Another locker W
// finds "a revocation under way" and naps a microsecond (a sched_yield
// loop) before looking again, for as long as R is stopped: a CPU burnt.
// (awaitSeized and revoked fall back on 100µs naps after 1ms; biasedWait
// never does.)
func TestWaiterNapsOnStoppedRevoker(t *testing.T) {
	needBias(t)
	name, _ := newTestSegment(t)
	p := testproc.Start(t, "bias-hold", name, "between")
	p.Expect("biased true")
	p.Expect("between")
	r := testproc.Start(t, "stop-at", name, "claimed")
	r.Expect("stopped claimed")
	waitStopped(t, r)
	w := testproc.Start(t, "lock-report", name, "consistent")
	w.Expect("waiting")
	time.Sleep(100 * time.Millisecond)
	c0 := cpuOf(t, w.Pid())
	time.Sleep(2 * time.Second)
	c1 := cpuOf(t, w.Pid())
	if c1-c0 > 500*time.Millisecond {
		t.Errorf("W, waiting for a stopped revoker, used %v of CPU in 2s", c1-c0)
	} else {
		t.Logf("W used %v of CPU in 2s", c1-c0)
	}
	r.Signal(syscall.SIGCONT)
}

// TestRevokerSeizesReusedID: a revoker R, its claim on an idle holder P
// standing, stops just before its seize CAS, the word read as P's thread
// id T. P is killed; N, with thread id T, takes the word (T again) and
// stops before its settle. R's CAS then lands on N's word, and R must
// find its claim void: N judged P (a verdict in the bias word) under its
// own seizure, before the word was its own (judgeBias). R undoes and
// waits for N.
//
// This was TestOwnerSlotTorn (from the seventh adversarial review), when
// a revoker asked under its seizure whether the holder's slot was the
// live one with the word's id: it stopped R inside that check (ownerSlot)
// and let a joiner in P's slot tear its reads. A revoker no longer asks:
// the verdict voids its claim instead (see revoke).
//
//  1. P (thread id T) is biased and idle; a revoker R claims, and stops
//     at "seizing".
//  2. P is killed; F holds P's slot (without attaching the record) while
//     N, thread id T, joins in another slot, locks and stops at
//     "settling".
//  3. R goes on: its seize must be undone, and its next look (which asks
//     who holds the word, at "owner-slot") must find N's word intact.
//  4. N goes on, locks, and dies inside: R gets ErrOwnerDead.
func TestRevokerSeizesReusedID(t *testing.T) {
	needBias(t)
	testproc.NeedRoot(t)
	name, seg := newTestSegment(t)
	p, pslot, ptid := idleBiased(t, name)
	r := stoppedAt(t, name, "seizing,owner-slot")
	p.Kill()
	p.Wait()
	f := testproc.Start(t, "attach", name, strconv.Itoa(pslot), "none")
	if got := f.ExpectPrefix("slot "); !strings.HasPrefix(got, strconv.Itoa(pslot)+" ") {
		t.Fatalf("F got slot %q, want %d", got, pslot)
	}
	f.Expect("joined")
	barrier := filepath.Join(t.TempDir(), "go")
	n, nslot := startWithTID(t, ptid, int(ptid)-p.Pid(), "stop-at", name, "settling", barrier)
	if nslot == pslot {
		t.Fatalf("N took P's slot %d", pslot)
	}
	os.WriteFile(barrier, nil, 0o600)
	n.Expect("stopped settling")
	waitStopped(t, n)
	f.Kill()
	f.Wait()
	if w, b := word(seg), biasWord(seg); w&tidMask != ptid || biasVerdict(b) == 0 || biasRevoker(b) >= 0 {
		t.Fatalf("word %#x, bias %#x: want N's id %d in the word and P judged, R's claim void", w, b, ptid)
	}
	r.Signal(syscall.SIGCONT)
	r.Expect("stopped owner-slot")
	waitStopped(t, r)
	if w := word(seg); w&tidMask != ptid {
		t.Fatalf("R took the word from N, which holds it: word %#x; R said %q", w, r.Output())
	}
	r.Signal(syscall.SIGCONT)
	n.Signal(syscall.SIGCONT)
	if got := n.ExpectPrefix("got "); got != "ok alone" {
		t.Fatalf("N got %q", got)
	}
	view(seg, offHolder).Store(0) // N dies inside, below
	n.Kill()
	n.Wait()
	if got := r.ExpectPrefix("got "); got != "ownerdead alone" {
		t.Fatalf("R got %q", got)
	}
}
