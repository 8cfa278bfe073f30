//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/shm"
	"golang.org/x/sys/unix"
)

// Biased locking.
//
// A lock that one process takes and releases over and over, with nobody
// else asking, pays two locked instructions per critical section (a CAS to
// lock, a CAS to unlock): about 9 ns each on the x86 this was measured on,
// most of an uncontended lock+unlock. A BiasedMutex lets the lock stay with
// its process between critical sections, so that the next one costs two
// plain stores and a load:
//
//	biased holder P (entry: P's slot's owner-id word)   revoker R
//	  entry = tid|inCSBit   (plain store)                 CAS bias: P -> P|R<<32
//	  if bias != P: entry = tid, go slow (plain load)     membarrier(GLOBAL_EXPEDITED)
//	  ...critical section...                              wait until entry&inCSBit == 0
//	  entry = tid           (plain store)                 CAS word: P -> R; bias = 0
//
// This is Dekker's mutual exclusion with the fence moved to one side: x86
// may let P's load of bias pass its store to entry, and membarrier(2)
// makes every CPU running a thread of a registered process execute a full
// barrier before it returns. So either P's store is visible to R after the
// membarrier (R waits for P to leave), or P's load comes after the barrier
// and sees R's revoke (P does not enter). The cost of a revocation (a
// membarrier, some microseconds) is paid only when the lock changes hands,
// which a contended Mutex rations to about once per starvationThreshold
// anyway.
//
// While biased, the futex word keeps P's owner id: to every other locker
// the lock is held, and if P dies the kernel's robust list marks the word
// OWNER_DIED (and clears the id) as for any owner. The in-critical-section
// bit then tells the next locker whether P died inside (ErrOwnerDead) or
// between critical sections (the lock is simply free). Each slot writes
// only its own entry, so a holder that finds itself revoked cannot clobber
// the bit of the process that holds the bias next.
//
// A BiasedMutex is for one goroutine at a time: two goroutines of one
// process could both pass biasEnter. It is the only user of its record in
// its process (NewMutex on the record fails with ErrInUse), so no other
// goroutine of the process can lock around it.

const (
	// inCSBit, in a slot's owner-id entry: that process holds the lock
	// through its bias and is inside its critical section.
	inCSBit = 1 << 31

	// entrySlice bounds one sleep of a revoker waiting for the biased
	// holder to leave its critical section; the holder wakes it, and the
	// slice covers a holder that died inside.
	entrySlice = time.Millisecond
)

// membarrier(2) commands.
const (
	membarrierGlobal                  = 1 << 0
	membarrierGlobalExpedited         = 1 << 1
	membarrierRegisterGlobalExpedited = 1 << 2
)

func membarrier(cmd int) error {
	if _, _, e := unix.Syscall(unix.SYS_MEMBARRIER, uintptr(cmd), 0, 0); e != 0 {
		return os.NewSyscallError("membarrier", e)
	}
	return nil
}

// registerBias registers this process for expedited global membarriers,
// once: a biased holder must be registered for a revoker's membarrier to
// reach its threads.
var registerBias = sync.OnceValue(func() error {
	if !biasSupported {
		return errors.ErrUnsupported
	}
	return membarrier(membarrierRegisterGlobalExpedited)
})

// fence makes every running thread of every registered process execute a
// full memory barrier. If the expedited command is refused (a seccomp
// filter that knows only the old one), the plain global command does the
// same for every process, at the cost of an RCU grace period.
func fence() error {
	if err := membarrier(membarrierGlobalExpedited); err == nil {
		return nil
	}
	return membarrier(membarrierGlobal)
}

// BiasedMutex is a Mutex for one goroutine at a time that stays biased to
// its process between critical sections while no other process wants it:
// then Lock and Unlock are plain stores, without a locked instruction. A
// locker in another process revokes the bias (a membarrier(2) call) and
// gets the lock as from an Unlock. The robust semantics are the Mutex's:
// a holder killed inside a critical section leaves ErrOwnerDead, one
// killed between critical sections leaves a free lock.
//
// A BiasedMutex must not be used by two goroutines at once (the race
// detector reports it), and it is the only user of its record in its
// process. On architectures other than amd64 it never biases and is a
// Mutex. Bias needs membarrier's expedited global commands (Linux 4.16);
// without them it is a Mutex too.
type BiasedMutex struct {
	m       *Mutex
	entry   *uint32 // this process's owner-id entry in the record
	in, out uint32  // the entry's value inside and outside a critical section
	bias    *uint64 // the record's bias word
	want    uint64  // the bias word when biased to us, nobody revoking
	canBias bool

	biased bool      // the bias word named us when we last looked
	state  biasState // how this handle holds the lock

	// Hysteresis: a bias revoked soon after it was made was not worth
	// its revocation (processes take turns with the lock), so the next
	// holdoff locks go through the word before biasing again, and each
	// such short bias doubles the holdoff.
	biasedAt int64 // monoNow when the bias was made
	holdoff  int   // locks through the word before biasing again
	penalty  int   // the holdoff after the next short bias
}

const (
	// shortBias is how long a bias must last to have paid for its
	// revocation (a membarrier and a wake-up: microseconds).
	shortBias = int64(100 * time.Microsecond)

	// maxHoldoff caps the holdoff after short biases.
	maxHoldoff = 1 << 12
)

type biasState uint8

const (
	free    biasState = iota
	fast              // locked through the bias: the word was already ours
	held              // locked through the futex word, as a Mutex
	wakeDue           // unlocked by UnlockFast, which left Unlock a revoker to wake
)

// NewBiasedMutex attaches to the Mutex record at data offset off of seg
// as NewMutex does, for biased use by one goroutine at a time. The record
// must have no other user in this process: NewMutex and NewBiasedMutex on
// it fail with ErrInUse afterwards, as NewBiasedMutex does on a record
// already attached by NewMutex.
func NewBiasedMutex(seg *shm.Segment, off int) (*BiasedMutex, error) {
	m, err := newMutex(seg, off, true)
	if err != nil {
		return nil, err
	}
	canBias := registerBias() == nil
	m.a.mu.Lock()
	defer m.a.mu.Unlock()
	h := m.biased // newMutex reserved it
	*h = BiasedMutex{
		m:       m,
		entry:   (*uint32)(unsafe.Pointer(m.entry(m.a.slot))),
		in:      m.tid | inCSBit,
		out:     m.tid,
		bias:    (*uint64)(ptr(m.rec, offBias)),
		want:    uint64(m.tid),
		canBias: canBias,
	}
	h.biased = canBias && m.bias.Load() == h.want // a bias left by an earlier handle of ours
	h.biasedAt = monoNow()
	return h, nil
}

// Lock locks h, waiting as long as it takes. See LockContext.
func (h *BiasedMutex) Lock() error { return h.LockContext(context.Background()) }

// LockContext locks h as Mutex.LockContext does. Biased to this process,
// it costs two plain stores and a load.
func (h *BiasedMutex) LockContext(ctx context.Context) error {
	if h.LockFast() {
		return nil
	}
	return h.lockSlow(ctx)
}

// LockFast is LockContext's fast path, small enough for the compiler to
// inline into a hot loop in another package: if the lock is biased to
// this process it locks h (two plain stores and a load) and returns true.
// When it returns false it did nothing: call LockContext.
func (h *BiasedMutex) LockFast() bool {
	if h.biased && h.state == free && biasEnter(h.entry, h.in, h.bias, h.want) {
		h.state = fast
		raceAcquire(h.m)
		return true
	}
	return false
}

// UnlockFast is Unlock's fast path, small enough to inline: if h was
// locked through the bias, it unlocks it and returns true. When it returns
// false, call Unlock: h was locked otherwise (UnlockFast did nothing), or
// a revoker waits to be woken (Unlock wakes it).
func (h *BiasedMutex) UnlockFast() bool {
	if h.state != fast {
		return false
	}
	raceRelease(h.m)
	if biasExit(h.entry, h.out, h.bias, h.want) {
		h.state = wakeDue
		return false
	}
	h.state = free
	return true
}

func (h *BiasedMutex) lockSlow(ctx context.Context) error {
	h.finishUnlock() // in case UnlockFast's caller did not call Unlock
	if h.state != free {
		return h.m.wrap(fmt.Errorf("%w: locked twice through one BiasedMutex", ErrInUse))
	}
	for h.biased {
		if h.LockFast() {
			return nil
		}
		again, err := h.revoked(ctx)
		if err != nil {
			return err
		}
		if h.biased = again; !again {
			h.lostBias()
		}
	}
	err := h.m.LockContext(ctx)
	if err == nil || err == ErrOwnerDead { // bare: see Mutex.errorf
		h.state = held
	}
	return err
}

// TryLock locks h if it is free (or biased to this process), without
// waiting. Its results are Mutex.TryLock's.
func (h *BiasedMutex) TryLock() (bool, error) {
	h.finishUnlock()
	if h.state != free {
		return false, nil
	}
	if h.biased {
		if h.LockFast() {
			return true, nil
		}
		if h.m.bias.Load() != h.want {
			h.biased = false
			h.lostBias()
		}
		if uint32(h.m.bias.Load()) == h.m.tid {
			return false, nil // being revoked: the word is ours until it moves
		}
	}
	ok, err := h.m.TryLock()
	if ok {
		h.state = held
	}
	return ok, err
}

// revoked waits, after biasEnter found the bias gone, until the revocation
// is done (false: lock through the word like anyone) or undone by a
// revoker that gave up or died (true: biased again).
func (h *BiasedMutex) revoked(ctx context.Context) (bool, error) {
	m := h.m
	start := monoNow()
	for backoff := time.Microsecond; ; backoff = min(2*backoff, maxBackoff) {
		b := m.bias.Load()
		switch {
		case b == h.want:
			return true, nil
		case uint32(b) != m.tid:
			return false, nil
		}
		// Someone revokes our bias: it waits for no one but us (we are
		// out of the critical section), so this is microseconds
		// unless it died.
		if r := uint32(b >> 32); monoNow()-start > int64(entrySlice) && (r == m.tid || !m.ownerAlive(r)) {
			if m.word.Load()&tidMask == m.tid {
				m.bias.CompareAndSwap(b, h.want) // it died before taking the word
			} else {
				m.bias.CompareAndSwap(b, 0) // after: the word is its, OWNER_DIED
			}
			continue
		}
		if err := sleepContext(ctx, backoff); err != nil {
			return false, err
		}
	}
}

// Unlock unlocks h. A lock taken through the word is kept biased to this
// process when nobody waits for it; one taken through the bias stays so.
// Errors are Mutex.Unlock's.
func (h *BiasedMutex) Unlock() error {
	if h.UnlockFast() {
		return nil
	}
	return h.unlockSlow()
}

// finishUnlock wakes the revoker UnlockFast saw waiting, if it did.
func (h *BiasedMutex) finishUnlock() {
	if h.state == wakeDue {
		h.state = free
		wake((*atomic.Uint32)(unsafe.Pointer(h.entry)), math.MaxInt32)
	}
}

func (h *BiasedMutex) unlockSlow() error {
	m := h.m
	if h.state == wakeDue {
		h.finishUnlock()
		return nil
	}
	if h.state == held {
		h.state = free
		if h.holdoff > 0 {
			h.holdoff--
			return m.Unlock()
		}
		if h.canBias && m.word.Load() == m.tid && m.handoff.Load() == 0 && m.bias.CompareAndSwap(0, h.want) {
			raceRelease(m)
			h.biased, h.biasedAt = true, monoNow()
			if m.word.Load() != m.tid {
				// A waiter set the waiters bit and may have gone to
				// sleep on the word before it saw the bias: wake it
				// to see it.
				wake(m.word, math.MaxInt32)
			}
			return nil
		}
		return m.Unlock()
	}
	return h.notLocked()
}

func (h *BiasedMutex) notLocked() error {
	return h.m.wrap(fmt.Errorf("%w: not locked through this BiasedMutex", ErrNotOwner))
}

// lostBias sets the holdoff after our bias was revoked.
func (h *BiasedMutex) lostBias() {
	if monoNow()-h.biasedAt < shortBias {
		h.penalty = min(max(2*h.penalty, 1), maxHoldoff)
		h.holdoff = h.penalty
	} else {
		h.penalty, h.holdoff = 0, 0
	}
}

// Consistent marks the state protected by h as repaired after a lock call
// returned ErrOwnerDead, as Mutex.Consistent.
func (h *BiasedMutex) Consistent() error {
	switch h.state {
	case fast:
		return nil // taken through the bias: nobody died
	case held:
		return h.m.Consistent()
	}
	return h.notLocked()
}

// Slot is the process slot this process holds in h's segment.
func (h *BiasedMutex) Slot() int { return h.m.Slot() }

// Segment is the segment h lives in.
func (h *BiasedMutex) Segment() *shm.Segment { return h.m.a.seg }

// Biased reports whether the lock was biased to this process when h last
// looked (at its last lock or unlock).
func (h *BiasedMutex) Biased() bool { return h.biased }

// release gives up a bias before the segment is closed: the bias becomes
// an ordinary hold, which Unlock releases. A revocation under way is left
// to finish: the revoker finds our slot dead and the lock free.
func (h *BiasedMutex) release() {
	h.finishUnlock()
	if h.biased && h.state == free && h.m.bias.CompareAndSwap(h.want, 0) {
		h.m.Unlock()
	}
	h.biased = false
}

// The other side: lockers that find the lock biased.

// revokeHook, when set (tests only), is called at each step of a
// revocation so a test can kill the revoker there.
var revokeHook func(step string)

// biasedWait is lockSlow's step when the bias word was b: it revokes the
// bias when the holder is idle, dead or has kept the lock past the
// starvation threshold, and otherwise backs off as from any hot lock. It
// reports whether it took the lock.
func (m *Mutex) biasedWait(ctx context.Context, b uint64, starving bool, backoff *time.Duration) (bool, error) {
	// The word is loaded after the bias word: a holder biases only
	// while it holds the word, so a bias older than the word could name
	// a holder that has since lost it and taken it back.
	v := m.word.Load()
	owner, holder, revoker := v&tidMask, uint32(b), uint32(b>>32)
	switch {
	case owner == 0:
		return false, nil // free, or its holder died: lockSlow takes it
	case holder != owner && revoker == 0:
		// Garbage, or a view spanning a hand-over: clear it only if
		// what it names cannot be a live holder.
		if !m.ownerAlive(holder) {
			m.bias.CompareAndSwap(b, 0)
			return false, nil
		}
	case holder != owner:
		// A revocation moved the word and its revoker clears the
		// bias next, unless it died.
		if revoker == m.tid || !m.ownerAlive(revoker) {
			m.bias.CompareAndSwap(b, 0)
			return false, nil
		}
	case revoker != 0:
		// Another revocation is under way, or a dead revoker's.
		if revoker == m.tid || !m.ownerAlive(revoker) {
			m.bias.CompareAndSwap(b, uint64(holder))
			return false, nil
		}
	default:
		if starving || v&ownerDiedBit != 0 || !m.biasHot(holder) {
			return m.revoke(ctx, v, b, true)
		}
	}
	if err := sleepContext(ctx, *backoff); err != nil {
		return false, err
	}
	*backoff = min(2**backoff, maxBackoff)
	return false, nil
}

// biasHot reports whether the biased holder is busy: its entry's
// in-critical-section bit changes while we watch. An idle holder (the bit
// stays clear) or one in a long critical section (it stays set) is
// revoked at once.
func (m *Mutex) biasHot(holder uint32) bool {
	s := m.slotOf(holder)
	if s < 0 {
		return false
	}
	e := m.entry(s)
	first := e.Load()
	for range watchLoads {
		if e.Load() != first {
			return true
		}
	}
	return false
}

// revoke takes the lock, held as v by the process the bias word b names,
// from that process: see the top of this file. With block false (TryLock)
// it gives up if the holder is inside its critical section. It reports
// whether it took the lock; the error is ErrOwnerDead when the holder died
// inside, ctx's when ctx ended while waiting for the holder to leave.
func (m *Mutex) revoke(ctx context.Context, v uint32, b uint64, block bool) (bool, error) {
	holder := uint32(b)
	nb := b | uint64(m.tid)<<32
	if !m.bias.CompareAndSwap(b, nb) {
		return false, nil
	}
	hook("claimed")
	slot := m.slotOf(holder)
	dead := v&ownerDiedBit != 0 || !m.ownerAlive(holder)
	if !dead {
		if err := fence(); err != nil {
			m.bias.CompareAndSwap(nb, b)
			return false, m.wrap(fmt.Errorf("revoking the bias of owner %d: %w", holder, err))
		}
	}
	hook("fenced")
	var e uint32
	for slot >= 0 {
		ep := m.entry(slot)
		if e = ep.Load(); e&inCSBit == 0 || dead {
			break
		}
		if err := ctx.Err(); err != nil || !block {
			m.bias.CompareAndSwap(nb, b) // the holder keeps its bias
			return false, err
		}
		wait(ep, e, entrySlice)
		dead = m.word.Load()&ownerDiedBit != 0 || !m.ownerAlive(holder)
	}
	// The holder is out of its critical section and sees nb if it tries
	// again, or it is dead. Take the word from it.
	diedInside := dead && (slot < 0 || e&inCSBit != 0)
	for {
		v = m.word.Load()
		switch owner := v & tidMask; {
		case owner == 0 && v&ownerDiedBit != 0 && !dead:
			// The holder died since we looked: the kernel marked
			// the word and cleared its id. It was not inside.
			dead = true
			if slot >= 0 {
				e = m.entry(slot).Load()
			}
			diedInside = slot < 0 || e&inCSBit != 0
			continue
		case owner == 0 && v&ownerDiedBit != 0:
		case owner != holder:
			m.bias.CompareAndSwap(nb, 0) // garbage: the bias named a non-owner
			return false, nil
		}
		nv := m.tid | v&waitersBit
		if diedInside {
			nv |= ownerDiedBit
		}
		if m.word.CompareAndSwap(v, nv) {
			break
		}
	}
	hook("taken")
	m.clearBias(nb, slot, dead)
	if diedInside {
		return true, m.errorf(ErrOwnerDead)
	}
	return true, nil
}

func hook(step string) {
	if revokeHook != nil {
		revokeHook(step)
	}
}

// slotOf is the process slot whose owner-id entry holds id, preferring a
// live one if (after a thread id was reused) two do; -1 if none.
func (m *Mutex) slotOf(id uint32) int {
	found := -1
	for i := range MaxProcs {
		if m.entry(i).Load()&tidMask != id {
			continue
		}
		if found < 0 {
			found = i
		} else if alive, err := m.a.seg.SlotAlive(found); err == nil && !alive {
			found = i
		}
	}
	return found
}

// overDead is for a locker about to CAS nv over v. If v is OWNER_DIED
// with no owner (the kernel marked it and cleared the id) and the bias word
// names a holder, that holder is who died: nobody else can have held the
// word. If it died between critical sections there is nothing to repair,
// and OWNER_DIED comes off nv. It returns nv, and the bias word and the
// holder's slot for clearBias once the CAS has succeeded (bias 0: none).
func (m *Mutex) overDead(v, nv uint32) (uint32, uint64, int) {
	if v&ownerDiedBit == 0 {
		return nv, 0, -1
	}
	b := m.bias.Load()
	if uint32(b) == 0 {
		return nv, 0, -1
	}
	s := m.slotOf(uint32(b))
	if s >= 0 && m.entry(s).Load()&inCSBit == 0 {
		nv &^= ownerDiedBit
	}
	return nv, b, s
}

// clearBias ends the bias b after its holder, in slot (-1: unknown), lost
// the word. If the holder is dead it clears the in-critical-section bit it
// may have left in its entry (unless a new process has claimed the slot
// since).
func (m *Mutex) clearBias(b uint64, slot int, dead bool) {
	holder := uint32(b)
	if dead && slot >= 0 {
		e := m.entry(slot)
		if v := e.Load(); v == holder|inCSBit && holder != m.tid {
			e.CompareAndSwap(v, holder)
		}
	}
	m.bias.CompareAndSwap(b, 0)
}

// biasEnter and biasExit are the holder's side of the protocol at the top
// of this file, in plain Go on purpose. A locked instruction is what
// biasing saves, and on amd64 atomic.Uint32.Store is one (an XCHG) while
// atomic.LoadUint64 is a plain MOV. So the entry is written with plain
// stores and the bias word read with atomic loads, and the order of the
// two is kept by:
//
//   - the compiler: gc threads every memory operation through one chain
//     in program order, and an atomic load is a link of it that it never
//     moves a load or store across, nor drops a store before;
//   - the CPU: x86 keeps stores in order with stores and loads with loads,
//     so the critical section's loads come after the bias load and its
//     stores before the exit store. The one reordering x86 does, a load
//     passing an earlier store, is what the revoker's membarrier covers.
//
// entry points into the record, in a shared mapping: it is 4-aligned and
// never moves, and only this process's slot writes it.

// biasEnter marks this process inside its critical section and reports
// whether the lock is still biased to it with no revoker; if not, it
// takes the mark back.
func biasEnter(entry *uint32, in uint32, bias *uint64, want uint64) bool {
	*entry = in
	if atomic.LoadUint64(bias) == want {
		return true
	}
	*entry = in &^ inCSBit
	return false
}

// biasExit marks this process out of its critical section and reports
// whether a revoker may be waiting for that.
func biasExit(entry *uint32, out uint32, bias *uint64, want uint64) bool {
	*entry = out
	return atomic.LoadUint64(bias) != want
}
