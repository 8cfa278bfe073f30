//go:build linux

package semaphore

import (
	"context"
	"strings"
	"syscall"
	"testing"
	"time"
)

// The tests below were written by an adversarial review of judgeBias (a
// taker of a dead owner's word puts a verdict on the bias holder under its
// seizure), which reproduced each failure with real processes on the code
// before the fix.

// TestStaleUndoBeforeJudge: a seizure can be undone by a stale third party
// (seize's comment): it costs its seizer one attempt, as the commit CAS
// fails. But judgeBias acts before the commit: N, its seizure of a dead
// owner's word undone by Y while N was stopped before judgeBias, resumes
// after the word and the bias have moved on to Q, a live process biased
// since. Before the fix N put its verdict on Q: Q's next lock waited for
// itself (a judged bias, the word held by a live process: the live holder
// clears the bias next), and so did everyone else, for as long as Q lived.
func TestStaleUndoBeforeJudge(t *testing.T) {
	needBias(t)
	name, seg, q := newBiased(t)
	// P biases the lock and dies between critical sections: the word is
	// OWNER_DIED with no owner, the bias names P.
	p, _, _ := idleBiased(t, name)
	p.Kill()
	p.Wait()
	// S (in P's slot) seizes the word and is killed there; Y finds S
	// dead and stops at its undo.
	y, sv, sid := staleUndoer(t, name, seg)
	if !isSeized(sv&tidMask) || biasHolder(biasWord(seg)) < 0 {
		t.Fatalf("word %#x bias %#x: want a seized word under a bias", sv, biasWord(seg))
	}
	// N, in S's slot, undoes S's seizure in its join and seizes the very
	// value S had; it stops before judgeBias.
	n, nid := seizedAgain(t, name, seg, sv)
	if strings.Fields(nid)[0] != strings.Fields(sid)[0] {
		t.Fatalf("N is %q, S was %q: not in S's slot", nid, sid)
	}
	y.Signal(syscall.SIGCONT) // its stale undo undoes N's live seizure
	if got := y.ExpectPrefix("got "); got != "ok alone" {
		t.Fatalf("Y got %q", got)
	}
	view(seg, offHolder).Store(0)
	y.Kill() // dies holding: the word is OWNER_DIED, the bias word clear
	y.Wait()
	if err := q.Lock(); err != ErrOwnerDead {
		t.Fatalf("Q's Lock: %v, want ErrOwnerDead", err)
	}
	q.Consistent()
	if err := q.Unlock(); err != nil {
		t.Fatal(err)
	}
	if !q.Biased() {
		t.Fatalf("Q did not bias the lock: bias %#x word %#x", biasWord(seg), word(seg))
	}
	n.Signal(syscall.SIGCONT) // judgeBias, then its commit, which fails
	for deadline := time.Now().Add(guard); !strings.Contains(n.Output(), "got "); {
		b := biasWord(seg)
		if biasHolder(b) == q.Slot() && biasVerdict(b) != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			err := q.LockContext(ctx)
			cancel()
			t.Fatalf("N, whose seizure Y undid, put a verdict on Q, alive and biased: bias %#x word %#x; Q's lock then: %v", b, word(seg), err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("N did not take the lock from idle Q: bias %#x word %#x; N printed:\n%s", b, word(seg), n.Output())
		}
		time.Sleep(100 * time.Microsecond)
	}
	if got := n.ExpectPrefix("got "); got != "ok alone" {
		t.Fatalf("N got %q", got)
	}
	view(seg, offHolder).Store(0)
	n.Kill()
	n.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	if err := q.LockContext(ctx); err != ErrOwnerDead {
		t.Fatalf("Q's Lock after N died holding: %v, want ErrOwnerDead", err)
	}
	q.Consistent()
	q.Unlock()
}
