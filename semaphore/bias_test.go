//go:build linux

package semaphore

import (
	"context"
	"encoding/binary"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// TestBiasedProcessesExclude: processes with BiasedMutexes, and with a mix
// of BiasedMutexes and Mutexes, lock the same record in tight loops: the
// bias moves between them by revocation and the counter is exact.
func TestBiasedProcessesExclude(t *testing.T) {
	for _, tc := range []struct {
		name  string
		procs []string
	}{
		{"2biased", []string{"bias-hammer", "bias-hammer"}},
		{"4biased", []string{"bias-hammer", "bias-hammer", "bias-hammer", "bias-hammer"}},
		{"mixed", []string{"bias-hammer", "hammer", "bias-hammer", "hammer"}},
		{"trylock", []string{"bias-hammer", "try-hammer", "bias-hammer"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, seg, _ := newTestMutex(t)
			const rounds = 1000000
			var ps []*testproc.Proc
			for _, entry := range tc.procs {
				ps = append(ps, testproc.Start(t, entry, name, strconv.Itoa(rounds)))
			}
			for _, p := range ps {
				p.MustExitWithin(time.Minute)
			}
			want := int64(rounds * len(tc.procs))
			if c, bad := view(seg, offCounter).Load(), view(seg, offBad).Load(); c != want || bad != 0 {
				t.Fatalf("counter %d (want %d), violations %d", c, want, bad)
			}
		})
	}
}

// needBias skips a test of biasing where this system cannot bias.
func needBias(t *testing.T) {
	t.Helper()
	if err := registerBias(); err != nil {
		t.Skipf("no biasing here: %v", err)
	}
}

func newBiased(t *testing.T) (string, *shm.Segment, *BiasedMutex) {
	t.Helper()
	name, seg := newTestSegment(t)
	m, err := NewBiasedMutex(context.Background(), seg, 0)
	if err != nil {
		t.Fatal(err)
	}
	return name, seg, m
}

func TestBiasedBasics(t *testing.T) {
	_, seg, m := newBiased(t)
	if err := m.Unlock(); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("Unlock before Lock: %v, want ErrNotOwner", err)
	}
	for i := range 3 {
		if err := m.Lock(); err != nil {
			t.Fatal(err)
		}
		if err := m.Lock(); !errors.Is(err, ErrInUse) {
			t.Fatalf("second Lock: %v, want ErrInUse", err)
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
		if registerBias() == nil && !m.Biased() {
			t.Fatalf("round %d: not biased after an uncontended Unlock", i)
		}
	}
	if ok, err := m.TryLock(); !ok || err != nil {
		t.Fatalf("TryLock of a free mutex = %v, %v", ok, err)
	}
	if err := m.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := m.Unlock(); !errors.Is(err, ErrNotOwner) {
		t.Fatalf("second Unlock: %v, want ErrNotOwner", err)
	}
	if _, err := NewMutex(context.Background(), seg, 0); !errors.Is(err, ErrInUse) {
		t.Fatalf("NewMutex on a record with a BiasedMutex: %v, want ErrInUse", err)
	}
	if _, err := NewBiasedMutex(context.Background(), seg, 0); !errors.Is(err, ErrInUse) {
		t.Fatalf("second NewBiasedMutex: %v, want ErrInUse", err)
	}
	other, err := openTest(tempName(t))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if _, err := NewMutex(context.Background(), other, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := NewBiasedMutex(context.Background(), other, 0); !errors.Is(err, ErrInUse) {
		t.Fatalf("NewBiasedMutex on a record with a Mutex: %v, want ErrInUse", err)
	}
}

// TestBiasedGoroutines: goroutines that pass one BiasedMutex from hand
// to hand (one at a time, as its contract says) see each other's writes,
// and the race detector sees the lock as the synchronisation.
func TestBiasedGoroutines(t *testing.T) {
	_, _, m := newBiased(t)
	plain := 0
	var turn sync.Mutex // one goroutine uses m at a time
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for range 1000 {
				turn.Lock()
				if err := m.Lock(); err != nil {
					t.Error(err)
				}
				plain++
				if err := m.Unlock(); err != nil {
					t.Error(err)
				}
				turn.Unlock()
			}
		})
	}
	wg.Wait()
	if plain != 4000 {
		t.Fatalf("counter %d, want 4000", plain)
	}
}

// biasWord reads the record's bias word.
// claimingRevoker starts a locker of the record of segment name that
// waits for a lock biased to another process, and returns it once it has
// claimed the bias (its revocation under way).
func claimingRevoker(t *testing.T, name string, seg *shm.Segment) *testproc.Proc {
	t.Helper()
	r := testproc.Start(t, "lock-report", name, "consistent")
	r.Expect("waiting")
	for biasRevoker(biasWord(seg)) < 0 {
		time.Sleep(100 * time.Microsecond)
	}
	return r
}

func biasWord(seg *shm.Segment) uint64 {
	return binary.LittleEndian.Uint64(seg.Data()[offBias:])
}

// TestBiasedHolderDeath: a process holding the bias is SIGKILLed inside a
// critical section (the next locker gets ErrOwnerDead) or between two
// (the lock is free: nil), with the next locker blocked before the kill
// or arriving after it, through a Mutex and through a BiasedMutex.
func TestBiasedHolderDeath(t *testing.T) {
	needBias(t)
	for _, where := range []string{"inside", "between"} {
		for _, when := range []string{"after", "blocked"} {
			for _, how := range []string{"mutex", "biased"} {
				if where == "between" && when == "blocked" {
					continue // an idle holder is revoked at once: TestRevokeIdle
				}
				t.Run(where+"/"+when+"/"+how, func(t *testing.T) {
					name := tempName(t)
					seg, err := openTest(name)
					if err != nil {
						t.Fatal(err)
					}
					defer seg.Close()
					holder := testproc.Start(t, "bias-hold", name, where)
					holder.Expect("biased true")
					holder.Expect(where)
					if b := biasWord(seg); biasHolder(b) < 0 || biasRevoker(b) >= 0 || biasVerdict(b) != 0 {
						t.Fatalf("bias word %#x, want the holder's slot alone", b)
					}
					m, err := newLocker(seg, how == "biased")
					if err != nil {
						t.Fatal(err)
					}
					got := make(chan error, 1)
					lock := func() { got <- m.Lock() }
					if when == "blocked" {
						go lock()
						time.Sleep(20 * time.Millisecond)
						select {
						case err := <-got:
							t.Fatalf("Lock returned %v while the holder was inside", err)
						default:
						}
					}
					holder.Kill()
					holder.Wait()
					if when == "after" {
						lock()
					}
					err = <-got
					want := error(nil)
					if where == "inside" {
						want = ErrOwnerDead
					}
					if !errors.Is(err, want) || (want == nil && err != nil) {
						t.Fatalf("Lock after the holder died %s: %v, want %v", where, err, want)
					}
					if err != nil {
						if err := m.Consistent(); err != nil {
							t.Fatal(err)
						}
					}
					if err := m.Unlock(); err != nil {
						t.Fatal(err)
					}
					if err := m.Lock(); err != nil {
						t.Fatalf("Lock after repair: %v", err)
					}
					if err := m.Unlock(); err != nil {
						t.Fatal(err)
					}
				})
			}
		}
	}
}

// TestRevokeIdle: a live process holds the bias between critical
// sections; Lock and TryLock from this process take the lock from it, and
// its entry shows it outside.
func TestRevokeIdle(t *testing.T) {
	needBias(t)
	for _, how := range []string{"lock", "trylock"} {
		t.Run(how, func(t *testing.T) {
			name, seg, m := newTestMutex(t)
			holder := testproc.Start(t, "bias-hold", name, "between")
			holder.Expect("between")
			if hs := biasHolder(biasWord(seg)); hs < 0 || hs == m.Slot() {
				t.Fatalf("bias word %#x, want the child's slot", biasWord(seg))
			}
			var err error
			ok := true
			if how == "lock" {
				err = m.Lock()
			} else {
				ok, err = m.TryLock()
			}
			if !ok || err != nil {
				t.Fatalf("%s of a lock biased to an idle process = %v, %v", how, ok, err)
			}
			if b := biasWord(seg); biasHolder(b) >= 0 || biasRevoker(b) >= 0 || biasVerdict(b) != 0 {
				t.Fatalf("bias word %#x after the revocation, want no holder, revoker or verdict", b)
			}
			if w := binary.LittleEndian.Uint32(seg.Data()[offWord:]); w != m.m.tid {
				t.Fatalf("word %#x, want this process's id %d alone", w, m.m.tid)
			}
			if err := m.Unlock(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestRevokeInside: the holder is inside its critical section (for good):
// TryLock fails and leaves the bias as it was; LockContext waits until its
// context ends and does the same; after the holder dies, Lock gets
// ErrOwnerDead.
func TestRevokeInside(t *testing.T) {
	needBias(t)
	name, seg, m := newTestMutex(t)
	holder := testproc.Start(t, "bias-hold", name, "inside")
	holder.Expect("inside")
	before := biasWord(seg)
	if ok, err := m.TryLock(); ok || err != nil {
		t.Fatalf("TryLock while the holder is inside = %v, %v", ok, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	if err := m.LockContext(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("LockContext while the holder is inside: %v, want DeadlineExceeded", err)
	}
	if after := biasWord(seg); biasHolder(after) != biasHolder(before) || biasRevoker(after) >= 0 || after>>biasEpochShift <= before>>biasEpochShift {
		t.Fatalf("bias word %#x after giving up, want the holder of %#x, no revoker, a later epoch", after, before)
	}
	holder.Kill()
	holder.Wait()
	if err := m.Lock(); !errors.Is(err, ErrOwnerDead) {
		t.Fatalf("Lock after the holder died inside: %v, want ErrOwnerDead", err)
	}
	m.Consistent()
	m.Unlock()
}

// TestRevokerDeath: a revoker is SIGKILLed at each step of a revocation
// while the bias holder keeps locking (bias-hammer): the holder goes on,
// mutual exclusion holds, and the lock stays usable. A revoker killed
// after taking the word is an owner that died holding it: exactly one
// process gets ErrOwnerDead (the hammer repairs it).
func TestRevokerDeath(t *testing.T) {
	needBias(t)
	for _, step := range []string{"claimed", "fenced", "won", "seized", "decided", "taken"} {
		t.Run(step, func(t *testing.T) {
			name, seg, m := newTestMutex(t)
			counter := view(seg, offCounter)
			h := testproc.Start(t, "bias-hammer", name, "0")
			h.Expect("running")
			r := testproc.Start(t, "revoke-stop", name, step)
			r.Expect("stopped " + step)
			r.Kill()
			r.Wait()
			// The holder goes on.
			before := counter.Load()
			for counter.Load() < before+1000 {
				time.Sleep(100 * time.Microsecond)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := m.LockContext(ctx)
			if errors.Is(err, ErrOwnerDead) {
				view(seg, offHolder).Store(0)
				err = m.Consistent()
			}
			if err != nil {
				t.Fatalf("Lock after the revoker died: %v", err)
			}
			if err := m.Unlock(); err != nil {
				t.Fatal(err)
			}
			h.Kill()
			h.Wait()
			if bad := view(seg, offBad).Load(); bad != 0 {
				t.Fatalf("mutual exclusion broken %d times", bad)
			}
		})
	}
}

// TestBiasedKillStorm: biased and plain lockers in tight loops, one of
// them SIGKILLed at a random moment and replaced, many times: inside and
// between critical sections, while revoking and while biasing. Mutual
// exclusion holds throughout and the lock ends usable.
func TestBiasedKillStorm(t *testing.T) {
	killStorm(t, "bias-hammer", "bias-hammer", "bias-hammer", "hammer", "try-hammer")
}

// TestGarbageBias: a bias word naming slots no live process holds, with the
// word free, held by a dead id, marked OWNER_DIED, or handed off to nobody:
// Lock through a Mutex or a BiasedMutex takes the lock without hanging,
// and ErrOwnerDead comes exactly when the words say a critical section was
// left unfinished (a verdict, or the named holder's in-critical-section
// bit).
func TestGarbageBias(t *testing.T) {
	const deadID = 0x12345 // no live process has this thread id here
	holder := func(h int) uint64 { return nextBias(0, h, -1, 0) }
	for _, tc := range []struct {
		name    string
		word    uint32
		bias    uint64
		inside  bool // the entry of the bias word's holder says inside
		handoff uint32
		want    error
	}{
		{"free", 0, holder(5), false, 0, nil},
		{"free, revoker", 0, nextBias(0, 5, 7, 0), false, 0, nil},
		{"dead id, holder outside", deadID, holder(5), false, 0, nil},
		{"dead id, holder inside", deadID, holder(5), true, 0, ErrOwnerDead},
		{"dead id, revoker", deadID, nextBias(0, 5, 7, 0), false, 0, nil},
		{"owner died, holder outside", ownerDiedBit, holder(5), false, 0, nil},
		{"owner died, holder inside", ownerDiedBit, holder(5), true, 0, ErrOwnerDead},
		{"owner died, verdict dirty", ownerDiedBit, nextBias(0, 5, -1, verdictDirty), false, 0, ErrOwnerDead},
		{"owner died, verdict clean", ownerDiedBit, nextBias(0, 5, -1, verdictClean), true, 0, nil},
		{"owner died, unbiased", ownerDiedBit, nextBias(0, -1, -1, 0), false, 0, ErrOwnerDead},
		{"handed off to nobody", handedOff, 0, false, 0, nil},
		{"handed off to a dead slot", handedOff | waitersBit, 0, false, 9 | grantedBit, nil},
	} {
		for _, how := range []string{"mutex", "biased"} {
			t.Run(tc.name+"/"+how, func(t *testing.T) {
				seg, err := openTest(tempName(t))
				if err != nil {
					t.Fatal(err)
				}
				defer seg.Close()
				d := seg.Data()
				binary.LittleEndian.PutUint32(d[offWord:], tc.word)
				binary.LittleEndian.PutUint32(d[offHandoff:], tc.handoff)
				binary.LittleEndian.PutUint64(d[offBias:], tc.bias)
				if h := biasHolder(tc.bias); h >= 0 && tc.inside {
					binary.LittleEndian.PutUint32(d[offEntries+4*h:], deadID|inCSBit)
				}
				m, err := newLocker(seg, how == "biased")
				if err != nil {
					t.Fatal(err)
				}
				done := make(chan error, 1)
				go func() { done <- m.Lock() }()
				select {
				case err = <-done:
				case <-time.After(30 * time.Second):
					t.Fatalf("word %#x bias %#x: Lock hangs", tc.word, tc.bias)
				}
				if !errors.Is(err, tc.want) || (tc.want == nil && err != nil) {
					t.Fatalf("word %#x bias %#x: Lock: %v, want %v", tc.word, tc.bias, err, tc.want)
				}
				if b := biasWord(seg); biasHolder(b) >= 0 || biasVerdict(b) != 0 {
					t.Fatalf("bias word %#x after the lock, want it settled", b)
				}
				if err != nil {
					m.Consistent()
				}
				if err := m.Unlock(); err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// TestBiasedFastPaths: LockFast and UnlockFast take and release a lock
// biased to this process, do nothing otherwise, and UnlockFast leaves a
// waiting revoker (a child process) to Unlock, which wakes it.
func TestBiasedFastPaths(t *testing.T) {
	needBias(t)
	name, seg, h := newBiased(t)
	if h.LockFast() {
		t.Fatal("LockFast before any bias = true")
	}
	if h.UnlockFast() {
		t.Fatal("UnlockFast of an unlocked mutex = true")
	}
	if err := h.Lock(); err != nil {
		t.Fatal(err)
	}
	if h.UnlockFast() {
		t.Fatal("UnlockFast of a lock taken through the word = true")
	}
	if err := h.Unlock(); err != nil {
		t.Fatal(err)
	}
	if !h.LockFast() {
		t.Fatal("LockFast of a lock biased to us = false")
	}
	if !h.UnlockFast() {
		t.Fatal("UnlockFast with nobody waiting = false")
	}

	if !h.LockFast() {
		t.Fatal("LockFast = false")
	}
	other := claimingRevoker(t, name, seg)
	if h.UnlockFast() {
		t.Fatal("UnlockFast with a revoker waiting = true, want false (Unlock wakes it)")
	}
	if err := h.Unlock(); err != nil {
		t.Fatal(err)
	}
	other.Expect("got ok")
	other.MustExit()
	if h.LockFast() {
		t.Fatal("LockFast after the revocation = true")
	}
	if err := h.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := h.Unlock(); err != nil {
		t.Fatal(err)
	}
}

// TestEnterFast: EnterFast and ExitFast, which keep no state and check
// nothing but the bias word, enter only a lock biased to this process:
// not one never biased (its word 0, want noBias), not one whose bias was
// revoked or now names another process, and not after Close with the
// segment unmapped (which must not fault); ExitFast leaves a waiting
// revoker to Unlock, which wakes it.
func TestEnterFast(t *testing.T) {
	needBias(t)
	name, seg, h := newBiased(t)
	if w := biasWord(seg); w != 0 {
		t.Fatalf("a new record's bias word = %#x, want 0", w)
	}
	if h.EnterFast() {
		t.Fatal("EnterFast before any bias = true")
	}
	if err := h.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := h.Unlock(); err != nil { // biases it to us
		t.Fatal(err)
	}
	if !h.EnterFast() {
		t.Fatal("EnterFast of a lock biased to us = false")
	}
	if !h.ExitFast() {
		t.Fatal("ExitFast with nobody waiting = false")
	}

	if !h.EnterFast() {
		t.Fatal("EnterFast = false")
	}
	other := claimingRevoker(t, name, seg)
	if h.ExitFast() {
		t.Fatal("ExitFast with a revoker waiting = true, want false (Unlock wakes it)")
	}
	if err := h.Unlock(); err != nil {
		t.Fatal(err)
	}
	other.Expect("got ok")
	other.MustExit()
	if h.EnterFast() {
		t.Fatalf("EnterFast after the revocation = true (bias word %#x)", biasWord(seg))
	}
	// The other process left the lock biased to itself, or free.
	if err := h.Lock(); err != nil {
		t.Fatal(err)
	}
	if err := h.Unlock(); err != nil {
		t.Fatal(err)
	}
	if !h.EnterFast() {
		t.Fatal("EnterFast once biased to us again = false")
	}
	if !h.ExitFast() {
		t.Fatal("ExitFast = false")
	}

	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := seg.Close(); err != nil {
		t.Fatal(err)
	}
	if h.EnterFast() {
		t.Fatal("EnterFast after Close = true")
	}
	// ExitFast without EnterFast is a misuse; after Close it writes h's
	// own word and sends its caller to Unlock, which says ErrClosed.
	if h.ExitFast() {
		t.Fatal("ExitFast after Close = true")
	}
	if err := h.Unlock(); !errors.Is(err, shm.ErrClosed) {
		t.Fatalf("Unlock after Close = %v, want ErrClosed", err)
	}
}
