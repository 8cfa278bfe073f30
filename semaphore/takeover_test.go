//go:build linux

package semaphore

// Tests written by an adversarial review of 653d918 (a waiter takes a
// grant that its live grantee has not taken for grantGrace as a grant to
// nobody) and be01175 (a waiter undoes another live revoker's claim that
// has stood unwon for grantGrace, the holder outside; merged as the other
// review's claimStalled, a millisecond). Real processes,
// real SIGSTOP and SIGKILL.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

// shortCalls are lock calls that each last less than grantGrace: a
// TryLock, and a LockContext whose context ends after 200 µs (a poller,
// or a caller with a tight deadline; clockCtx, so that the call ends when
// the deadline passes, not when the runtime's timer gets round to it,
// which in an idle process can be a millisecond later). Each reports
// whether it took the lock.
var shortCalls = []struct {
	name string
	try  func(m *Mutex) (bool, error)
}{
	{"trylock", func(m *Mutex) (bool, error) { return m.TryLock() }},
	{"short-ctx", func(m *Mutex) (bool, error) {
		const d = 200 * time.Microsecond
		tctx, cancel := context.WithTimeout(context.Background(), d)
		defer cancel()
		err := m.LockContext(clockCtx{tctx, time.Now().Add(d)})
		if errors.Is(err, context.DeadlineExceeded) {
			return false, nil
		}
		return err == nil || err == ErrOwnerDead, err
	}},
}

// lockByShortCalls makes short lock calls on m, back to back, until one
// takes the lock; it fails the test if none has after guard (a hang, not
// a time limit). It sets this process's turn to 5 ms meanwhile, which
// makes grantGrace 10 ms, far beyond any one call: no call that overran
// its deadline can be what gets a grant here. (A stalled claim's grace
// is a millisecond whatever the turn; the calls look at their deadline
// on every round, TestDeadlineUnderStoppedClaim.)
func lockByShortCalls(t *testing.T, m *Mutex, try func(*Mutex) (bool, error), what string) {
	t.Helper()
	defer SetTurn(SetTurn(5 * time.Millisecond))
	var calls int
	var longest time.Duration
	defer func() {
		t.Logf("%d calls, longest %v, undos %d, takeovers %d", calls, longest, stalledClaims.Load(), grantTakeovers.Load())
	}()
	for deadline := time.Now().Add(guard); ; {
		calls++
		st := time.Now()
		ok, err := try(m)
		longest = max(longest, time.Since(st))
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("WEDGED: %s: no short lock call took the lock in %v", what, guard)
		}
		time.Sleep(50 * time.Microsecond)
	}
}

// TestStoppedGranteeShortCalls: G asks for a hand-off, is granted it by
// our Unlock and stops before it takes the word ("take-handed-off").
// Lock calls shorter than grantGrace (TryLock, LockContext with a tight
// deadline), made back to back for as long as it takes, must get the
// lock: a stopped grantee holds up nobody, whatever the length of their
// calls. (Before, each call started its grace afresh and none ever took
// the grant: every caller that does not block for a millisecond waited
// for as long as G was stopped.) G continued asks again and gets the
// lock, alone, once we unlock.
func TestStoppedGranteeShortCalls(t *testing.T) {
	for _, sc := range shortCalls {
		t.Run(sc.name, func(t *testing.T) {
			name, seg, m := newTestMutex(t)
			if err := m.Lock(); err != nil {
				t.Fatal(err)
			}
			g := testproc.Start(t, "stop-at", name, "take-handed-off")
			gslot, _ := parseID(t, g.ExpectPrefix("id "))
			waitHandoff(t, seg, func(h uint32) bool { return h == uint32(gslot+1) })
			if err := m.Unlock(); err != nil { // granted to G
				t.Fatal(err)
			}
			g.Expect("stopped take-handed-off")
			waitStopped(t, g)
			if w, h := word(seg), handoffWord(seg); w&tidMask != handedOff || h != uint32(gslot+1)|grantedBit {
				t.Fatalf("word %#x, hand-off %#x: want handed off to G", w, h)
			}
			lockByShortCalls(t, m, sc.try, "G stopped with its grant")
			holder := view(seg, offHolder)
			holder.Store(int64(os.Getpid()))
			if h := handoffWord(seg); h&grantedBit != 0 {
				t.Fatalf("hand-off word %#x while we hold the lock", h)
			}
			g.Signal(syscall.SIGCONT)
			time.Sleep(50 * time.Millisecond) // G, if it got in, says so
			holder.Store(0)
			if err := m.Unlock(); err != nil {
				t.Fatal(err)
			}
			if got := g.ExpectPrefix("got "); got != "ok alone" {
				t.Fatalf("G: %q", got)
			}
			g.Kill()
			g.Wait()
		})
	}
}

// TestStoppedRevokerShortCalls: R claims the bias of an idle holder P and
// stops before it won the bias word ("claimed", or "fenced" once its
// membarrier found P out). Lock calls shorter than grantGrace, made back
// to back, must get the lock, as TestStoppedRevokerIdleHolder's blocking
// Lock does. (Before, a TryLock returned false whenever a revoker was
// named, and each LockContext started the claim's grace afresh.)
func TestStoppedRevokerShortCalls(t *testing.T) {
	needBias(t)
	for _, step := range []string{"claimed", "fenced"} {
		for _, sc := range shortCalls {
			t.Run(step+"/"+sc.name, func(t *testing.T) {
				name, seg, m := newTestMutex(t)
				p, _, _ := idleBiased(t, name)
				r := stoppedAt(t, name, step)
				if b := biasWord(seg); biasRevoker(b) < 0 || b&biasTaking != 0 {
					t.Fatalf("bias word %#x with R stopped at %s: want R's claim, not won", b, step)
				}
				lockByShortCalls(t, m, sc.try, "R stopped at "+step)
				heldWhileResumed(t, seg, m, r, p)
			})
		}
	}
}

// grantedAndStopped: we hold m; G (stop-at "take-handed-off") asks for a
// hand-off, our Unlock grants it, and G stops before it takes the word.
// It returns G and the word G read.
func grantedAndStopped(t *testing.T, name string, seg interface{ Data() []byte }, m *Mutex) (*testproc.Proc, uint32) {
	t.Helper()
	if err := m.Lock(); err != nil {
		t.Fatal(err)
	}
	g := testproc.Start(t, "stop-at", name, "take-handed-off")
	gslot, _ := parseID(t, g.ExpectPrefix("id "))
	waitHandoff(t, seg, func(h uint32) bool { return h == uint32(gslot+1) })
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	g.Expect("stopped take-handed-off")
	waitStopped(t, g)
	w, h := word(seg), handoffWord(seg)
	if w&tidMask != handedOff || h != uint32(gslot+1)|grantedBit {
		t.Fatalf("word %#x, hand-off %#x: want handed off to G", w, h)
	}
	return g, w
}

// TestTakeoverKeepsOwnerDead: G is granted the lock and stops before it
// takes it; X takes it over once the grant has stood its grace, and dies
// inside its critical section. The next locker must get ErrOwnerDead:
// the takeover cleared the grant (a grant standing says nobody was
// inside, and X's death would pass for harmless). Two next lockers: G
// itself, continued after X died (its CAS on the word fails; it asks
// again), and, with G continued while X was still inside and then killed
// unheard (stale), a fresh locker.
func TestTakeoverKeepsOwnerDead(t *testing.T) {
	for _, next := range []string{"grantee", "fresh"} {
		t.Run(next, func(t *testing.T) {
			name, seg, m := newTestMutex(t)
			g, _ := grantedAndStopped(t, name, seg, m)
			x := testproc.Start(t, "hold-check", name)
			if got := x.ExpectPrefix("locked "); got != "ok alone" {
				t.Fatalf("X's takeover: %q", got)
			}
			if h := handoffWord(seg); h&grantedBit != 0 {
				t.Fatalf("hand-off word %#x with X inside: a grant says nobody is", h)
			}
			if next == "fresh" {
				g.Signal(syscall.SIGCONT)
				neverSays(t, g, "got ", "X is inside, yet G's Lock returned")
				g.Kill()
				g.Wait()
			}
			x.Kill() // inside
			x.Wait()
			if next == "grantee" {
				view(seg, offHolder).Store(0) // X's mark: G (stop-at) does not repair
				g.Signal(syscall.SIGCONT)
				if got := g.ExpectPrefix("got "); got != "ownerdead alone" {
					t.Fatalf("G after X died inside: %q, want ownerdead", got)
				}
				g.Kill()
				g.Wait()
				return
			}
			y := testproc.Start(t, "hold-check", name)
			if got := y.ExpectPrefix("locked "); got != "ownerdead alone" {
				t.Fatalf("Y after X died inside: %q, want ownerdead", got)
			}
		})
	}
}

// TestStaleGranteeLaterGrant: G is granted the lock and stops before its
// CAS on the handed-off word; we take the grant over, and hand the lock
// to Y, which we stop too: the word holds the value G read again, under
// Y's grant. G continued takes it (a stale taker of another's grant: Y
// loses its turn), alone, and must clear Y's grant before its lock call
// returns: G killed inside leaves ErrOwnerDead to Y.
func TestStaleGranteeLaterGrant(t *testing.T) {
	name, seg, m := newTestMutex(t)
	g, gsaw := grantedAndStopped(t, name, seg, m)
	if err := m.Lock(); err != nil { // the takeover, after the grace
		t.Fatal(err)
	}
	if n := handoffWord(seg); n != 0 {
		t.Fatalf("hand-off word %#x after our takeover", n)
	}
	b := filepath.Join(t.TempDir(), "b")
	y := testproc.Start(t, "hold-until", name, b)
	waitHandoff(t, seg, func(h uint32) bool { return h != 0 && h&grantedBit == 0 })
	for word(seg)&waitersBit == 0 && gsaw&waitersBit != 0 {
		time.Sleep(100 * time.Microsecond) // Y sets the bit after it asks
	}
	y.Signal(syscall.SIGSTOP)
	waitStopped(t, y)
	if err := m.Unlock(); err != nil { // granted to Y
		t.Fatal(err)
	}
	if w := word(seg); w != gsaw || handoffWord(seg)&grantedBit == 0 {
		t.Fatalf("word %#x (G read %#x), hand-off %#x: want handed off to Y", w, gsaw, handoffWord(seg))
	}
	g.Signal(syscall.SIGCONT)
	if got := g.ExpectPrefix("got "); got != "ok alone" {
		t.Fatalf("G: %q", got)
	}
	if h := handoffWord(seg); h&grantedBit != 0 {
		t.Fatalf("hand-off word %#x with G inside: a grant says nobody is", h)
	}
	view(seg, offHolder).Store(0) // G's mark: the repair's business
	g.Kill()
	g.Wait()
	y.Signal(syscall.SIGCONT)
	if got := y.ExpectPrefix("locked "); got != "ownerdead" {
		t.Fatalf("Y after G died inside: %q, want ownerdead", got)
	}
}

// TestWithdrawingGranteeTakenOver: W's context ran out after it was
// granted the lock; withdrawing, it stops at "take-handed-off" (its
// grant stands, the word handed off). X takes the grant over and dies
// inside. W continued must not take or unlock anything (its grant is
// gone) and returns its context's error; the next locker gets
// ErrOwnerDead.
func TestWithdrawingGranteeTakenOver(t *testing.T) {
	name, seg, m := newTestMutex(t)
	if err := m.Lock(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	const timeout = 1500 * time.Millisecond
	w := testproc.Start(t, "ctx-withdraw", name, timeout.String())
	wslot, _ := parseID(t, w.ExpectPrefix("id "))
	waitHandoff(t, seg, func(h uint32) bool { return h == uint32(wslot+1) })
	w.Signal(syscall.SIGSTOP)
	waitStopped(t, w)
	time.Sleep(time.Until(start.Add(timeout + 100*time.Millisecond))) // W's deadline passes, W stopped
	if err := m.Unlock(); err != nil {                                // granted to W
		t.Fatal(err)
	}
	if h := handoffWord(seg); word(seg)&tidMask != handedOff || h != uint32(wslot+1)|grantedBit {
		t.Fatalf("word %#x, hand-off %#x: want handed off to W", word(seg), h)
	}
	w.Signal(syscall.SIGCONT)
	if got := w.ExpectPrefix("stopped take-handed-off "); got != "withdraw=true" {
		t.Fatalf("W stopped taking the handed-off word with %s: not in withdraw", got)
	}
	waitStopped(t, w)
	x := testproc.Start(t, "hold-check", name)
	if got := x.ExpectPrefix("locked "); got != "ok alone" {
		t.Fatalf("X's takeover: %q", got)
	}
	x.Kill() // inside
	x.Wait()
	w.Signal(syscall.SIGCONT)
	if got := w.ExpectPrefix("got "); !strings.HasPrefix(got, "error ") {
		t.Fatalf("W's LockContext returned %q after its deadline", got)
	}
	y := testproc.Start(t, "lock-report", name, "consistent")
	if got := y.ExpectPrefix("got "); got != "ownerdead" {
		t.Fatalf("the next Lock got %q, want ownerdead (word %#x)", got, word(seg))
	}
}

func init() { enterEntries["short-hammer"] = shortHammerEntry }

// shortHammerEntry: args record, try|ctx, hold. Lock through short calls
// only (TryLock, or LockContext with a 200 µs deadline), retried after
// 20 µs until one takes the lock; repair after a dead owner; a checked
// critical section (the holder word) busy for hold; unlock; for ever.
// Says "running".
func shortHammerEntry(args []string) int {
	seg, l, err := openLocker(args[0], false)
	if err != nil {
		return fail(err)
	}
	m := l.(*Mutex)
	var try func(*Mutex) (bool, error)
	for _, sc := range shortCalls {
		if sc.name == map[string]string{"try": "trylock", "ctx": "short-ctx"}[args[1]] {
			try = sc.try
		}
	}
	hold, err := time.ParseDuration(args[2])
	if err != nil || try == nil {
		return fail(fmt.Errorf("short-hammer %q: %v", args, err))
	}
	holder, counter, bad := view(seg, offHolder), view(seg, offCounter), view(seg, offBad)
	pid := int64(os.Getpid())
	fmt.Println("running")
	for {
		ok, err := try(m)
		if err == ErrOwnerDead {
			holder.Store(0) // the repair: the dead owner's mark
			err = m.Consistent()
		}
		if err != nil {
			return fail(err)
		}
		if !ok {
			time.Sleep(20 * time.Microsecond)
			continue
		}
		checkedSection(holder, counter, bad, pid, hold)
		if err := m.Unlock(); err != nil {
			return fail(err)
		}
	}
}

// TestHandOffStopStorm: plain lockers that hold the lock for 50 µs (so
// that waiters ask for hand-offs, and grants stand), BiasedMutex lockers
// (claims), and lockers by short calls only; one at random is SIGSTOPped
// for 0-3 ms (a grantee stopped past its grace loses its grant; a
// revoker stopped past it its claim) and continued, again and again, and
// now and then one is SIGKILLed and replaced (a death inside, after a
// takeover, must be ErrOwnerDead: else the dead one's mark stays in the
// holder word and the next locker counts a violation). Nobody is ever
// inside with another, and every locker still gets the lock after.
func TestHandOffStopStorm(t *testing.T) {
	events := 800
	if testing.Short() {
		events = 200
	}
	name, seg := newTestSegment(t)
	specs := [][]string{
		{"hammer", "0", "50us"},
		{"hammer", "0", "50us"},
		{"hammer", "0", "0s"},
		{"short-hammer", "ctx", "50us"},
		{"short-hammer", "try", "0s"},
	}
	if registerBias() == nil {
		specs = append(specs, []string{"bias-hammer", "0", "20us"})
	}
	counter := view(seg, offCounter)
	procs, stops, kills := storm(t, name, seg, specs, events, 6)
	progresses(t, counter, 1000, "after the storm")
	afterStorm(t, seg, procs)
	t.Logf("%d stops, %d kills, %d critical sections", stops, kills, counter.Load())
}

// TestCrowdedHandOffs: eight processes on (typically) two CPUs, each
// locking a set number of times with critical sections of 200 µs, so
// that grantees are often off their CPU for longer than their grace and
// lose their grants to running waiters: every process still finishes
// its rounds (no waiter starved for good, no livelock of takeovers or of
// claim undos), and the counter is exact. Plain Mutexes, and half of them
// BiasedMutexes.
func TestCrowdedHandOffs(t *testing.T) {
	for _, mix := range []string{"mutex", "mixed"} {
		t.Run(mix, func(t *testing.T) {
			name, seg := newTestSegment(t)
			const procs, rounds = 8, 200
			for range 4 { // crowd the CPUs for a while
				testproc.Start(t, "spin", "2000").Expect("spinning")
			}
			var ps []*testproc.Proc
			for i := range procs {
				entry := "hammer"
				if mix == "mixed" && i%2 == 1 {
					entry = "bias-hammer"
				}
				ps = append(ps, testproc.Start(t, entry, name, fmt.Sprint(rounds), "200us"))
			}
			for _, p := range ps {
				p.MustExitWithin(3 * time.Minute)
			}
			if c, bad := view(seg, offCounter).Load(), view(seg, offBad).Load(); c != procs*rounds || bad != 0 {
				t.Fatalf("counter %d (want %d), violations %d", c, procs*rounds, bad)
			}
		})
	}
}

// TestStoppedWinnerIdleHolder: R has won the bias word of an idle holder P
// ("won"), or seized or decided to take P's word, and stops there. R is
// the lock's next owner: another locker W, finding R's claim standing
// (won) past its grace with P outside, must not undo it and must not get
// in (R would take the word on its way, with W inside). R continued gets
// the lock alone; killed inside, W gets ErrOwnerDead.
func TestStoppedWinnerIdleHolder(t *testing.T) {
	needBias(t)
	for _, step := range []string{"won", "seized", "decided"} {
		t.Run(step, func(t *testing.T) {
			name, seg := newTestSegment(t)
			p, _, _ := idleBiased(t, name)
			r := stoppedAt(t, name, step)
			if b := biasWord(seg); b&biasTaking == 0 {
				t.Fatalf("bias word %#x with R stopped at %s: want R's win", b, step)
			}
			w := testproc.Start(t, "hold-check", name)
			neverSays(t, w, "locked ", "R won the bias, yet W's Lock returned")
			r.Signal(syscall.SIGCONT)
			if got := r.ExpectPrefix("got "); got != "ok alone" {
				t.Fatalf("R: %q", got)
			}
			r.Kill() // inside
			r.Wait()
			if got := w.ExpectPrefix("locked "); got != "ownerdead alone" {
				t.Fatalf("W after R died inside: %q", got)
			}
			w.Kill()
			w.Wait()
			p.Kill()
			p.Wait()
		})
	}
}
