//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// TestStoppedGrantee: G, a waiter on a plain Mutex, asks for a hand-off
// and is granted it by the hammer H's Unlock, and stops just before it
// takes the word handed to it ("take-handed-off"). H, and anyone else,
// must not wait for G for as long as it is stopped: a grant that stands
// long after it was made is taken as a grant to nobody, G's turn lost,
// as a stopped waiter of glibc's mutex holds up nobody. G continued finds
// its grant gone, asks again and gets the lock alone.
func TestStoppedGrantee(t *testing.T) {
	name, seg := newTestSegment(t)
	counter := view(seg, offCounter)
	h := testproc.Start(t, "hammer", name, "0")
	h.Expect("running")
	progresses(t, counter, 1000, "hammer start")
	g := grantee(t, name)
	progresses(t, counter, 1000, "hammer with its grantee stopped")
	g.Signal(syscall.SIGCONT)
	if got := g.ExpectPrefix("got "); got != "ok alone" {
		t.Fatalf("G: %q", got)
	}
	g.Kill() // inside
	g.Wait()
	progresses(t, counter, 1000, "hammer after G died inside")
	h.Kill()
	h.Wait()
	if bad := view(seg, offBad).Load(); bad != 0 {
		t.Fatalf("violations %d", bad)
	}
}

// grantee starts stop-at waiters until one stops at "take-handed-off",
// granted a hand-off (a waiter may get the lock otherwise: the word
// freed by an Unlock that found no request).
func grantee(t *testing.T, name string) *testproc.Proc {
	t.Helper()
	for try := 0; try < 50; try++ {
		g := testproc.Start(t, "stop-at", name, "take-handed-off")
		got := g.ExpectMatch(func(l string) bool { return l == "stopped take-handed-off" || strings.HasPrefix(l, "got ") })
		if got == "stopped take-handed-off" {
			waitStopped(t, g)
			return g
		}
		g.Kill()
		g.Wait()
	}
	t.Fatal("no waiter was ever granted a hand-off")
	return nil
}

// TestStoppedRevokerIdleHolder: R claims the bias of an idle holder P and
// stops, after its claim ("claimed") or once its membarrier found P out
// ("fenced"), before it won the bias word. P, idle, never answers, so it
// never takes its bias back. W (this process) must still get the lock: a
// claim that has stood a while unwon is undone, as a stopped waiter of
// glibc's mutex holds up nobody. R continued finds its win gone, and gets
// the lock alone once W unlocks.
func TestStoppedRevokerIdleHolder(t *testing.T) {
	needBias(t)
	for _, step := range []string{"claimed", "fenced"} {
		t.Run(step, func(t *testing.T) {
			name, seg, m := newTestMutex(t)
			p, _, _ := idleBiased(t, name)
			r := stoppedAt(t, name, step)
			if b := biasWord(seg); biasRevoker(b) < 0 || b&biasTaking != 0 {
				t.Fatalf("bias word %#x with R stopped at %s: want R's claim, not won", b, step)
			}
			ctx, cancel := context.WithTimeout(context.Background(), guard)
			defer cancel()
			if err := m.LockContext(ctx); err != nil {
				t.Fatalf("W's Lock with R stopped at %s: %v", step, err)
			}
			heldWhileResumed(t, seg, m, r, p)
		})
	}
}

// heldWhileResumed: this process holds m; R, stopped in its lock call, is
// continued while we stay inside a moment, and must get the lock alone
// once we unlock. Then R and P are killed.
func heldWhileResumed(t *testing.T, seg *shm.Segment, m *Mutex, r, p *testproc.Proc) {
	t.Helper()
	holder := view(seg, offHolder)
	holder.Store(int64(os.Getpid()))
	r.Signal(syscall.SIGCONT)
	time.Sleep(50 * time.Millisecond) // R, if it got in, says so
	holder.Store(0)
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if got := r.ExpectPrefix("got "); got != "ok alone" {
		t.Fatalf("R: %q", got)
	}
	r.Kill()
	r.Wait()
	p.Kill()
	p.Wait()
}

// TestDeadlineUnderStoppedClaim: with a revoker R stopped on its claim of
// an idle holder P's bias, a LockContext whose deadline (200 µs) comes
// well before a stalled claim is given up (a millisecond) returns the
// deadline's error. It used to go round the yields of a revocation under
// way without looking at its context, give the claim up a millisecond
// later and take the lock.
// Not every call without the look went round long enough to show it:
// five, each on a claim of its own.
func TestDeadlineUnderStoppedClaim(t *testing.T) {
	needBias(t)
	for i := range 5 {
		t.Run(fmt.Sprint(i), deadlineUnderStoppedClaim)
	}
}

func deadlineUnderStoppedClaim(t *testing.T) {
	name, seg, m := newTestMutex(t)
	p, _, _ := idleBiased(t, name)
	r := stoppedAt(t, name, "claimed")
	// One call: the grace of a stalled claim is counted over calls that
	// did not get the lock, and five of these would add up to it.
	b0, s0 := biasWord(seg), stalledClaims.Load()
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Microsecond)
	err := m.LockContext(ctx)
	cancel()
	if err == nil {
		el := time.Since(start)
		m.Unlock()
		t.Fatalf("LockContext with a 200 µs deadline took the lock (the stalled claim given up a millisecond in): its deadline was not looked at; %v, bias %#x, stalled claims %d", el, b0, stalledClaims.Load()-s0)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("%v, want the deadline's error", err)
	}
	r.Kill()
	r.Wait()
	p.Kill()
	p.Wait()
}
