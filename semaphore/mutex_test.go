//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// newTestSegment opens a fresh test segment, closed when the test ends.
func newTestSegment(t *testing.T) (string, *shm.Segment) {
	t.Helper()
	name := tempName(t)
	seg, err := openTest(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	return name, seg
}

func newTestMutex(t *testing.T) (string, *shm.Segment, *Mutex) {
	t.Helper()
	name, seg := newTestSegment(t)
	m, err := NewMutex(context.Background(), seg, 0)
	if err != nil {
		t.Fatal(err)
	}
	return name, seg, m
}

func TestMutexBasics(t *testing.T) {
	_, seg, m := newTestMutex(t)
	if err := m.Lock(); err != nil {
		t.Fatal(err)
	}
	if ok, err := m.TryLock(); ok || err != nil {
		t.Fatalf("TryLock of a held mutex = %v, %v", ok, err)
	}
	if err := m.Consistent(); err != nil {
		t.Fatalf("Consistent on a consistent mutex: %v", err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Unlock of an unlocked mutex: %v, want ErrNotOwner", err)
	}
	if ok, err := m.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock of a free mutex = %v, %v", ok, err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	again, err := NewMutex(context.Background(), seg, 0)
	if err != nil || again.m != m.m {
		t.Fatalf("NewMutex on the same record = %v, %v; want a handle on the same state", again, err)
	}
}

// TestMutexGoroutines: goroutines of one process exclude each other, and
// the race detector sees the lock as synchronisation.
func TestMutexGoroutines(t *testing.T) {
	_, _, m := newTestMutex(t)
	const g, n = 8, 2000
	plain := 0
	var wg sync.WaitGroup
	for range g {
		wg.Go(func() {
			for range n {
				if err := m.Lock(); err != nil {
					t.Error(err)
					return
				}
				plain++
				if err := m.Unlock(); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if plain != g*n {
		t.Fatalf("counter %d, want %d", plain, g*n)
	}
}

// TestOwnerDeath: the owner is SIGKILLed holding the lock with 0, 1 and 3
// waiters blocked. Exactly one locker gets ErrOwnerDead; after Consistent
// everyone else gets the lock normally.
func TestOwnerDeath(t *testing.T) {
	for _, waiters := range []int{0, 1, 3} {
		t.Run(strings.Repeat("w", waiters)+"waiters", func(t *testing.T) {
			name, _, m := newTestMutex(t)
			owner := testproc.Start(t, "hold", name)
			owner.Expect("locked ok")
			var ws []*testproc.Proc
			for range waiters {
				w := testproc.Start(t, "lock-report", name, "consistent")
				w.Expect("waiting")
				ws = append(ws, w)
			}
			// Let the waiters reach the futex; if one has not, it
			// still takes the lock after the death, just later.
			time.Sleep(50 * time.Millisecond)
			owner.Kill()
			owner.Wait()
			dead := 0
			for _, w := range ws {
				w.MustExit()
				dead += strings.Count(w.Output(), "got ownerdead")
				if !strings.Contains(w.Output(), "got ok") && !strings.Contains(w.Output(), "got ownerdead") {
					t.Fatalf("waiter printed %q", w.Output())
				}
			}
			err := m.Lock()
			if waiters == 0 {
				if !errors.Is(err, ErrOwnerDead) {
					t.Fatalf("Lock after the owner died: %v, want ErrOwnerDead", err)
				}
				dead++
				if err := m.Consistent(); err != nil {
					t.Fatal(err)
				}
			} else if err != nil {
				t.Fatalf("Lock after a waiter repaired the mutex: %v", err)
			}
			if dead != 1 {
				t.Fatalf("%d lockers got ErrOwnerDead, want exactly 1", dead)
			}
			if err := m.Unlock(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestNotRecoverable: the locker that gets ErrOwnerDead unlocks without
// Consistent; every process then gets ErrNotRecoverable.
func TestNotRecoverable(t *testing.T) {
	name, _, m := newTestMutex(t)
	owner := testproc.Start(t, "hold", name)
	owner.Expect("locked ok")
	owner.Kill()
	owner.Wait()
	w := testproc.Start(t, "lock-report", name, "leave")
	w.Expect("got ownerdead")
	w.MustExit()
	for range 2 {
		other := testproc.Start(t, "lock-report", name, "leave")
		other.Expect("got notrecoverable")
		other.MustExit()
	}
	if err := m.Lock(); !errors.Is(err, ErrNotRecoverable) {
		t.Fatalf("Lock: %v, want ErrNotRecoverable", err)
	}
	if ok, err := m.TryLock(); ok || !errors.Is(err, ErrNotRecoverable) {
		t.Fatalf("TryLock = %v, %v; want ErrNotRecoverable", ok, err)
	}
	if err := m.Unlock(); !errors.Is(err, ErrNotRecoverable) {
		t.Fatalf("Unlock: %v, want ErrNotRecoverable", err)
	}
}

// TestUnlockByOtherProcess: a process that does not hold the lock cannot
// unlock it.
func TestUnlockByOtherProcess(t *testing.T) {
	name, _, m := newTestMutex(t)
	owner := testproc.Start(t, "hold", name)
	owner.Expect("locked ok")
	if err := m.Unlock(); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Unlock of another process's lock: %v, want ErrNotOwner", err)
	}
	if err := m.Consistent(); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Consistent by a non-owner: %v, want ErrNotOwner", err)
	}
}

// TestLockContextCancel: a blocked LockContext returns ctx.Err() and the
// mutex stays with its owner.
func TestLockContextCancel(t *testing.T) {
	name, _, m := newTestMutex(t)
	owner := testproc.Start(t, "hold", name)
	owner.Expect("locked ok")
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- m.LockContext(ctx) }()
	time.Sleep(20 * time.Millisecond) // let it block; the result is the same if not
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("LockContext: %v, want context.Canceled", err)
	}
	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := m.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LockContext: %v, want DeadlineExceeded", err)
	}
	if ok, err := m.TryLock(); ok || err != nil {
		t.Fatalf("TryLock after cancel = %v, %v; the owner should still hold it", ok, err)
	}
	owner.Kill()
	owner.Wait()
	// Bare, not wrapped (errors.go says why): the takeover's errors.Is
	// is then one comparison.
	if err := m.Lock(); err != ErrOwnerDead {
		t.Fatalf("Lock: %#v, want ErrOwnerDead itself", err)
	}
}

// TestKillStorm: 4 processes lock and unlock in a tight loop while the test
// SIGKILLs one at a random moment and starts a new one, many times. Mutual
// exclusion must hold throughout and the mutex must end acquirable.
func TestKillStorm(t *testing.T) { killStorm(t, "hammer", "hammer", "hammer", "hammer") }

// killStorm starts a process per entry (lockers in tight loops that say
// "running"), then SIGKILLs one at a random moment and starts it again,
// many times. Mutual exclusion must hold throughout and the mutex must end
// acquirable.
func killStorm(t *testing.T, entries ...string) {
	kills := 300
	if testing.Short() {
		kills = 60
	}
	name, seg, m := newTestMutex(t)
	procs := make([]*testproc.Proc, len(entries))
	for i, e := range entries {
		procs[i] = testproc.Start(t, e, name, "0")
		procs[i].Expect("running")
	}
	counter := view(seg, offCounter)
	for k := range kills {
		i := rand.IntN(len(procs))
		// A random moment: wait for some progress, then a random delay.
		before := counter.Load()
		for counter.Load() < before+int64(rand.IntN(50)) {
			time.Sleep(10 * time.Microsecond)
		}
		time.Sleep(time.Duration(rand.IntN(300)) * time.Microsecond)
		procs[i].Kill()
		if code := procs[i].Wait(); code != -9 {
			t.Fatalf("kill %d: %s exited %d before the kill:\n%s", k, entries[i], code, procs[i].Output())
		}
		procs[i] = testproc.Start(t, entries[i], name, "0")
		procs[i].Expect("running")
	}
	for _, p := range procs {
		p.Kill()
		p.Wait()
	}
	if bad := view(seg, offBad).Load(); bad != 0 {
		t.Fatalf("mutual exclusion broken %d times", bad)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err := m.LockContext(ctx)
	if errors.Is(err, ErrOwnerDead) {
		err = m.Consistent()
	}
	if err != nil {
		t.Fatalf("mutex wedged after %d kills: %v", kills, err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d kills, %d critical sections", kills, counter.Load())
}

// TestManyProcessesExclude: 8 processes, 2000 rounds each, no kills: the
// counter is exact.
func TestManyProcessesExclude(t *testing.T) {
	name, seg, _ := newTestMutex(t)
	var ps []*testproc.Proc
	for range 8 {
		ps = append(ps, testproc.Start(t, "hammer", name, "2000"))
	}
	for _, p := range ps {
		p.MustExit()
	}
	if c, bad := view(seg, offCounter).Load(), view(seg, offBad).Load(); c != 16000 || bad != 0 {
		t.Fatalf("counter %d (want 16000), violations %d", c, bad)
	}
}

// TestHandOffStorm: 6 processes hold the lock for 100µs at a time, so that
// waiters starve and ask for hand-offs all the time, while others see
// granted requests: every process finishes (a grant lost between the
// granter's two steps once left a process waiting for a lock the word said
// it owned), and the counter is exact.
func TestHandOffStorm(t *testing.T) {
	name, seg, _ := newTestMutex(t)
	const procs, rounds = 6, 300
	var ps []*testproc.Proc
	for range procs {
		ps = append(ps, testproc.Start(t, "hammer", name, strconv.Itoa(rounds), "100us"))
	}
	for _, p := range ps {
		p.MustExitWithin(2 * time.Minute)
	}
	if c, bad := view(seg, offCounter).Load(), view(seg, offBad).Load(); c != procs*rounds || bad != 0 {
		t.Fatalf("counter %d (want %d), violations %d", c, procs*rounds, bad)
	}
}

// TestNoLostWakeup: two processes take turns with a lock, with critical
// sections long enough for the waiter to sleep on the futex, and with
// empty ones, back to back: every futex sleep ends with a wake, none by
// its slice running out (a waiter that relied on its timeout to make
// progress would have missed a wake-up). Through Mutexes and through
// BiasedMutexes, whose unlocks bias the lock while the other process may
// be going to sleep. (Before, biased buyers' sleeps ended at the 10 ms
// slice dozens of times a second.)
//
// With four processes, a wake of one sleeper leaves the others asleep on
// the word, and the woken one must take the lock with the waiters bit so
// that its Unlock wakes the next. A woken waiter that took a biased lock
// by revoking it took it without the bit, then biased it on Unlock, and
// the other sleepers slept out their slice (a 10 ms gap for a buyer at 4
// processes; here 5 s: three runs of this test before the fix failed,
// three after it passed).
func TestNoLostWakeup(t *testing.T) {
	for _, tc := range []struct {
		procs             int
		how, rounds, hold string
	}{
		{2, "mutex", "300", "200us"},
		{2, "biased", "300", "200us"},
		{2, "mutex", "300000", "0s"},
		{2, "biased", "1000000", "0s"},
		{4, "mutex", "1000", "200us"},
		{4, "biased", "1000", "200us"},
		{4, "biased", "300000", "0s"},
	} {
		t.Run(fmt.Sprintf("%s/%s/%d", tc.how, tc.hold, tc.procs), func(t *testing.T) {
			name, _ := newTestSegment(t)
			var ps []*testproc.Proc
			for range tc.procs {
				ps = append(ps, testproc.Start(t, "take-turns", name, tc.how, tc.rounds, tc.hold, strconv.Itoa(tc.procs)))
			}
			for _, p := range ps {
				if got := p.ExpectPrefix("timeouts "); got != "0" {
					t.Errorf("%d futex sleeps on the word ended by timeout, not by a wake", atoi(got))
				}
				p.MustExit()
			}
		})
	}
}

func atoi(s string) int { n, _ := strconv.Atoi(s); return n }

// TestLockContextDone: with a context that is done already, LockContext
// still takes a lock that can be had at once, as POSIX's timed locks do:
// a free one (nil) and one whose owner died (ErrOwnerDead); a held one is
// ctx's error. (Before, every such call returned ctx's error.)
func TestLockContextDone(t *testing.T) {
	name, _, m := newTestMutex(t)
	done, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.LockContext(done); err != nil {
		t.Fatalf("LockContext(done) of a free lock: %v, want nil", err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	owner := testproc.Start(t, "hold", name)
	owner.Expect("locked ok")
	if err := m.LockContext(done); !errors.Is(err, context.Canceled) {
		t.Fatalf("LockContext(done) of a held lock: %v, want context.Canceled", err)
	}
	owner.Kill()
	owner.Wait()
	if err := m.LockContext(done); err != ErrOwnerDead {
		t.Fatalf("LockContext(done) of a dead owner's lock: %v, want ErrOwnerDead", err)
	}
	m.Consistent()
	m.Unlock()
}

// TestTwoOpensOneOwner: a process that opens a mutex twice is one owner: a
// lock taken through one handle is unlocked through the other, and a lock
// call through the other waits for it as sync.Mutex's would. (Before, the
// second handle was a second process slot and owner id: it could not
// unlock, and its Lock waited for its own process forever.)
func TestTwoOpensOneOwner(t *testing.T) {
	name := tempName(t)
	a, err := CreateMutex(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	b, err := OpenMutex(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if a.Slot() != b.Slot() || a.m != b.m {
		t.Fatalf("two opens hold slots %d and %d, want one, and one state", a.Slot(), b.Slot())
	}
	if err := a.Lock(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if err := b.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Lock through the second open while the first holds it: %v, want DeadlineExceeded", err)
	}
	if err := b.Unlock(); err != nil {
		t.Fatalf("Unlock through the second open: %v", err)
	}
	if err := b.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := a.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Lock(); !errors.Is(err, shm.ErrClosed) {
		t.Fatalf("Lock after Close: %v, want shm.ErrClosed", err)
	}
	if err := b.Lock(); err != nil { // the other open is still open
		t.Fatal(err)
	}
	b.Unlock()
}
