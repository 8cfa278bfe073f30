//go:build linux

package semaphore

import (
	"context"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// The tests below were written by an adversarial review of the seize
// protocol (the second), which reproduced each failure with real processes
// on the code before the fix: a seized value names its seizer by slot
// index only, and slot indexes are reused.

// guard bounds a lock call that must succeed: a hang, not a time limit
// that a slow machine could trip.
const guard = 30 * time.Second

// deadOwnerWord leaves the owner id of a dead process in seg's word, as
// the exit race leaves it (the owner died between its store and its robust
// thread's exit), and returns the id.
func deadOwnerWord(t *testing.T, name string, seg interface{ Data() []byte }) uint32 {
	t.Helper()
	d := testproc.Start(t, "attach", name, "-1", "mutex")
	_, dtid := parseID(t, d.ExpectPrefix("id "))
	d.Kill()
	d.Wait()
	binary.LittleEndian.PutUint32(seg.Data()[offWord:], dtid)
	return dtid
}

// TestDeadSeizerSlotReused: a seizer S dies with the word seized; N claims
// S's slot index and attaches the record before anyone undid the seizure.
// Before the fix the seized word then named a live seizer (N's generation
// was in S's slot) and N never undid a seizure naming its own slot: nobody
// got the lock again while N lived. Now N's join undoes it.
func TestDeadSeizerSlotReused(t *testing.T) {
	name, seg := newTestSegment(t)
	deadOwnerWord(t, name, seg)
	s := testproc.Start(t, "stop-at", name, "seized")
	s.Expect("stopped seized")
	waitStopped(t, s)
	w := word(seg)
	if !isSeized(w & tidMask) {
		t.Fatalf("word %#x not seized", w)
	}
	ss := seizer(w & tidMask)
	s.Kill()
	s.Wait()
	joinInSlot(t, name, seg, ss)
	if err := lockGuarded(t, seg); err != ErrOwnerDead {
		t.Fatalf("Lock of a dead owner's word: %v, want ErrOwnerDead", err)
	}
}

// joinInSlot starts a process that claims slot ss and attaches the
// record (its NewMutex returns: join ran), and checks that the word is
// not left seized by ss.
func joinInSlot(t *testing.T, name string, seg interface{ Data() []byte }, ss int) {
	t.Helper()
	n := testproc.Start(t, "attach", name, fmt.Sprint(ss), "mutex", filepath.Join(t.TempDir(), "never"))
	if got := n.ExpectPrefix("slot "); !strings.HasPrefix(got, fmt.Sprint(ss)+" ") {
		t.Fatalf("N got slot %q, want %d", got, ss)
	}
	n.Expect("joined") // before the fix: never, with a biased holder alive
	if w := word(seg); isSeized(w & tidMask) {
		t.Fatalf("after N joined in the dead seizer's slot the word is still seized: %#x", w)
	}
}

// lockGuarded locks the record from this process, bounded by guard, and
// unlocks it (after Consistent); it returns what the lock call said.
func lockGuarded(t *testing.T, seg *shm.Segment) error {
	t.Helper()
	m, err := NewMutex(context.Background(), seg, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	err = m.LockContext(ctx)
	if err == ErrOwnerDead {
		m.Consistent()
	}
	if err == nil || err == ErrOwnerDead {
		m.Unlock()
	}
	return err
}

// TestDeadRevokerSlotReused: the same with nothing written by hand: a
// revoker S is killed with the biased holder P's word seized; P is killed;
// M claims P's slot (its join judges P), N claims S's. Before the fix the
// word stayed seized for as long as N lived; and N's own NewMutex could
// hang in join, waiting on a seizure that named its slot.
func TestDeadRevokerSlotReused(t *testing.T) {
	needBias(t)
	for _, killHolder := range []bool{true, false} {
		t.Run(fmt.Sprint("holder killed ", killHolder), func(t *testing.T) {
			name, seg := newTestSegment(t)
			p, pslot, _ := idleBiased(t, name)
			s := stoppedAt(t, name, "seized")
			ss := seizer(word(seg) & tidMask)
			s.Kill()
			s.Wait()
			if killHolder {
				p.Kill()
				p.Wait()
				mm := testproc.Start(t, "attach", name, fmt.Sprint(pslot), "mutex")
				mm.Expect("joined")
			}
			joinInSlot(t, name, seg, ss)
			// P was between its critical sections, dead or alive: the
			// lock comes clean.
			if err := lockGuarded(t, seg); err != nil {
				t.Fatalf("Lock: %v", err)
			}
		})
	}
}

// TestStaleSeizeUndo: Y judges a seizer S dead and is stopped just before
// its undo; the undo is done by another (our TryLock); N claims S's slot
// and seizes the same owner id, which makes the very value S's seizure
// was; Y's stale undo lands on N's live seizure, and Y takes the lock.
// Before the fix N, resuming, committed with a plain store over Y's lock:
// two holders. Now N's commit is a CAS from its seized value, which fails:
// N tries again, and waits for Y.
// staleUndoer leaves S, a locker that seized the record's dead owner's
// word, killed while seized, and Y, a locker that found S dead, stopped
// just before its undo. It returns Y, S's seized value and S's id line.
func staleUndoer(t *testing.T, name string, seg *shm.Segment) (y *testproc.Proc, sv uint32, sid string) {
	t.Helper()
	s := testproc.Start(t, "stop-at", name, "seized")
	sid = s.ExpectPrefix("id ")
	s.Expect("stopped seized")
	waitStopped(t, s)
	sv = word(seg)
	y = testproc.Start(t, "stop-at", name, "undoing")
	y.Expect("locking")
	s.Kill() // Y finds S dead and stops at its undo
	s.Wait()
	y.Expect("stopped undoing")
	waitStopped(t, y)
	return y, sv, sid
}

// seizedAgain starts N, a locker that stops once it has seized the word,
// and returns it and its id line once it has stopped holding sv, a dead
// seizer's value (N, in that seizer's slot, seized the same owner id).
func seizedAgain(t *testing.T, name string, seg *shm.Segment, sv uint32) (n *testproc.Proc, id string) {
	t.Helper()
	n = testproc.Start(t, "stop-at", name, "seized")
	id = n.ExpectPrefix("id ")
	n.Expect("stopped seized")
	waitStopped(t, n)
	if w := word(seg); w != sv {
		t.Fatalf("N seized %#x, the dead seizer had %#x: not the value this test needs", w, sv)
	}
	return n, id
}

func TestStaleSeizeUndo(t *testing.T) {
	name, seg, m := newTestMutex(t)
	deadOwnerWord(t, name, seg)
	y, sv, _ := staleUndoer(t, name, seg)
	if ok, err := m.TryLock(); ok || err != nil { // undoes S's seizure
		t.Fatalf("TryLock = %v, %v; want false, nil", ok, err)
	}
	if w := word(seg); isSeized(w & tidMask) {
		t.Fatalf("TryLock left the dead seizer's word seized: %#x", w)
	}
	n, _ := seizedAgain(t, name, seg, sv)
	y.Signal(syscall.SIGCONT) // its stale undo undoes N's live seizure
	if got := y.ExpectPrefix("got "); got != "ownerdead alone" {
		t.Fatalf("Y got %q", got)
	}
	n.Signal(syscall.SIGCONT)
	if got := n.ExpectMatch(func(l string) bool { return l == "step seize-undone" || strings.HasPrefix(l, "got ") }); got != "step seize-undone" {
		t.Fatalf("N, whose seizure Y undid, said %q while Y holds the lock", got)
	}
	view(seg, offHolder).Store(0) // Y's mark: it dies inside, below
	y.Kill()                      // now N may have it
	y.Wait()
	if got := n.ExpectPrefix("got "); got != "ownerdead alone" {
		t.Fatalf("N got %q", got)
	}
}

// TestLostRequestAskedAgain: a waiter whose hand-off request disappears
// (a stale taker of an orphaned grant cleared it, or an Unlock judged the
// waiter dead while it was stopped) asks again. Before the fix it stayed a
// plain futex sleeper for the rest of its lock call.
func TestLostRequestAskedAgain(t *testing.T) {
	name, seg, m := newTestMutex(t)
	if err := m.Lock(); err != nil {
		t.Fatal(err)
	}
	w := testproc.Start(t, "lock-report", name, "consistent")
	w.Expect("waiting")
	var asked uint32
	waitHandoff(t, seg, func(h uint32) bool { asked = h; return h != 0 })
	binary.LittleEndian.PutUint32(seg.Data()[offHandoff:], 0) // lost
	waitHandoff(t, seg, func(h uint32) bool { return h == asked })
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	w.Expect("got ok")
}
