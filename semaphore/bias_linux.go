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
//	  entry = tid|inCSBit   (plain store)                 CAS bias: P -> P+R
//	  if bias != want: entry = tid, go slow (plain load)  membarrier(GLOBAL_EXPEDITED)
//	  ...critical section...                              wait until entry&inCSBit == 0
//	  entry = tid           (plain store)                 CAS bias: P+R -> P+R won
//	                                                      CAS word: P -> R; bias: none
//
// This is Dekker's mutual exclusion with the fence moved to one side: x86
// may let P's load of bias pass its store to entry, and membarrier(2)
// makes every CPU running a thread of a registered process execute a full
// barrier before it returns. So either P's store is visible to R after the
// membarrier (R waits for P to leave), or P's load comes after the barrier
// and sees R's revoke (P does not enter).
//
// A membarrier costs some microseconds (11 µs on the 2-core VM this was
// measured on: an interrupt to every CPU), paid at every hand-over of a
// contended lock. So the revocation is cooperative first: P, whenever it
// finds R's claim where it would have entered (or on its way out, when it
// looks at the bias word anyway), is outside its critical section and will
// not enter through the bias again, and says so with a CAS that sets the
// ack bit. R, having claimed, watches the bias word for a few
// microseconds; an ack is P's own word that it is out, made after it saw
// the claim, so R needs no fence. A P that does not answer (idle, or not
// running) is revoked the hard way, with the membarrier.
//
// A P that answered waits for R to take the word; so does everyone else.
// An R that stops between its claim and its take (its CPU taken away, or
// the machine stalling its vCPU: milliseconds) would hold up the lock
// for as long. So R first wins the bias word: a CAS from its claim, acked
// or not, to the same with the taking bit. Until then, P may take its
// bias back: once its ack has stood for reclaimAfter (20 µs; a running R
// wins within a microsecond of it), P CASes the ack to P's bias with no
// revoker (restored), R's win fails, and R claims again, which a running
// P answers at once. Once R has won, P cannot: R moves the word under a
// seizure whose check is that its win still stands. P takes its bias
// back only when it locks: an idle P, or one that closed its
// BiasedMutex, leaves the claim standing, so a waiter that finds it
// standing, not won, for claimStall (1 ms) with P outside gives it up
// for P (claimStalled) and revokes in turn. A stopped R now holds up the
// lock, for as long as it is stopped, only if it stops between its win
// and its take, a few CASes, where before it did from its claim on.
//
// Revocations are rationed as hand-offs are: a waiter lets a busy holder
// have a turn (SetTurn) before it claims; an idle holder (its entry does
// not change while the waiter watches it, a couple of microseconds: see
// biasHot) is revoked at once.
//
// The bias word (64 bits):
//
//	bits 0-7   slot+1 of the holder (0: not biased)
//	bits 8-15  slot+1 of a revoker (0: none)
//	bits 16-17 verdict on a holder found dead: 1 it died outside a
//	           critical section, 2 inside (0: none yet)
//	bit  18    ack: the holder has seen the revoker's claim and is out
//	bit  19    taking: the revoker has won the word (below)
//	bits 20-63 epoch: every change of the word adds one
//
// The epoch makes every value of the word unique, so a CAS computed from a
// value read earlier fails if anything happened since: no decision taken
// on a stale view of the bias ever lands. Slots in the word name the
// process in that slot's entry (its generation is the entry's), and a new
// process in that slot does not replace the entry while the word names it
// (see join): what a slot in the word says stays true until the word
// changes.
//
// While biased, the futex word keeps P's owner id: to every other locker
// the lock is held, and if P dies the kernel's robust list marks the word
// OWNER_DIED (and clears the id) as for any owner. Whoever then takes the
// word decides, from P's entry's in-critical-section bit, whether P died
// inside (ErrOwnerDead) or between critical sections (the lock is simply
// free), and clears the bias (Mutex.settle). A process that must judge P
// without taking the word (a new process in P's slot, which must replace
// P's entry: join) stores that judgement in the bias word as its verdict
// instead. Each slot writes only its own entry, so a holder that finds
// itself revoked cannot clobber the bit of the process that holds the bias
// next.
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

	verdictClean = 1 // the holder died outside a critical section
	verdictDirty = 2 // inside

	biasAck        = 1 << 18
	biasTaking     = 1 << 19
	biasEpochShift = 20

	// noBias is a bias word nobody makes: holder and revoker slots 254,
	// beyond MaxProcs. A BiasedMutex's want is noBias until it first
	// biases the lock, so that EnterFast, which compares the word with
	// want and checks nothing else, cannot match a word never biased (0)
	// or one that names another process.
	noBias = 0xffff

	// ackWait is how long a revoker waits for the holder's ack before it
	// falls back on the membarrier: a running holder looks at the bias
	// word every few nanoseconds.
	ackWait = 5 * time.Microsecond

	// ackSpin is how long a revoker watches for the ack without
	// yielding its CPU: a running holder answers in well under a
	// microsecond, and a sched_yield costs about as much.
	ackSpin = 2 * time.Microsecond
)

func biasVerdict(b uint64) uint64 { return b >> 16 & 3 }

// nextBias is the bias word after b with holder, revoker (slots, -1 for
// none) and verdict, and the next epoch.
func nextBias(b uint64, holder, revoker int, verdict uint64) uint64 {
	return (b>>biasEpochShift+1)<<biasEpochShift | verdict<<16 | uint64(revoker+1)<<8 | uint64(holder+1)
}

// restored is b without its revoker: the revocation undone.
func restored(b uint64) uint64 { return nextBias(b, biasHolder(b), -1, biasVerdict(b)) }

// acked is b, a revoker's claim, with the holder's ack.
func acked(b uint64) uint64 {
	return nextBias(b, biasHolder(b), biasRevoker(b), biasVerdict(b)) | biasAck
}

// taking is b, a revoker's claim, acked or not, won by the revoker: the
// holder can no longer take its bias back, and the revoker moves the word.
func taking(b uint64) uint64 {
	return nextBias(b, biasHolder(b), biasRevoker(b), biasVerdict(b)) | biasTaking
}

// verdictOf reads whether the biased holder in slot h was inside a
// critical section. Callers read it while the bias word names h.
func (m *mutex) verdictOf(h int) uint64 {
	if m.entry(h).Load()&inCSBit != 0 {
		return verdictDirty
	}
	return verdictClean
}

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
// process. The segment's last Close in this process uses it too (it gives
// up the bias): that Close must not run while another goroutine is in a
// call on it. On architectures other than amd64 it never biases and is a
// Mutex. Bias needs membarrier's expedited global commands (Linux 4.16);
// without them it is a Mutex too.
type BiasedMutex struct {
	m       *mutex
	entry   *uint32 // this process's owner-id entry in the record
	in, out uint32  // the entry's value inside and outside a critical section
	bias    *uint64 // the record's bias word
	want    uint64  // the bias word as we made it: biased to us, nobody revoking
	canBias bool
	closed  atomic.Bool

	// After release, entry and bias point at these (see EnterFast).
	closedEntry uint32
	closedBias  uint64

	ackedTo int // the slot of the revoker we last answered (ack)

	// The bias word as our last ack made it, and when: if it still
	// stands reclaimAfter later, its revoker was stopped before it won
	// the word, and we take the bias back (revoked).
	ackVal uint64
	ackAt  int64

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
	// A bias that lasted less than a quarter of a turn was not worth its
	// revocation (about a microsecond when the holder answers, a
	// membarrier's 11 µs when it does not): its waiters did not let it
	// have its turn, or were not waiting for one (an idle holder's lock
	// taken by TryLock), and the processes are trading the lock faster
	// than a bias pays. See lostBias.
	shortBiasTurns = 4

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
func NewBiasedMutex(ctx context.Context, seg *shm.Segment, off int) (*BiasedMutex, error) {
	m, err := newMutex(ctx, seg, off, true)
	if err != nil {
		return nil, err
	}
	canBias := registerBias() == nil
	m.a.mu.Lock()
	defer m.a.mu.Unlock()
	h := m.biased // newMutex reserved it
	*h = BiasedMutex{
		m:       m,
		entry:   (*uint32)(unsafe.Pointer(m.entry(m.a.slot.Index))),
		in:      m.tid | inCSBit,
		out:     m.tid,
		bias:    (*uint64)(ptr(m.rec, offBias)),
		want:    noBias,
		canBias: canBias,
		ackedTo: -1,
	}
	// No bias is ours yet: one our slot's earlier process held was judged
	// in join.
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
	if h.biased && h.state == free && h.EnterFast() {
		h.state = fast
		return true
	}
	return false
}

// UnlockFast is Unlock's fast path, small enough to inline: if h was
// locked through the bias, it unlocks it and returns true. When it returns
// false, call Unlock: h was locked otherwise (UnlockFast did nothing), or
// a revoker waits to be woken (Unlock wakes it).
func (h *BiasedMutex) UnlockFast() bool {
	if h.state != fast || !h.ExitFast() { // ExitFast leaves wakeDue for Unlock
		return false
	}
	h.state = free
	return true
}

// EnterFast and ExitFast are LockFast and UnlockFast for a critical
// section that begins and ends in one function, with nothing between them
// that can fail, panic or call h: they keep no state in h, which saves
// a few instructions that were a sixth of a Counter's locked buy (one
// buyer sold 259M and 308M tickets/s before and after, in
// docs/runs/bench-session.txt). EnterFast locks h and returns true if the lock
// is biased to this process with nobody revoking it; otherwise it does
// nothing (call LockContext). Between a true EnterFast and its ExitFast,
// h must not be used otherwise: its other methods do not know it is
// locked. ExitFast unlocks and returns true, or returns false when a
// revoker waits: then call Unlock, which wakes it.
//
// Neither checks that the bias is ours, only the bias word: want is the
// word as we made it, epoch and all, so it matches nothing but our own
// bias, and until we first bias it is noBias, which no bias word holds.
// After Close, entry and bias point at private words of h's (release):
// a segment's memory is only retired at its close (shm reads zeros
// there), but unmapped if retiring fails, and EnterFast must return false
// rather than fault.
func (h *BiasedMutex) EnterFast() bool {
	if biasEnter(h.entry, h.in, h.bias, h.want) {
		raceAcquire(h.m)
		return true
	}
	return false
}

// ExitFast: see EnterFast.
func (h *BiasedMutex) ExitFast() bool {
	raceRelease(h.m)
	if biasExit(h.entry, h.out, h.bias, h.want) {
		h.state = wakeDue
		return false
	}
	return true
}

// usable is Mutex.usable for h: checked on every path but the fast ones,
// which cannot be taken once h is closed or its segment gone (both give
// up the bias first).
func (h *BiasedMutex) usable() error {
	switch {
	case h.m == nil:
		return errZero("BiasedMutex", "NewBiasedMutex")
	case h.closed.Load() || h.m.a.gone.Load():
		return h.m.wrap(shm.ErrClosed)
	}
	return nil
}

func (h *BiasedMutex) lockSlow(ctx context.Context) error {
	if err := h.usable(); err != nil {
		return err
	}
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
	if err := h.usable(); err != nil {
		return false, err
	}
	h.finishUnlock()
	if h.state != free {
		return false, nil
	}
	if h.biased {
		if h.LockFast() {
			return true, nil
		}
		if b := h.m.bias.Load(); biasHolder(b) == h.m.a.slot.Index && biasVerdict(b) == 0 {
			if biasRevoker(b) < 0 {
				// Restored with a new epoch by a revoker that gave up:
				// ours again.
				h.want = b
				if h.LockFast() {
					return true, nil
				}
				return false, nil
			}
			if h.stalled(b, monoNow()) && h.takeBack(b) {
				// A revoker stopped before its win: the lock is
				// free, ours through the bias again (see revoked).
				return h.LockFast(), nil
			}
			h.ack()
			return false, nil // being revoked: the word is ours until it moves
		}
		h.biased = false
		h.lostBias()
	}
	ok, err := h.m.TryLock()
	if ok {
		h.state = held
	}
	return ok, err
}

// revoked waits, after biasEnter found the bias gone, until the revocation
// is done (false: lock through the word like anyone) or undone by a
// revoker that gave up or died (true: biased again). It answers the
// revoker's claim first (ack): biasEnter backed out, so we are outside.
//
// The answer comes before any question about the revoker: a live one
// (nearly always) is spinning for it, and the liveness check is two
// system calls that the hand-over would wait for. Whether the revoker
// lives is asked revokerGrace after this call began, and every
// revokerGrace after that, until the revocation ends: the claim of a dead
// revoker, answered or not, is undone at the first look that finds it
// dead (about 50 µs; about 100 µs if it died with the word seized, whose
// seizure the first undo only clears). With 2 buyers at a 20 µs turn,
// this and fresh took the gaps of a waiting buyer from 30.7-32.8 µs to
// 26.6-28.7 µs (part 1 of docs/runs/latency-handover.txt).
func (h *BiasedMutex) revoked(ctx context.Context) (bool, error) {
	m := h.m
	start := monoNow()
	asked := start // when the revoker's liveness was last asked; not yet
	for {
		b := m.bias.Load()
		now := monoNow()
		switch {
		case biasHolder(b) != m.a.slot.Index || biasVerdict(b) != 0:
			// Taken by the revoker we answered: here, or on our way
			// out (finishUnlock) or in TryLock, and then taken before
			// we got here, as a revoker that no longer asks the kernel
			// whether we live is. Owed its turn (fresh): before ack
			// recorded whom it answered, a revoker answered on our way
			// out went unnamed, and we revoked it a few microseconds in.
			m.lostTo, m.lostAt = h.ackedTo, now
			h.ackedTo = -1
			return false, nil
		case biasRevoker(b) < 0:
			h.want = b // a revoker gave up and restored it
			h.ackedTo = -1
			return true, nil
		case h.stalled(b, now):
			// Our answer stands, and the revoker has not won the word
			// (taking): a running one does in a moment, so this one
			// was stopped, or its CPU taken away, between its claim
			// and its win. Take the bias back rather than wait for it
			// to run again, which holds up the lock for as long: its
			// win fails, and it claims again, which a running holder
			// answers at once.
			if h.takeBack(b) {
				return true, nil
			}
			continue
		case now-asked >= int64(revokerGrace):
			asked = now
			if !m.live(biasRevoker(b)) {
				m.undoRevoke(b)
				continue
			}
		}
		h.ack()
		// The revoker takes the word in a moment, or gives up. One that
		// does neither was stopped (or its CPU taken away): nap, longer
		// as it lasts, as biasedWait does, so that a revoker stopped for
		// good does not cost us a third of a CPU in 100 µs naps.
		var err error
		switch waited := now - start; {
		case waited < int64(time.Millisecond):
			err = ctx.Err()
			yield()
		case waited < int64(10*time.Millisecond):
			err = nap(ctx, 100*time.Microsecond)
		default:
			err = nap(ctx, time.Millisecond)
		}
		if err != nil {
			return false, err
		}
	}
}

// stalled reports whether b, the bias word at now, is our last ack and
// has stood for reclaimAfter: its revoker did not win the word in time.
func (h *BiasedMutex) stalled(b uint64, now int64) bool {
	return b == h.ackVal && now-h.ackAt >= int64(reclaimAfter)
}

// takeBack takes our bias back from a stalled revoker (b: our ack, see
// stalled), and reports whether it did: the revoker's win fails.
func (h *BiasedMutex) takeBack(b uint64) bool {
	nb := restored(b)
	if !h.m.bias.CompareAndSwap(b, nb) {
		return false
	}
	h.want, h.ackedTo = nb, -1
	reclaims.Add(1)
	hook("reclaimed")
	return true
}

// revokerGrace is how long a revoked holder waits for the revoker to take
// the word before it asks whether the revoker lives: a running revoker
// takes it within a few microseconds of the ack.
const revokerGrace = 50 * time.Microsecond

// reclaimAfter is how long a holder's ack stands, its revoker not having
// won the word, before the holder takes its bias back: a running revoker
// wins within a microsecond of the ack.
const reclaimAfter = 20 * time.Microsecond

// reclaims counts the biases taken back from a revoker that did not win
// the word in time (tests).
var reclaims atomic.Int64

// ack answers a revoker's claim in the bias word: called where this
// holder found the claim instead of entering, or on its way out, it is
// outside its critical section and will not enter through this bias
// again. See the top of this file. It also wakes a revoker that went to
// sleep on our entry (after its membarrier) while biasEnter had the
// in-critical-section bit set for a moment: biasEnter takes the bit back
// with a plain store, which wakes no one.
func (h *BiasedMutex) ack() {
	m := h.m
	b := m.bias.Load()
	if biasHolder(b) == m.a.slot.Index && biasRevoker(b) >= 0 && biasVerdict(b) == 0 && b&(biasAck|biasTaking) == 0 {
		if a := acked(b); m.bias.CompareAndSwap(b, a) {
			h.ackedTo, h.ackVal, h.ackAt = biasRevoker(b), a, monoNow()
		}
		wake((*atomic.Uint32)(unsafe.Pointer(h.entry)), math.MaxInt32)
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

// finishUnlock answers the revoker UnlockFast saw, if it did, and wakes
// it in case it sleeps waiting for us to leave.
func (h *BiasedMutex) finishUnlock() {
	if h.state == wakeDue {
		h.state = free
		h.ack()
	}
}

func (h *BiasedMutex) unlockSlow() error {
	if err := h.usable(); err != nil {
		return err
	}
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
		if h.canBias && m.word.Load() == m.tid && m.handoff.Load() == 0 {
			b := m.bias.Load()
			nb := nextBias(b, m.a.slot.Index, -1, 0)
			if biasHolder(b) < 0 && m.bias.CompareAndSwap(b, nb) {
				raceRelease(m)
				h.want, h.biased, h.biasedAt = nb, true, monoNow()
				h.ackedTo = -1 // answers to claims on this bias only
				if v := m.word.Load(); v != m.tid {
					// A waiter set the waiters bit and may have gone
					// to sleep on the word before it saw the bias:
					// wake it to see it (Dekker: see lockSlow). A
					// wake alone misses a waiter about to sleep,
					// between its look at the bias word and its
					// futex wait, on a word that biasing leaves as
					// it was: so the word changes first (the bit,
					// which a biased lock does not need, goes), and
					// that waiter's wait returns at once.
					if v&^waitersBit == m.tid {
						m.word.CompareAndSwap(v, m.tid)
					}
					wake(m.word, math.MaxInt32)
				}
				return nil
			}
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
	if monoNow()-h.biasedAt < turnNs()/shortBiasTurns {
		h.penalty = min(max(2*h.penalty, 1), maxHoldoff)
		h.holdoff = h.penalty
	} else {
		h.penalty, h.holdoff = 0, 0
	}
}

// Consistent marks the state protected by h as repaired after a lock call
// returned ErrOwnerDead, as Mutex.Consistent.
func (h *BiasedMutex) Consistent() error {
	if err := h.usable(); err != nil {
		return err
	}
	switch h.state {
	case fast:
		return nil // taken through the bias: nobody died
	case held:
		return h.m.Consistent()
	}
	return h.notLocked()
}

// Slot is the process slot this process holds in h's segment.
func (h *BiasedMutex) Slot() int {
	if h.m == nil {
		return -1
	}
	return h.m.Slot()
}

// Close gives up h: a bias it holds goes (the lock is released as by
// Unlock), and the record may be attached again in this process, by
// NewBiasedMutex or NewMutex. h must not be locked (ErrInUse); its
// methods return an error wrapping shm.ErrClosed after, as they do once
// the segment's last handle in this process is closed. The segment stays
// open.
func (h *BiasedMutex) Close() error {
	if err := h.usable(); err != nil {
		return err
	}
	a := h.m.a
	a.mu.Lock()
	defer a.mu.Unlock()
	h.finishUnlock()
	if h.state != free {
		return h.m.wrap(fmt.Errorf("%w: Close of a locked BiasedMutex", ErrInUse))
	}
	if h.m.biased == h {
		h.release()
		h.m.biased = nil
	}
	h.closed.Store(true)
	return nil
}

// Segment is the segment h lives in.
func (h *BiasedMutex) Segment() *shm.Segment {
	if h.m == nil {
		return nil
	}
	return h.m.a.seg
}

// Biased reports whether the lock was biased to this process when h last
// looked (at its last lock or unlock).
func (h *BiasedMutex) Biased() bool { return h.biased }

// release gives up a bias before the segment is closed: the bias becomes
// an ordinary hold, which Unlock releases. A revocation under way is left
// to finish: the revoker finds our slot dead and the lock free.
func (h *BiasedMutex) release() {
	h.finishUnlock()
	if h.biased && h.state == free && h.m.bias.CompareAndSwap(h.want, nextBias(h.want, -1, -1, 0)) {
		h.m.Unlock()
	}
	// A lock held here at the segment's close is abandoned (leave): no
	// fast path may touch the record again, and Unlock says ErrClosed.
	h.biased, h.state = false, free
	// EnterFast and ExitFast check nothing but the words they point at:
	// point them at words of h's own that never match want, as the
	// segment's may soon be gone (see EnterFast).
	h.entry, h.bias = &h.closedEntry, &h.closedBias
	h.closedBias = noBias
	h.want = noBias + 1
}

// The other side: lockers that find the lock biased.

// stepHook, when set (tests only), is called at steps of a revocation and
// of seizing and taking words ("claimed", "fenced", "won", "seizing",
// "reclaimed" (a holder took its bias back: revoked),
// "seized", "decided" (a seize's check said yes), "seize-undone",
// "undoing" a dead seizer's word, "settling", "taken",
// "owner-slot" (between ownerSlot's two loads of a slot),
// "take-handed-off"), so that a
// test can stop or kill the process there.
var stepHook func(step string)

// biasedWait is lockSlow's step when the word, v, is held by a live
// process (or a dead one) and the bias word was b, naming a holder; the
// waiter has waited for waited ns. It revokes the bias when the holder is
// idle or dead or has had its turn, and otherwise waits out the turn. It
// reports whether it took the lock.
func (m *mutex) biasedWait(ctx context.Context, b uint64, v uint32, waited int64, slept bool) (bool, error) {
	start := monoNow()
	h, r := biasHolder(b), biasRevoker(b)
	owner := v & tidMask
	var os int
	if !m.doubt && h >= 0 && biasVerdict(b) == 0 && m.entry(h).Load()&tidMask == owner {
		// The word holds the holder's id: take the holder to be
		// alive, as it nearly always is, without asking the kernel
		// (two system calls, which every hand-over waited for). A
		// revocation does not trust
		// it (see revoke); one that fails sets doubt, and from then
		// on this lock call asks.
		os = h
	} else {
		os = m.ownerSlot(owner)
	}
	if os < 0 {
		// The word's owner is dead: the holder, killed before its
		// robust thread's exit could mark the word (or a revoker or
		// taker after it), or garbage. Take it over; settle judges.
		return m.take(v, slept)
	}
	switch t := turnNs(); {
	case biasVerdict(b) != 0, os != h:
		// A judged death, or the word left the holder: the live
		// process holding the word clears the bias next. That
		// process may have the holder's thread id (the holder died
		// and its id was handed on): the word's owner is the holder
		// only if the holder's slot is the live one with that id.
	case r >= 0 && r != m.a.slot.Index && !m.live(r):
		m.undoRevoke(b)
		return false, nil
	case r >= 0 && r != m.a.slot.Index && m.claimStalled(b, h):
		// A live revoker that has not won the bias word long after
		// the holder was out was stopped (or its CPU taken away)
		// between its claim and its win, and the holder, idle or
		// gone from the record, does not take its bias back: give
		// the claim up for it, as the holder would. Its win then
		// fails, and it claims again; we revoke meanwhile.
		if m.bias.CompareAndSwap(b, restored(b)) {
			stalledClaims.Add(1)
		}
		return false, nil
	case r >= 0:
		// A revocation under way.
	case waited < t && (m.fresh(h) || m.biasHot(h)):
		// A busy holder's turn: wait it out, off the lock's lines.
		return false, waitUntil(ctx, start+t-waited)
	default:
		took, err := m.revoke(ctx, v, b, true, slept)
		if !took && err == nil {
			m.doubt = true
		}
		return took, err
	}
	switch {
	case waited < int64(time.Millisecond):
		return false, nap(ctx, time.Microsecond) // a yield: it is a moment
	case waited < int64(10*time.Millisecond):
		return false, nap(ctx, 100*time.Microsecond)
	}
	return false, nap(ctx, time.Millisecond) // someone was stopped, or descheduled
}

// judgeBias puts a verdict on the holder the bias word names, if there is
// one and it has none yet: it died, or let its word go to a revoker that
// died after taking it, and its entry says whether it was inside. Called
// by a taker of a dead owner's word under its seizure, before the word is
// its own: the verdict voids a revocation claim made on the holder while
// it lived, whose revoker, stopped after its claim was answered, would
// otherwise seize the word once it holds the holder's thread id again
// (see revoke). It serves as a seize check: sv is our seized value.
//
// It reports false, and judges nobody, if the word is no longer sv: a
// stale third party undid our seizure (see seize), and the word and the
// bias word may since have gone on to a live process that biased the
// lock, which a verdict would wedge (it, and everyone after it, would
// wait for the judged bias to be cleared by the word's live holder). The
// bias word is read before the word: read while the word was still sv,
// it names the holder that lost the word, and the CAS lands only if it
// has not changed since.
func (m *mutex) judgeBias(sv uint32) bool {
	for {
		b := m.bias.Load()
		h := biasHolder(b)
		if h < 0 || biasVerdict(b) != 0 {
			return true
		}
		if m.word.Load() != sv {
			return false
		}
		if m.bias.CompareAndSwap(b, nextBias(b, h, -1, m.verdictOf(h))) {
			return true
		}
	}
}

// claimStalled reports whether b, a live revoker's claim on the holder in
// slot h (acked or not, not won: no taking bit), has stood unchanged for
// claimStall while h's entry said h was outside its critical section. A
// running revoker wins within microseconds of finding the holder out
// (its ack, or its entry clear after the membarrier); one whose claim
// stands that long was stopped before its win. The holder takes its bias
// back from such a revoker (revoked), but only when it locks: an idle
// holder, or one that closed its BiasedMutex, never does, and every other
// locker would wait for the revoker to run again. Called under local.
func (m *mutex) claimStalled(b uint64, h int) bool {
	if b&biasTaking != 0 || m.entry(h).Load()&inCSBit != 0 {
		// Won, or the holder is inside: the revoker waits for it to
		// come out, as it must.
		m.stall = sighting{}
		return false
	}
	return m.stall.stood(b, monoNow(), int64(claimStall))
}

// claimStall is how long a claim must stand, not won, with its holder
// outside, before a waiter gives it up for its revoker (claimStalled):
// long beside a revocation's membarrier and a wake-up from a sleep on the
// holder's entry, short beside a stopped process.
const claimStall = time.Millisecond

// stalledClaims counts the claims given up by waiters for their stopped
// revokers (tests).
var stalledClaims atomic.Int64

// undoRevoke clears the claim of a dead revoker, found in b: if the word is
// still with the live holder, the holder keeps its bias; if it left (the
// revoker took it, then died; or the holder died), the holder is judged as
// any dead holder is, from its entry, which the bias word still protects.
func (m *mutex) undoRevoke(b uint64) {
	h := biasHolder(b)
	v := m.word.Load()
	if isSeized(v & tidMask) {
		m.awaitSeized(context.Background(), v) // undone if its seizer died
		return
	}
	if m.bias.Load() != b {
		return
	}
	if v&tidMask == m.entry(h).Load()&tidMask && v&ownerDiedBit == 0 && m.live(h) {
		m.bias.CompareAndSwap(b, restored(b))
		return
	}
	m.bias.CompareAndSwap(b, nextBias(b, h, -1, m.verdictOf(h)))
}

// fresh reports whether the holder in slot h is the revoker that took the
// lock from this process less than a turn ago: busy, then, and owed its
// turn. biasHot is not asked: a holder buying back to back can leave its
// entry looking still for microseconds (its in-critical-section stores
// wait in its store buffer while our loads take the line, and the last
// to land is mostly the exit's), and in traces of two buyers a third of
// the hand-overs went to revoking a holder that had just taken the lock,
// a few microseconds into its turn: the gaps of 10.2-11.3 µs in part 1
// of docs/runs/latency-handover.txt, which are gone with this.
func (m *mutex) fresh(h int) bool {
	return h == m.lostTo && monoNow()-m.lostAt < turnNs()
}

// biasHot reports whether the biased holder in slot h is busy: its entry's
// in-critical-section bit changes while we watch. An idle holder (the bit
// stays clear) or one in a long critical section (it stays set) is
// revoked at once.
func (m *mutex) biasHot(h int) bool {
	e := m.entry(h)
	first := e.Load()
	for range hotLoads {
		if e.Load() != first {
			return true
		}
	}
	// Loads back to back can fall in step with a busy holder's stores
	// and keep finding one value (each waits for the line the holder
	// has just written): in traces of two buyers, many revocations took
	// a holder in the middle of its turn, biasHot having found it idle.
	// So look again, spaced by clock reads, for a while a busy holder
	// cannot stand still.
	for end := monoNow() + int64(hotWatch); monoNow() < end; {
		if e.Load() != first {
			return true
		}
	}
	return false
}

// hotWatch is how long biasHot watches a holder's entry after its
// back-to-back loads: an idle holder costs a revoker this much more.
const hotWatch = 2 * time.Microsecond

// hotLoads is how many times biasHot reads the holder's entry: a holder
// buying back to back changes it every few nanoseconds.
const hotLoads = 64

// revoke takes the lock, held as v0 by the live process the bias word b
// names, from that process: see the top of this file. With block false
// (TryLock) it gives up if the holder is inside its critical section. It
// reports whether it took the lock; the error is ErrOwnerDead if a verdict
// said so meanwhile, ctx's if ctx ended while waiting for the holder to
// leave. A revoker that slept on the futex in this lock call (slept) takes
// the word with the waiters bit, as take does (mutex.takenWord).
//
// The word is taken by seizing it (mutex.seize) and checking that our
// claim still stands: the claim protects the bias word, not the futex
// word, whose value comes back (the holder closes and reopens with the
// same thread id, or dies and a new process gets it, and locks), and a
// revoker stopped before its CAS must not take that later lock.
func (m *mutex) revoke(ctx context.Context, v0 uint32, b uint64, block, slept bool) (bool, error) {
	h := biasHolder(b)
	claim := nextBias(b, h, m.a.slot.Index, 0)
	if !m.bias.CompareAndSwap(b, claim) {
		return false, nil
	}
	ack := acked(claim)
	hook("claimed")
	won := uint64(0) // the bias word once we win it (taking)
	// giveUp drops our claim, acked, won or not: the holder keeps its
	// bias.
	giveUp := func() {
		for _, c := range [...]uint64{claim, ack, won} {
			if c != 0 && m.bias.CompareAndSwap(c, restored(c)) {
				return
			}
		}
	}
	// A running holder answers at once (ack); else the membarrier, and
	// we watch its entry until it is out.
	ep := m.entry(h)
	fenced := false
	spinUntil := monoNow() + int64(ackSpin)
	for deadline := monoNow() + int64(ackWait); ; {
		cur := m.bias.Load()
		if cur == ack {
			break
		}
		if cur != claim {
			return false, nil // the holder died and was judged, or let go
		}
		if !fenced && monoNow() >= deadline {
			if err := fence(); err != nil {
				giveUp()
				return false, m.wrap(fmt.Errorf("revoking the bias of slot %d: %w", h, err))
			}
			fenced = true
		}
		if !fenced {
			if monoNow() >= spinUntil {
				yield()
			}
			continue
		}
		e := ep.Load()
		if e&inCSBit == 0 {
			break
		}
		if !m.live(h) {
			giveUp() // dead inside: the next look takes the word over
			return false, nil
		}
		if err := ctx.Err(); err != nil || !block {
			giveUp()
			return false, err
		}
		wait(ep, e, entrySlice)
	}
	hook("fenced") // by the holder's ack or by the membarrier
	// The holder is out of its critical section and sees our claim if it
	// tries again, or it is dead. Win the bias word: a holder whose
	// answer stands for long takes its bias back (revoked), and from our
	// win on it cannot.
	for {
		cur := m.bias.Load()
		if cur != claim && cur != ack {
			return false, nil // taken back, or the holder died and was judged
		}
		if t := taking(cur); m.bias.CompareAndSwap(cur, t) {
			won = t
			break
		}
	}
	hook("won")
	// Take the word from the holder.
	//
	// The word must still be the holder's: the holder may have died
	// since (the kernel marks the word OWNER_DIED, and clears the id; or
	// it closed the segment, which does the same), and its thread id
	// gone to another process, which took the word (the id again) and
	// locks. Every taker of a dead owner's word judges the holder the
	// bias word names, under its seizure, before the word is its own
	// (take, judgeBias), as a joiner of the holder's slot does before
	// it writes its entry (join): a verdict voids our claim. So a word
	// that holds the id while our won claim stands, looked at under our
	// seizure, where it cannot change, is the holder's. (An earlier
	// version asked the kernel, under the seizure, whether the holder
	// lived with that id: two system calls that every hand-over of a
	// contended lock waited for.)
	stands := func() bool { return m.bias.Load() == won }
	for {
		v := m.word.Load()
		if v&tidMask != v0&tidMask || v&ownerDiedBit != 0 {
			// It died since (the kernel marked the word), or the
			// word is seized: the next look deals with it.
			giveUp()
			return false, nil
		}
		// stands is asked first as well: a claim already gone (the
		// holder died and the word went on, maybe to a process with
		// its thread id) must not seize that process's word, which
		// would hold up its Unlock for as long as we are stopped.
		if !stands() {
			return false, nil
		}
		if m.seize(v, stands, m.takenWord(slept)) {
			break
		}
		if !stands() {
			return false, nil
		}
	}
	hook("taken")
	if m.settle(false) {
		return true, m.errorf(ErrOwnerDead)
	}
	return true, nil
}

func hook(step string) {
	if stepHook != nil {
		stepHook(step)
	}
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
// The first is gc's behaviour, not a promise of the Go memory model, which
// says nothing of memory another process reads: TestBiasOrder disassembles
// both functions as gc compiled them and fails if the load ever comes
// before the store. Assembly would promise it, but a Go call into
// assembly cannot be inlined and goes through an ABI wrapper: with these
// two in assembly, BenchmarkMutexUncontended/shm-biased went from 4.1 to
// 9.6 ns per lock+unlock on the machine of docs/runs, slower than the
// plain futex Mutex (8.5 ns).
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
