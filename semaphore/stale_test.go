//go:build linux

package semaphore

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

// The tests of this file stop a process between a decision and the store
// it makes of it, let the world move on until the word it will store into
// holds the value it read again, and let it go on. They come from an
// adversarial review; each broke the protocol before words were seized
// (mutex.seize) and handed-off words were taken rather than freed.

// enterCS marks this process inside the critical section in the test
// words and says whether someone else was marked inside.
func enterCS(arg string) string {
	name, _ := record(arg)
	seg, err := openTest(name)
	if err != nil {
		return "error " + err.Error()
	}
	holder := view(seg, offHolder)
	if !holder.CompareAndSwap(0, int64(os.Getpid())) {
		view(seg, offBad).Add(1)
		return fmt.Sprintf("VIOLATION: pid %d is inside too", holder.Load())
	}
	return "alone"
}

// stopSelf stops this process at once: SIGSTOP sent to the calling thread
// (kill(getpid()) may pick another thread and let this one run on).
func stopSelf() {
	runtime.LockOSThread()
	syscall.Tgkill(os.Getpid(), syscall.Gettid(), syscall.SIGSTOP)
	runtime.UnlockOSThread()
}

// stopAtEntry: args record, steps [, barrier]. Say "id <slot> <owner
// id>"; wait for the barrier file if given; lock the record (a plain
// Mutex), stopping at each of the steps (comma-separated, in that order;
// stepHook) after saying "stopped <step>"; once continued past the first,
// say "step <name>" at every other step; once the lock call has returned,
// mark itself inside and say "got <result> <alone|VIOLATION...>"; hold
// until killed.
func stopAtEntry(args []string) int {
	_, l, err := openLocker(args[0], false)
	if err != nil {
		return fail(err)
	}
	m := l.(*Mutex)
	fmt.Println("id", m.Slot(), m.m.tid)
	if len(args) > 2 {
		waitForFile(args[2])
	}
	stops := strings.Split(args[1], ",")
	stopped := false
	stepHook = func(step string) {
		switch {
		case len(stops) > 0 && step == stops[0]:
			stops, stopped = stops[1:], true
			fmt.Println("stopped", step)
			stopSelf()
		case stopped:
			fmt.Println("step", step)
		}
	}
	fmt.Println("locking")
	res := lockResult(m.Lock())
	fmt.Println("got", res, enterCS(args[0]))
	time.Sleep(time.Hour)
	return 0
}

// biasReopenEntry: args record, barrier. Bias the lock to this process
// (BiasedMutex, lock and unlock) and say "biased <bool>"; once the barrier
// file exists, close the segment, reopen it, attach the record as a
// Mutex, lock, mark itself inside and say "locked <result> <alone|...>";
// hold until killed.
func biasReopenEntry(args []string) int {
	name, off := record(args[0])
	seg, err := openTest(name)
	if err != nil {
		return fail(err)
	}
	b, err := NewBiasedMutex(context.Background(), seg, off)
	if err != nil {
		return fail(err)
	}
	if err := b.Lock(); err != nil {
		return fail(err)
	}
	if err := b.Unlock(); err != nil {
		return fail(err)
	}
	fmt.Println("biased", b.Biased())
	waitForFile(args[1])
	if err := seg.Close(); err != nil {
		return fail(err)
	}
	seg, err = openTest(name)
	if err != nil {
		return fail(err)
	}
	m, err := NewMutex(context.Background(), seg, off)
	if err != nil {
		return fail(err)
	}
	fmt.Println("reopened", m.m.tid)
	fmt.Println("locked", lockResult(m.Lock()), enterCS(args[0]))
	time.Sleep(time.Hour)
	return 0
}

// holdCheckEntry: args record [, barrier]. Say "id <slot> <owner id>",
// wait for the barrier file if given, lock (repairing, and calling
// Consistent, after a dead owner), mark itself inside, say
// "locked <result> <alone|...>", hold until killed.
func holdCheckEntry(args []string) int {
	_, l, err := openLocker(args[0], false)
	if err != nil {
		return fail(err)
	}
	m := l.(*Mutex)
	fmt.Println("id", m.Slot(), m.m.tid)
	if len(args) > 1 {
		waitForFile(args[1])
	}
	err = m.Lock()
	if err == ErrOwnerDead {
		view(m.Segment(), offHolder).Store(0) // the repair
		m.Consistent()
	}
	fmt.Println("locked", lockResult(err), enterCS(args[0]))
	time.Sleep(time.Hour)
	return 0
}

// tryOnceEntry: args record. TryLock once, say "try <ok> <result>", unlock
// if it took the lock.
func tryOnceEntry(args []string) int {
	_, m, err := openLocker(args[0], false)
	if err != nil {
		return fail(err)
	}
	ok, err := m.TryLock()
	fmt.Println("try", ok, lockResult(err))
	if ok {
		m.Unlock()
	}
	return 0
}

func waitForFile(path string) {
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// neverSays fails the test if p prints a line starting with prefix within
// 200 ms: a lock call that must go on waiting for a holder that keeps the
// lock. The bound is for an answer that should never come: a slower
// machine can only hide a violation for longer, never invent one.
func neverSays(t *testing.T, p *testproc.Proc, prefix, what string) {
	t.Helper()
	time.Sleep(200 * time.Millisecond)
	for _, line := range strings.Split(p.Output(), "\n") {
		if strings.HasPrefix(line, prefix) {
			t.Fatalf("EXCLUSION BROKEN: %s %q", what, strings.TrimPrefix(line, prefix))
		}
	}
}

// waitStopped waits until the process is in state T (stopped).
func waitStopped(t *testing.T, p *testproc.Proc) {
	t.Helper()
	for range 60000 {
		if st, err := testproc.Stat(p.Pid()); err == nil && st.State == 'T' {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("pid %d never stopped", p.Pid())
}

func word(seg interface{ Data() []byte }) uint32 {
	return binary.LittleEndian.Uint32(seg.Data()[offWord:])
}

func handoffWord(seg interface{ Data() []byte }) uint32 {
	return binary.LittleEndian.Uint32(seg.Data()[offHandoff:])
}

// waitHandoff waits until the hand-off word satisfies want.
func waitHandoff(t *testing.T, seg interface{ Data() []byte }, want func(uint32) bool) {
	t.Helper()
	for range 60000 {
		if want(handoffWord(seg)) {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("hand-off word stays %#x", handoffWord(seg))
}

// TestStaleRevoker: a revoker R claims the bias of an idle holder P and
// is stopped once P is known out (step "fenced"), before it takes the
// word. P closes the segment (abandoning nothing: it was outside) and
// reopens it, getting its old slot index, hence its robust thread and
// owner id T back, and locks; or P is killed and a new process N gets its
// thread id T, and locks. The word holds T again, as when R claimed. R
// goes on: it must not take the lock from the process inside.
func TestStaleRevoker(t *testing.T) {
	needBias(t)
	for _, how := range []string{"reopen", "tid-reuse"} {
		t.Run(how, func(t *testing.T) {
			if how == "tid-reuse" {
				testproc.NeedRoot(t)
			}
			name, _ := newTestSegment(t)
			barrier := filepath.Join(t.TempDir(), "go")
			var p *testproc.Proc
			var ptid uint32
			if how == "reopen" {
				p = testproc.Start(t, "bias-reopen", name, barrier)
				p.Expect("biased true")
			} else {
				p = testproc.Start(t, "bias-hold", name, "between")
				_, ptid = parseID(t, p.ExpectPrefix("id "))
				p.Expect("between")
			}
			r := testproc.Start(t, "stop-at", name, "fenced")
			r.Expect("stopped fenced")
			waitStopped(t, r)
			var inside string
			if how == "reopen" {
				os.WriteFile(barrier, nil, 0o600)
				p.ExpectPrefix("reopened ")
				inside = p.ExpectPrefix("locked ")
			} else {
				p.Kill()
				p.Wait()
				n, _ := startWithTID(t, ptid, int(ptid)-p.Pid(), "hold-check", name, barrier)
				os.WriteFile(barrier, nil, 0o600)
				inside = n.ExpectPrefix("locked ")
			}
			if !strings.HasSuffix(inside, "alone") {
				t.Fatalf("the holder said %q", inside)
			}
			r.Signal(syscall.SIGCONT)
			// R must wait for the holder, who holds the lock for good.
			neverSays(t, r, "got ", "the holder is inside, yet the stale revoker's Lock returned")
		})
	}
}

// orphanTaker makes a grant orphaned (a waiter W is granted the lock and
// killed before it takes it) and returns a locker L that found it and is
// stopped just before it takes the handed-off word.
func orphanTaker(t *testing.T, name string, seg interface{ Data() []byte }) *testproc.Proc {
	t.Helper()
	b1 := filepath.Join(t.TempDir(), "b1")
	x := testproc.Start(t, "hold-until", name, b1)
	x.Expect("locked ok")
	w := testproc.Start(t, "lock-report", name, "consistent")
	w.Expect("waiting")
	waitHandoff(t, seg, func(h uint32) bool { return h != 0 })
	w.Signal(syscall.SIGSTOP)
	waitStopped(t, w)
	os.WriteFile(b1, nil, 0o600)
	x.Expect("unlocked") // granted to W
	w.Kill()
	w.Wait()
	if word(seg)&tidMask != handedOff {
		t.Fatalf("word %#x after the hand-off, want it handed off", word(seg))
	}
	l := testproc.Start(t, "stop-at", name, "take-handed-off")
	l.Expect("stopped take-handed-off")
	waitStopped(t, l)
	return l
}

// TestStaleOrphanTaker: a waiter W is granted the lock and killed before it
// takes it; a locker L, finding the grant orphaned, is stopped just before
// it takes the handed-off word. Meanwhile the word is taken, and handed
// off anew to a live waiter Y (stopped, so it does not take it at once):
// the word holds the same value again. L goes on and takes it; then it is
// killed inside its critical section. The next locker gets ErrOwnerDead.
// (Before, L freed the word under Y's grant, took it as free, and the
// standing grant made L's death look harmless: nil, and the repair lost.)
func TestStaleOrphanTaker(t *testing.T) {
	name, seg, m := newTestMutex(t)
	b2 := filepath.Join(t.TempDir(), "b2")
	l := orphanTaker(t, name, seg)

	// Our turn: take the orphan, let Y ask, stop Y, unlock: granted to Y.
	if err := m.Lock(); err != nil {
		t.Fatal(err)
	}
	y := testproc.Start(t, "hold-until", name, b2)
	waitHandoff(t, seg, func(h uint32) bool { return h != 0 && h&grantedBit == 0 })
	y.Signal(syscall.SIGSTOP)
	waitStopped(t, y)
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if word(seg)&tidMask != handedOff || handoffWord(seg)&grantedBit == 0 {
		t.Fatalf("word %#x, hand-off %#x: want handed off to Y", word(seg), handoffWord(seg))
	}
	l.Signal(syscall.SIGCONT)
	if got := l.ExpectPrefix("got "); got != "ok alone" {
		t.Fatalf("L got %q", got)
	}
	if h := handoffWord(seg); h&grantedBit != 0 {
		t.Fatalf("hand-off word %#x while L holds the lock: a grant says nobody is inside", h)
	}
	view(seg, offHolder).Store(0) // L's mark: the repair's business
	l.Kill()
	l.Wait()
	y.Signal(syscall.SIGCONT)
	if got := y.ExpectPrefix("locked "); got != "ownerdead" {
		t.Fatalf("Y's Lock after L died inside: %q, want ownerdead", got)
	}
}

// TestStaleDeadOwner: a word holds a dead process's owner id T (as the
// kernel's robust walk can miss: another thread of a dying process stored
// it after its robust thread's exit). A waiter C finds T dead after a
// slice and is stopped before it acts. A new process N gets thread id T,
// attaches (its own id in the word: it marks it OWNER_DIED) and locks: the
// word holds T again. C goes on: it must not take N's lock.
func TestStaleDeadOwner(t *testing.T) {
	testproc.NeedRoot(t)
	name, seg := newTestSegment(t)
	d := testproc.Start(t, "attach", name, "-1", "mutex")
	_, dtid := parseID(t, d.ExpectPrefix("id "))
	d.Kill()
	d.Wait()
	binary.LittleEndian.PutUint32(seg.Data()[offWord:], dtid) // the dead process's store
	c := testproc.Start(t, "stop-at", name, "seizing")
	c.Expect("stopped seizing")
	waitStopped(t, c)
	barrier := filepath.Join(t.TempDir(), "go")
	n, _ := startWithTID(t, dtid, int(dtid)-d.Pid(), "hold-check", name, barrier)
	os.WriteFile(barrier, nil, 0o600)
	if got := n.ExpectPrefix("locked "); got != "ownerdead alone" {
		t.Fatalf("N got %q, want the dead owner's lock", got)
	}
	if w := word(seg); w&^waitersBit != dtid {
		t.Fatalf("word %#x, want N's id %d, as the stopped waiter read it", w, dtid)
	}
	c.Signal(syscall.SIGCONT)
	neverSays(t, c, "got ", "N is inside, yet the stale waiter's Lock returned")

}

// TestBiasedTryLockAfterRestore: the lock is biased to this process, which
// is inside; another process's TryLock claims the bias, finds us inside
// and gives up, restoring the bias with a new epoch. Our TryLock then
// takes our own idle lock. (Before, it returned false for ever: it took
// the restored bias for a revocation under way.)
func TestBiasedTryLockAfterRestore(t *testing.T) {
	needBias(t)
	name, _, b := newBiased(t)
	if err := b.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := b.Lock(); err != nil { // inside, through the bias
		t.Fatal(err)
	}
	c := testproc.Start(t, "try-once", name)
	if got := c.ExpectPrefix("try "); got != "false ok" {
		t.Fatalf("another process's TryLock while we are inside: %q", got)
	}
	c.MustExit()
	if err := b.Unlock(); err != nil {
		t.Fatal(err)
	}
	ok, err := b.TryLock()
	if !ok || err != nil {
		t.Fatalf("TryLock of our own idle, biased lock = %v, %v", ok, err)
	}
	b.Unlock()
}
