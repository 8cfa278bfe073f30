//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) {
	testproc.Main(m, map[string]testproc.Entry{
		"hold":        holdEntry,
		"lock-report": lockReportEntry,
		"hammer":      hammerEntry,
		"bias-hammer": func(args []string) int { return hammer(args, true) },
		"try-hammer":  tryHammerEntry,
		"bias-hold":   biasHoldEntry,
		"revoke-stop": revokeStopEntry,
		"sem-loop":    semLoopEntry,
		"sem-hold":    semHoldEntry,
		"contend":     contendEntry,
		"bench-hold":  benchHoldEntry,
	})
}

// The test segment: a Semaphore record (whose first MutexSize bytes are a
// Mutex record) followed by test words the children check each other with.
const (
	testTag    = "semaphore.test/1"
	offTest    = SemaphoreSize
	testSize   = SemaphoreSize + 64
	offHolder  = offTest      // pid of the process inside the critical section
	offCounter = offTest + 8  // incremented inside the critical section
	offBad     = offTest + 16 // mutual-exclusion violations seen
	offInside  = offTest + 24 // semaphore holders right now
	offMax     = offTest + 32 // most semaphore holders ever seen at once
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
func newLocker(seg *shm.Segment, biased bool) (locker, error) {
	if biased {
		return NewBiasedMutex(seg, 0)
	}
	return NewMutex(seg, 0)
}

// openLocker opens the test segment name and attaches its mutex as
// newLocker does: how most child entries start.
func openLocker(name string, biased bool) (*shm.Segment, locker, error) {
	seg, err := openTest(name)
	if err != nil {
		return nil, nil, err
	}
	m, err := newLocker(seg, biased)
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
		if !holder.CompareAndSwap(0, pid) {
			bad.Add(1)
		}
		counter.Store(counter.Load() + 1)
		for start := time.Now(); time.Since(start) < hold; {
			// Busy: a long critical section makes waiters starve
			// and ask for hand-offs.
		}
		if !holder.CompareAndSwap(pid, 0) {
			bad.Add(1)
		}
		if err := m.Unlock(); err != nil {
			return fail(err)
		}
	}
	return 0
}

// semLoopEntry: args name, rounds. Acquire one permit, count the holders,
// release; the most holders seen at once goes to offMax.
func semLoopEntry(args []string) int {
	seg, err := openTest(args[0])
	if err != nil {
		return fail(err)
	}
	s, err := NewSemaphore(seg, 0)
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
	s, err := NewSemaphore(seg, 0)
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

// biasHoldEntry: args name, inside|between. Lock and unlock through a
// BiasedMutex so that the lock is biased to this process, print
// "biased <bias word>", then lock again if inside and print "inside", or
// print "between"; wait to be killed.
func biasHoldEntry(args []string) int {
	seg, err := openTest(args[0])
	if err != nil {
		return fail(err)
	}
	m, err := NewBiasedMutex(seg, 0)
	if err != nil {
		return fail(err)
	}
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
	revokeHook = func(step string) {
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
