//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/shm"
)

// Mutex fairness.
//
// A Mutex is barging: Unlock releases the word and wakes one sleeper, and
// whoever CASes the word first owns it, a newcomer or the woken process.
// That keeps the lock busy (no hand-off to a sleeper that still has to be
// scheduled) and is what makes it fast, but a waiter could lose every race.
// So a waiter that has slept for more than starvationThreshold raises the
// record's starvation deadline to now+starvationWindow, and keeps raising
// it while it loses. While that deadline is in the future, lockers do not
// barge: the fast path is skipped, spinning stops, and a locker that finds
// the word free yields the CPU a few times (maxYields) before taking it, so
// that the kernel's woken sleeper (futex queues are FIFO) gets it first.
// The starving waiter clears the deadline when it wins. A deadline is a
// time, not a flag, so a starving waiter that is SIGKILLed cannot leave the
// mutex in starvation mode for longer than the window.
//
// No strict FIFO: with more processes than cores, a queue lock hands the
// lock to a process that is not running and everyone waits for the
// scheduler.
const (
	starvationThreshold = int64(time.Millisecond)
	starvationWindow    = int64(time.Millisecond)
	maxYields           = 4

	// spinLimit bounds the busy-wait before sleeping: long enough to
	// cover a short critical section on another core, short enough not to
	// steal the owner's CPU when processes outnumber cores.
	spinLimit = 40

	// waitSlice bounds one futex sleep. The kernel wakes a sleeper when
	// the owner unlocks or dies; the slice covers the one case it cannot,
	// an owner killed between releasing the word and waking, and a word
	// owned by a process the kernel never knew (garbage): after each slice
	// the sleeper checks that the owner's process slot is still alive.
	waitSlice = 10 * time.Millisecond
)

// Mutex is a robust mutual-exclusion lock that lives in a shared-memory
// segment and is shared by every process that maps it. If its owner dies
// (SIGKILL at any instruction, a crash, an exit), the next process to lock
// it gets the lock together with ErrOwnerDead.
//
// A Mutex is owned by a process, not by a goroutine: like sync.Mutex, any
// goroutine of the owning process may unlock it; Unlock from another
// process returns ErrNotOwner. It is safe for concurrent use by many
// goroutines of many processes. NewMutex returns the same *Mutex for the
// same record of the same open segment. A Mutex must not be used after its
// segment is closed.
type Mutex struct {
	word   *atomic.Uint32
	starve *atomic.Int64
	tid    uint32 // this process's owner id for this segment
	node   unsafe.Pointer
	rec    []byte // the whole record
	a      *attachment
	off    int

	// local serialises this process's goroutines in the slow path, so a
	// process never parks more than one OS thread on the futex.
	local chan struct{}

	raceSync byte // the address the race detector synchronises on
}

// InitMutex is a no-op kept for symmetry with InitSemaphore: a record of
// zeros, as shm hands a new segment to its init function, is an unlocked
// Mutex.
func InitMutex(seg *shm.Segment, off int) error {
	b, err := checkPlacement(seg, off, MutexSize)
	if err != nil {
		return err
	}
	clear(b)
	return nil
}

// NewMutex attaches to the Mutex record at data offset off of seg (a
// multiple of RecordAlign, MutexSize bytes). The first use of a segment
// claims one of its MaxProcs process slots (shm.ErrNoSlot when all are
// taken by live processes). A record whose reserved bytes are not zero is
// refused with ErrCorrupt.
func NewMutex(seg *shm.Segment, off int) (*Mutex, error) {
	rec, err := checkPlacement(seg, off, MutexSize)
	if err != nil {
		return nil, err
	}
	a, err := attach(seg)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if m := a.mutexes[off]; m != nil {
		return m, nil
	}
	if a.mutexes == nil {
		return nil, fmt.Errorf("%s: %w", seg.Path(), shm.ErrClosed)
	}
	if !isZero(rec[4:offStarve]) || !isZero(rec[offStarve+8:endReserved]) {
		return nil, fmt.Errorf("%s: %w: reserved bytes of the mutex at offset %d are set; is a Mutex there?", seg.Path(), ErrCorrupt, off)
	}
	for i := range MaxProcs {
		if t := u32(rec, offTids+4*i).Load(); t > tidMask {
			return nil, fmt.Errorf("%s: %w: owner id %#x of slot %d in the mutex at offset %d", seg.Path(), ErrCorrupt, t, i, off)
		}
	}
	m := &Mutex{
		word:   u32(rec, offWord),
		starve: i64(rec, offStarve),
		tid:    a.list.tid,
		node:   ptr(rec, nodeOffset(a.slot)),
		rec:    rec,
		a:      a,
		off:    off,
		local:  make(chan struct{}, 1),
	}
	// Publish who owns slot a.slot before the node goes on the list: a
	// waiter maps a word's owner id to a slot, and a slot to liveness.
	u32(rec, offTids+4*a.slot).Store(a.list.tid)
	if err := a.list.link(m.node); err != nil {
		return nil, fmt.Errorf("%s: %w", seg.Path(), err)
	}
	a.mutexes[off] = m
	return m, nil
}

// Lock locks m, waiting as long as it takes. See LockContext.
func (m *Mutex) Lock() error { return m.LockContext(context.Background()) }

// LockContext locks m. On success it returns nil, or ErrOwnerDead if the
// previous owner died holding it: then the caller holds the lock and must
// repair the protected state and call Consistent before Unlock. It returns
// ErrNotRecoverable, without the lock, once the mutex was unlocked
// inconsistent. If ctx is done first it returns ctx.Err() and leaves the
// mutex as it was (it may have set the waiters bit, which costs an unlocker
// one wake-up).
func (m *Mutex) LockContext(ctx context.Context) error {
	// Fast path: unlocked and nobody starving. One load, one CAS.
	if m.starve.Load() == 0 && m.word.CompareAndSwap(0, m.tid) {
		raceAcquire(m)
		return nil
	}
	err := m.lockSlow(ctx)
	if err == nil || errors.Is(err, ErrOwnerDead) {
		raceAcquire(m)
	}
	return err
}

func (m *Mutex) lockSlow(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	select {
	case m.local <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-m.local }()

	var (
		stopWake func() bool // wakes sleepers when ctx is done
		slept    int64       // when this locker first slept; 0 before
		starving bool
		spins    int
		yields   int
	)
	defer func() {
		if stopWake != nil {
			stopWake()
		}
	}()
	for {
		v := m.word.Load()
		if v&tidMask == notRecoverable {
			return m.errorf(ErrNotRecoverable)
		}
		if v&tidMask == 0 {
			if !starving && yields < maxYields && m.starving() {
				yields++
				yield() // let the starving sleeper, once woken, take it
				continue
			}
			nv := m.tid | v&ownerDiedBit
			if slept != 0 {
				nv |= waitersBit // others may still sleep: keep Unlock waking
			}
			if !m.word.CompareAndSwap(v, nv) {
				continue
			}
			if starving {
				m.starve.Store(0)
			}
			if v&ownerDiedBit != 0 {
				return m.errorf(ErrOwnerDead)
			}
			return nil
		}
		if spins < spinLimit && !m.starving() {
			spins++
			spin(m.word)
			continue
		}
		if v&waitersBit == 0 {
			if !m.word.CompareAndSwap(v, v|waitersBit) {
				continue
			}
			v |= waitersBit
		}
		if stopWake == nil && ctx.Done() != nil {
			stopWake = context.AfterFunc(ctx, func() { wake(m.word, math.MaxInt32) })
		}
		now := monoNow()
		switch {
		case slept == 0:
			slept = now
		case now-slept > starvationThreshold:
			starving = true
			m.starve.Store(now + starvationWindow)
		}
		wait(m.word, v, waitSlice)
		if err := ctx.Err(); err != nil {
			return err
		}
		if monoNow()-now >= int64(waitSlice) && m.word.Load() == v && !m.ownerAlive(v&tidMask) {
			// The owner is gone and the kernel did not say so: mark
			// it as the kernel would have.
			m.word.CompareAndSwap(v, v&waitersBit|ownerDiedBit)
		}
	}
}

// spin waits a moment for the word to change without leaving the CPU.
func spin(w *atomic.Uint32) {
	v := w.Load()
	for i := 0; i < 30 && w.Load() == v; i++ {
	}
}

// starving reports whether a waiter's starvation deadline is in the future,
// clearing one that passed or that lies absurdly far ahead (garbage).
func (m *Mutex) starving() bool {
	d := m.starve.Load()
	if d == 0 {
		return false
	}
	now := monoNow()
	if now < d && d-now <= 2*starvationWindow {
		return true
	}
	m.starve.CompareAndSwap(d, 0)
	return false
}

// ownerAlive reports whether the owner id belongs to a live process: its id
// is recorded for a process slot of the segment and that slot's OFD lock is
// held. An id no slot records (garbage, or a process long gone) is dead.
func (m *Mutex) ownerAlive(owner uint32) bool {
	if owner == m.tid {
		return true
	}
	for i := range MaxProcs {
		if u32(m.rec, offTids+4*i).Load() != owner {
			continue
		}
		if alive, err := m.a.seg.SlotAlive(i); err != nil || alive {
			return true // when in doubt, keep waiting
		}
	}
	return false
}

// TryLock locks m if it is free and nobody is starving for it, without
// waiting. It returns (true, nil) or (true, ErrOwnerDead) when it took the
// lock, (false, nil) when it is held, and (false, ErrNotRecoverable). It
// does not probe whether a holder is alive; LockContext does.
func (m *Mutex) TryLock() (bool, error) {
	for {
		v := m.word.Load()
		switch {
		case v&tidMask == notRecoverable:
			return false, m.errorf(ErrNotRecoverable)
		case v&tidMask != 0 || m.starving():
			return false, nil
		}
		if m.word.CompareAndSwap(v, m.tid|v&(ownerDiedBit|waitersBit)) {
			raceAcquire(m)
			if v&ownerDiedBit != 0 {
				return true, m.errorf(ErrOwnerDead)
			}
			return true, nil
		}
	}
}

// Unlock unlocks m and wakes one sleeper if there is one. It returns
// ErrNotOwner if this process does not hold m. If m is inconsistent (this
// owner got ErrOwnerDead and did not call Consistent), Unlock releases it
// as not recoverable: every later lock in every process fails with
// ErrNotRecoverable, and Unlock says so.
func (m *Mutex) Unlock() error {
	raceRelease(m)
	// Fast path: held by us, nobody sleeping.
	if m.word.CompareAndSwap(m.tid, 0) {
		return nil
	}
	return m.unlockSlow()
}

func (m *Mutex) unlockSlow() error {
	for {
		v := m.word.Load()
		if v&tidMask != m.tid {
			return m.notOwner(v)
		}
		if v&ownerDiedBit != 0 {
			m.word.Store(notRecoverable)
			wake(m.word, math.MaxInt32)
			return m.errorf(ErrNotRecoverable)
		}
		if m.word.CompareAndSwap(v, 0) {
			if v&waitersBit != 0 {
				wake(m.word, 1)
			}
			return nil
		}
	}
}

// Consistent marks the state protected by m as repaired after a lock call
// returned ErrOwnerDead; m then works normally again. The caller must hold
// m (ErrNotOwner otherwise). On a consistent mutex it does nothing.
func (m *Mutex) Consistent() error {
	for {
		v := m.word.Load()
		if v&tidMask != m.tid {
			return m.notOwner(v)
		}
		if v&ownerDiedBit == 0 || m.word.CompareAndSwap(v, v&^ownerDiedBit) {
			return nil
		}
	}
}

func (m *Mutex) notOwner(v uint32) error {
	switch owner := v & tidMask; owner {
	case 0:
		return fmt.Errorf("%s: mutex at %d: %w: it is unlocked", m.a.seg.Path(), m.off, ErrNotOwner)
	case notRecoverable:
		return m.errorf(ErrNotRecoverable)
	default:
		return fmt.Errorf("%s: mutex at %d: %w: owner id %d, this process is %d", m.a.seg.Path(), m.off, ErrNotOwner, owner, m.tid)
	}
}

func (m *Mutex) errorf(err error) error {
	return fmt.Errorf("%s: mutex at %d: %w", m.a.seg.Path(), m.off, err)
}
