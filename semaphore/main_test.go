//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) {
	testproc.Main(m, withEnterEntries(map[string]testproc.Entry{
		"hold":         holdEntry,
		"lock-report":  lockReportEntry,
		"hammer":       hammerEntry,
		"bias-hammer":  func(args []string) int { return hammer(args, true) },
		"try-hammer":   tryHammerEntry,
		"bias-hold":    biasHoldEntry,
		"revoke-stop":  revokeStopEntry,
		"sem-loop":     semLoopEntry,
		"sem-hold":     semHoldEntry,
		"contend":      contendEntry,
		"bench-hold":   benchHoldEntry,
		"attach":       attachEntry,
		"close-held":   closeHeldEntry,
		"hold-until":   holdUntilEntry,
		"take-turns":   takeTurnsEntry,
		"stop-at":      stopAtEntry,
		"ctx-withdraw": ctxWithdrawEntry,
		"bias-reopen":  biasReopenEntry,
		"hold-check":   holdCheckEntry,
		"try-once":     tryOnceEntry,
		"too-many":     tooManyEntry,
		"hold-claim":   testproc.HoldClaimEntry,
	}))
}

// The test segment: a Semaphore record (whose first MutexSize bytes are a
// Mutex record) followed by test words the children check each other with,
// and a second Mutex record, for tests of two records in one segment.
// Children name a record as "name" (offset 0) or "name@offset".
const (
	testTag    = "semaphore.test/2"
	offTest    = SemaphoreSize
	offRecB    = SemaphoreSize + 64
	testSize   = offRecB + MutexSize
	offHolder  = offTest      // pid of the process inside the critical section
	offCounter = offTest + 8  // incremented inside the critical section
	offBad     = offTest + 16 // mutual-exclusion violations seen
	offInside  = offTest + 24 // semaphore holders right now
	offMax     = offTest + 32 // most semaphore holders ever seen at once
	offTurned  = offTest + 40 // take-turns processes that did their rounds
	testPerms  = 3
)

var nameSeq atomic.Int64

func tempName(t testing.TB) string {
	name := fmt.Sprintf("semtest.%d.%d.%d", os.Getpid(), time.Now().UnixNano(), nameSeq.Add(1))
	t.Cleanup(func() {
		if err := shm.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

func openTest(name string) (*shm.Segment, error) {
	return shm.OpenOrCreate(context.Background(), name, testSize, testTag, func(s *shm.Segment) error {
		return InitSemaphore(s, 0, testPerms)
	})
}

// record splits a child's record argument, "name" or "name@offset".
func record(arg string) (name string, off int) {
	name, o, ok := strings.Cut(arg, "@")
	if ok {
		off, _ = strconv.Atoi(o)
	}
	return name, off
}

// view returns the int64 at data offset off; test code only.
func view(s *shm.Segment, off int) *atomic.Int64 {
	v, err := s.Int64(off)
	if err != nil {
		panic(err)
	}
	return v
}

func fail(err error) int {
	fmt.Fprintln(os.Stderr, "child:", err)
	return 1
}

func lockResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case errors.Is(err, ErrOwnerDead):
		return "ownerdead"
	case errors.Is(err, ErrNotRecoverable):
		return "notrecoverable"
	}
	return "error " + err.Error()
}

// holdEntry: lock the mutex of segment args[0], say "locked", wait to be
// killed.
func holdEntry(args []string) int {
	_, m, err := openLocker(args[0], false)
	if err != nil {
		return fail(err)
	}
	fmt.Println("locked", lockResult(m.Lock()))
	time.Sleep(time.Hour)
	return 0
}

// lockReportEntry: args name, consistent|leave. Lock, print what Lock
// returned, call Consistent if asked to and the owner died, unlock.
func lockReportEntry(args []string) int {
	_, m, err := openLocker(args[0], false)
	if err != nil {
		return fail(err)
	}
	fmt.Println("waiting")
	err = m.Lock()
	fmt.Println("got", lockResult(err))
	if errors.Is(err, ErrNotRecoverable) {
		return 0
	}
	if errors.Is(err, ErrOwnerDead) && args[1] == "consistent" {
		if err := m.Consistent(); err != nil {
			return fail(err)
		}
	}
	err = m.Unlock()
	if err != nil && !(args[1] == "leave" && errors.Is(err, ErrNotRecoverable)) {
		return fail(err)
	}
	return 0
}

// locker is what Mutex and BiasedMutex have in common.
type locker interface {
	Lock() error
	TryLock() (bool, error)
	Unlock() error
	Consistent() error
}

// newLocker attaches the record at offset 0 of seg as a BiasedMutex or a
// Mutex.
func newLocker(seg *shm.Segment, biased bool) (locker, error) { return newLockerAt(seg, 0, biased) }

func newLockerAt(seg *shm.Segment, off int, biased bool) (locker, error) {
	if biased {
		return NewBiasedMutex(context.Background(), seg, off)
	}
	return NewMutex(context.Background(), seg, off)
}

// openLocker opens the test segment of the record argument arg and
// attaches its mutex as newLocker does: how most child entries start.
func openLocker(arg string, biased bool) (*shm.Segment, locker, error) {
	name, off := record(arg)
	seg, err := openTest(name)
	if err != nil {
		return nil, nil, err
	}
	m, err := newLockerAt(seg, off, biased)
	if err != nil {
		seg.Close()
		return nil, nil, err
	}
	return seg, m, nil
}

// hammerEntry (bias-hammer: through a BiasedMutex): lock and unlock in a tight loop, checking mutual exclusion
// with the holder word, until killed or args[1] rounds are done.
func hammerEntry(args []string) int { return hammer(args, false) }

// tryHammerEntry: hammer through TryLock, retrying at once: a TryLock of
// a lock biased to an idle process revokes the bias; of one whose holder
// is inside, it gives up and leaves the bias alone.
func tryHammerEntry(args []string) int { return hammerWith(args, false, true) }

func hammer(args []string, biased bool) int { return hammerWith(args, biased, false) }

func hammerWith(args []string, biased, try bool) int {
	seg, m, err := openLocker(args[0], biased)
	if err != nil {
		return fail(err)
	}
	rounds, _ := strconv.Atoi(args[1])
	var hold time.Duration // optional args[2]: how long each critical section lasts
	if len(args) > 2 {
		hold, _ = time.ParseDuration(args[2])
	}
	holder, counter, bad := view(seg, offHolder), view(seg, offCounter), view(seg, offBad)
	pid := int64(os.Getpid())
	fmt.Println("running")
	for i := 0; rounds == 0 || i < rounds; i++ {
		var err error
		if try {
			for ok := false; !ok && err == nil; {
				ok, err = m.TryLock()
			}
		} else {
			err = m.Lock()
		}
		if errors.Is(err, ErrOwnerDead) {
			holder.Store(0) // the repair: the dead owner's mark
			err = m.Consistent()
		}
		if err != nil {
			return fail(err)
		}
		checkedSection(holder, counter, bad, pid, hold)
		if err := m.Unlock(); err != nil {
			return fail(err)
		}
	}
	return 0
}

// checkedSection is a locked critical section that checks the lock: it
// marks this process (pid) inside in holder, counting a violation in bad
// if another process is, bumps counter, stays hold (busy: a long
// critical section makes waiters starve and ask for hand-offs) and takes
// its mark back.
func checkedSection(holder, counter, bad *atomic.Int64, pid int64, hold time.Duration) {
	if !holder.CompareAndSwap(0, pid) {
		bad.Add(1)
	}
	counter.Store(counter.Load() + 1)
	for start := time.Now(); time.Since(start) < hold; {
	}
	if !holder.CompareAndSwap(pid, 0) {
		bad.Add(1)
	}
}

// semLoopEntry: args name, rounds. Acquire one permit, count the holders,
// release; the most holders seen at once goes to offMax.
func semLoopEntry(args []string) int {
	seg, err := openTest(args[0])
	if err != nil {
		return fail(err)
	}
	s, err := NewSemaphore(context.Background(), seg, 0)
	if err != nil {
		return fail(err)
	}
	rounds, _ := strconv.Atoi(args[1])
	inside, most := view(seg, offInside), view(seg, offMax)
	for range rounds {
		if err := s.Acquire(context.Background(), 1); err != nil {
			return fail(err)
		}
		n := inside.Add(1)
		for {
			old := most.Load()
			if n <= old || most.CompareAndSwap(old, n) {
				break
			}
		}
		for range 100 {
			_ = inside.Load() // hold the permit for a moment
		}
		inside.Add(-1)
		if err := s.Release(1); err != nil {
			return fail(err)
		}
	}
	return 0
}

// semHoldEntry: args name, n. Acquire n permits, say "held", wait to die.
func semHoldEntry(args []string) int {
	seg, err := openTest(args[0])
	if err != nil {
		return fail(err)
	}
	s, err := NewSemaphore(context.Background(), seg, 0)
	if err != nil {
		return fail(err)
	}
	n, _ := strconv.ParseInt(args[1], 10, 64)
	if err := s.Acquire(context.Background(), n); err != nil {
		return fail(err)
	}
	fmt.Println("held")
	time.Sleep(time.Hour)
	return 0
}

// biasHoldEntry: args record, inside|between. Attach the record through a
// BiasedMutex and print "id <slot> <owner id>"; lock and unlock so that the
// lock is biased to this process, print "biased <Biased()>", then lock
// again if inside and print "inside", or print "between"; wait to be
// killed.
func biasHoldEntry(args []string) int {
	name, off := record(args[0])
	seg, err := openTest(name)
	if err != nil {
		return fail(err)
	}
	m, err := NewBiasedMutex(context.Background(), seg, off)
	if err != nil {
		return fail(err)
	}
	fmt.Println("id", m.Slot(), m.m.tid)
	if err := m.Lock(); err != nil && !errors.Is(err, ErrOwnerDead) {
		return fail(err)
	} else if err != nil {
		m.Consistent()
	}
	if err := m.Unlock(); err != nil {
		return fail(err)
	}
	fmt.Println("biased", m.Biased())
	if args[1] == "inside" {
		if err := m.Lock(); err != nil {
			return fail(err)
		}
	}
	fmt.Println(args[1])
	time.Sleep(time.Hour)
	return 0
}

// revokeStopEntry: args name, step. Lock the mutex (a plain Mutex), which
// is biased to another process, and stop for good at that step of the
// revocation, saying "stopped <step>".
func revokeStopEntry(args []string) int {
	_, m, err := openLocker(args[0], false)
	if err != nil {
		return fail(err)
	}
	stepHook = func(step string) {
		if step == args[1] {
			fmt.Println("stopped", step)
			time.Sleep(time.Hour)
		}
	}
	fmt.Println("locking")
	fmt.Println("got", lockResult(m.Lock()))
	time.Sleep(time.Hour)
	return 0
}

// attachEntry: args record, slot, kind [, barrier]. Open the test segment,
// claim the slot given (if free; -1: any), print "slot <index> <gen>",
// attach the record as kind (none, mutex, biased, semaphore), print
// "id <slot> <owner id>" for a lock and then "joined" (or "error <err>" if
// something failed). With a barrier file, wait until it exists, lock,
// print "got <result>" and hold the lock until killed.
func attachEntry(args []string) int {
	name, off := record(args[0])
	seg, err := openTest(name)
	if err != nil {
		return fail(err)
	}
	var prefer []int
	if i, _ := strconv.Atoi(args[1]); i >= 0 {
		prefer = append(prefer, i)
	}
	sl, err := seg.Slot(context.Background(), prefer...)
	if err != nil {
		fmt.Println("error", err)
		time.Sleep(time.Hour)
	}
	fmt.Println("slot", sl.Index, sl.Gen)
	var l locker
	switch args[2] {
	case "mutex", "biased":
		l, err = newLockerAt(seg, off, args[2] == "biased")
		if err == nil {
			var m *mutex
			switch l := l.(type) {
			case *Mutex:
				m = l.m
			case *BiasedMutex:
				m = l.m
			}
			fmt.Println("id", m.Slot(), m.tid)
		}
	case "semaphore":
		_, err = NewSemaphore(context.Background(), seg, off)
	}
	if err != nil {
		fmt.Println("error", err)
		time.Sleep(time.Hour)
	}
	fmt.Println("joined")
	if len(args) > 3 && l != nil {
		for {
			if _, err := os.Stat(args[3]); err == nil {
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		fmt.Println("got", lockResult(l.Lock()))
	}
	time.Sleep(time.Hour)
	return 0
}

// closeHeldEntry: args record. Lock the mutex, close the segment without
// unlocking, say "closed", and live on until killed.
func closeHeldEntry(args []string) int {
	seg, m, err := openLocker(args[0], false)
	if err != nil {
		return fail(err)
	}
	if err := m.Lock(); err != nil {
		return fail(err)
	}
	if err := seg.Close(); err != nil {
		return fail(err)
	}
	fmt.Println("closed")
	time.Sleep(time.Hour)
	return 0
}

// holdUntilEntry: args record, barrier. Lock, say "locked <result>", wait
// until the barrier file exists, unlock, say "unlocked", live on.
func holdUntilEntry(args []string) int {
	_, m, err := openLocker(args[0], false)
	if err != nil {
		return fail(err)
	}
	fmt.Println("locked", lockResult(m.Lock()))
	for {
		if _, err := os.Stat(args[1]); err == nil {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	if err := m.Unlock(); err != nil {
		return fail(err)
	}
	fmt.Println("unlocked")
	time.Sleep(time.Hour)
	return 0
}

// takeTurnsEntry: args record, biased|mutex, rounds, hold, procs. Lock,
// hold the lock for hold (busy, so that the other process's waiter asks
// for it and then sleeps on the futex), unlock, rounds times, and then on
// until all procs processes have done their rounds (a sleeper left asleep
// is then not rescued by another's exit, whose robust list wakes it); then
// print "timeouts <n>": the futex sleeps on the word that ended by their
// slice, not by a wake.
func takeTurnsEntry(args []string) int {
	// A slice far longer than any wake-up takes, even on a machine
	// loaded well past its cores (CI runs packages side by side): a
	// sleep that runs out is a wake-up that never came, not a late one.
	waitSlice = 5 * time.Second
	seg, m, err := openLocker(args[0], args[1] == "biased")
	if err != nil {
		return fail(err)
	}
	rounds, _ := strconv.Atoi(args[2])
	hold, _ := time.ParseDuration(args[3])
	procs, _ := strconv.ParseInt(args[4], 10, 64)
	done := view(seg, offTurned)
	fmt.Println("running")
	for i := 0; i < rounds || done.Load() < procs; i++ {
		if i == rounds {
			done.Add(1)
		}
		if err := m.Lock(); err != nil {
			return fail(err)
		}
		for start := time.Now(); time.Since(start) < hold; {
		}
		if err := m.Unlock(); err != nil {
			return fail(err)
		}
	}
	fmt.Println("timeouts", wordTimeouts.Load())
	return 0
}

func init() {
	// ExampleMutex_Do leaves its lock, as a program should; the test
	// binary removes it.
	testproc.AfterRun(func() { shm.Remove("example.lock") })
}
