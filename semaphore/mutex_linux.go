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
// A Mutex is barging: Unlock releases the word and whoever CASes it first
// owns it. That keeps a busy lock with one process, which runs its critical
// sections back to back with the word in its own cache. Waiters therefore
// stay out of its way: a waiter that sees the word change while it watches
// for a moment (the lock is hot, handed between critical sections in
// nanoseconds) backs off with short sleeps, neither spinning on the cache
// line nor setting the waiters bit, which would cost the owner a futex wake
// on every Unlock; a waiter that sees the word stay put (a long critical
// section) sets the waiters bit and sleeps on the futex until Unlock or the
// owner's death wakes it.
//
// A waiter that has waited longer than starvationThreshold asks for a
// hand-off: it writes its slot into the record's hand-off word and sleeps
// on the futex. The next Unlock then does not release the word but hands
// it over (see handOff), so that no barger can take it, and wakes it.
// Processes thus take turns in batches of about a millisecond: throughput
// stays close to an uncontended lock and no process waits without bound.
// One hand-off request is pending at a time; a request by a process that
// died is dropped by the next Unlock.
//
// No strict FIFO: with more processes than cores, a queue lock hands the
// lock to a process that is not running and everyone waits for the
// scheduler.
const (
	starvationThreshold = int64(time.Millisecond)

	// watchLoads is how many times a waiter reads the word to tell a hot
	// lock from a long hold before it sleeps.
	watchLoads = 64

	// minBackoff and maxBackoff bound the sleeps of a waiter backing off
	// from a hot lock.
	minBackoff = 20 * time.Microsecond
	maxBackoff = 200 * time.Microsecond

	// waitSlice bounds one futex sleep. The kernel wakes a sleeper when
	// the owner unlocks or dies; the slice covers the one case it cannot,
	// an owner killed between releasing the word and waking, and a word
	// owned by a process the kernel never knew (garbage): after each slice
	// the sleeper checks that the owner is still alive.
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
// same record of a segment in one process, whichever handle it is given
// (a process maps a segment once). A Mutex must not be used after the
// segment's last handle in this process is closed; closing it while this
// process holds the lock abandons the lock (the next locker gets
// ErrOwnerDead).
type Mutex struct {
	word    *atomic.Uint32
	handoff *atomic.Uint32 // slot+1 of a starving waiter, maybe | grantedBit
	bias    *atomic.Uint64 // see bias_linux.go
	tid     uint32         // this process's owner id: what it writes into the word
	me      uint32         // slot+1: how the record's other words name this process
	node    unsafe.Pointer
	rec     []byte // the whole record
	a       *attachment
	off     int

	// local serialises this process's goroutines in the slow path, so a
	// process never parks more than one OS thread on the futex.
	local chan struct{}

	// biased is the BiasedMutex that is this record's only user in this
	// process, if any; plain, whether NewMutex handed it out. Guarded by
	// a.mu.
	biased *BiasedMutex
	plain  bool

	// errNotRecoverable is made by NewMutex (see errorf).
	errNotRecoverable error

	//lint:ignore U1000 read by race_on.go in -race builds
	raceSync byte // the address the race detector synchronises on
}

// InitMutex writes an unlocked Mutex at data offset off of seg: zeros, as
// shm hands a new segment to its init function.
func InitMutex(seg *shm.Segment, off int) error {
	b, err := checkPlacement(seg, off, MutexSize)
	if err != nil {
		return err
	}
	clear(b)
	return nil
}

// NewMutex attaches to the Mutex record at data offset off of seg (a
// multiple of RecordAlign, MutexSize bytes). The first use of a segment in
// a process takes its process slot (shm.ErrNoSlot when all are held by
// live processes, shm.ErrNamespace when processes of another PID namespace
// use the segment). A record whose words cannot be a Mutex's is refused
// with ErrCorrupt. A record this process uses through a BiasedMutex is
// refused with ErrInUse.
func NewMutex(seg *shm.Segment, off int) (*Mutex, error) { return newMutex(seg, off, false) }

func newMutex(seg *shm.Segment, off int, forBias bool) (*Mutex, error) {
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
		if m.biased != nil || forBias && m.plain {
			return nil, fmt.Errorf("%s: mutex at %d: %w: a BiasedMutex must be its record's only user in a process", seg.Path(), off, ErrInUse)
		}
		if forBias {
			m.biased = new(BiasedMutex) // NewBiasedMutex fills it in
		} else {
			m.plain = true
		}
		return m, nil
	}
	if a.mutexes == nil {
		return nil, fmt.Errorf("%s: %w", seg.Path(), shm.ErrClosed)
	}
	if err := checkRecord(rec); err != nil {
		return nil, fmt.Errorf("%s: %w: the mutex at offset %d: %w", seg.Path(), ErrCorrupt, off, err)
	}
	m := &Mutex{
		word:    u32(rec, offWord),
		handoff: u32(rec, offHandoff),
		bias:    u64(rec, offBias),
		tid:     a.list.tid,
		me:      uint32(a.slot.Index + 1),
		node:    ptr(rec, nodeOffset(a.slot.Index)),
		rec:     rec,
		a:       a,
		off:     off,
		local:   make(chan struct{}, 1),
	}
	m.errNotRecoverable = m.wrap(ErrNotRecoverable)
	m.join()
	if err := a.list.link(m.node); err != nil {
		return nil, fmt.Errorf("%s: %w", seg.Path(), err)
	}
	a.mutexes[off] = m
	if forBias {
		m.biased = new(BiasedMutex) // NewBiasedMutex fills it in
	} else {
		m.plain = true
	}
	return m, nil
}

// checkRecord refuses a record whose words no Mutex writes: reserved bytes
// set, slots out of range, an entry with a bit no owner id has.
func checkRecord(rec []byte) error {
	if !isZero(rec[offBias+8 : endReserved]) {
		return errors.New("reserved bytes are set; is a Mutex there?")
	}
	b := u64(rec, offBias).Load()
	if biasHolder(b) >= MaxProcs || biasRevoker(b) >= MaxProcs || biasVerdict(b) > verdictDirty ||
		(biasHolder(b) < 0 && biasRevoker(b) >= 0) {
		return fmt.Errorf("bias word %#x", b)
	}
	if h := u32(rec, offHandoff).Load(); h&^grantedBit > MaxProcs || h == grantedBit {
		return fmt.Errorf("hand-off word %#x", h)
	}
	for i := range MaxProcs {
		if e := u32(rec, offEntries+4*i).Load(); e&^(inCSBit|tidMask) != 0 || e&tidMask > maxOwnerID {
			return fmt.Errorf("owner id %#x of slot %d", e, i)
		}
	}
	return nil
}

// join makes this process a user of the record. Its slot index may have
// been another process's, which is dead (we hold its slot now): whatever
// the record's words say of that process is settled first, as any locker
// would settle it, before our entry replaces its entry:
//
//   - a bias it held gets its verdict (bias_linux.go), read from its
//     entry's in-critical-section bit while the bias word still names it;
//   - a revocation it began is undone, or ends in a verdict if the word
//     left its holder;
//   - a hand-off it asked for, or was granted and never took, is cleared;
//   - a word that holds our owner id is a dead process's that had our
//     thread id (ids are reused): it is marked OWNER_DIED, as the kernel
//     would have marked it.
//
// None of it needs an identity of ours in the record, which we do not
// have yet. Then our owner id and slot generation go into our entry.
// Called under a.mu, before the node is linked and before anyone here can
// lock.
func (m *Mutex) join() {
	s := m.a.slot.Index
	for {
		b := m.bias.Load()
		switch {
		case biasHolder(b) == s && biasVerdict(b) == 0:
			m.bias.CompareAndSwap(b, nextBias(b, s, -1, m.verdictOf(s)))
		case biasRevoker(b) == s:
			m.undoRevoke(b)
		default:
			goto bias
		}
	}
bias:
	for {
		h := m.handoff.Load()
		if int(h&slotMask)-1 != s {
			break
		}
		if m.handoff.CompareAndSwap(h, 0) {
			if h&grantedBit != 0 {
				m.freeOrphan()
			}
			break
		}
	}
	if v := m.word.Load(); v&tidMask == m.tid && m.word.CompareAndSwap(v, v&waitersBit|ownerDiedBit) {
		wake(m.word, 1)
	}
	if b := m.bias.Load(); biasHolder(b) >= 0 && m.word.Load()&^waitersBit == 0 {
		m.bias.CompareAndSwap(b, nextBias(b, -1, -1, 0)) // garbage: see take
	}
	// Our entry: the id first, then the generation that makes it ours
	// (a reader that sees the generation sees the id).
	m.entry(s).Store(m.tid)
	m.gen(s).Store(m.a.slot.Gen)
}

// leave is join's counterpart, run when the segment is closed: a lock
// still held is abandoned as a dead owner's (OWNER_DIED, so the next locker
// repairs what this process left half done), and a hand-off request is
// withdrawn. The entry stays: once our slot is released it names a dead
// process, which is what we are to the record from then on.
func (m *Mutex) leave() {
	for {
		h := m.handoff.Load()
		if h&slotMask != m.me || m.handoff.CompareAndSwap(h, 0) {
			if h&slotMask == m.me && h&grantedBit != 0 {
				m.freeOrphan()
			}
			break
		}
	}
	for {
		v := m.word.Load()
		if v&tidMask != m.tid {
			return
		}
		if m.word.CompareAndSwap(v, v&waitersBit|ownerDiedBit) {
			wake(m.word, 1)
			return
		}
	}
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
	// Fast path: unlocked, nobody sleeping. One CAS.
	if m.word.CompareAndSwap(0, m.tid) {
		raceAcquire(m)
		return nil
	}
	err := m.lockSlow(ctx)
	if err == nil || err == ErrOwnerDead { // bare: see errorf
		raceAcquire(m)
	}
	return err
}

func (m *Mutex) lockSlow(ctx context.Context) (err error) {
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
		first    int64       // when this locker first found the lock held
		slept    bool        // slept on the futex: others may sleep there too
		asked    bool        // our hand-off request is in the record
		backoff  = minBackoff
	)
	defer func() {
		if stopWake != nil {
			stopWake()
		}
		if asked && err != nil && err != ErrOwnerDead {
			m.withdraw()
		}
	}()
	for {
		v := m.word.Load()
		owner := v & tidMask
		switch {
		case owner == notRecoverable:
			return m.errorf(ErrNotRecoverable)
		case owner == handedOff:
			h := m.handoff.Load()
			if h == m.me|grantedBit {
				// Ours: the granter left the word for us to take.
				if m.word.CompareAndSwap(v, m.tid|v&waitersBit) {
					m.handoff.CompareAndSwap(h, 0)
					asked = false
					return nil
				}
				continue
			}
			if m.orphaned(h) {
				continue
			}
			// Another waiter's: it takes the word next.
		case owner == 0 || (v&ownerDiedBit != 0 && m.ownerSlot(owner) < 0):
			// Free, or left by a dead owner.
			took, err := m.take(v, slept)
			if !took {
				continue
			}
			if asked {
				m.handoff.CompareAndSwap(m.me, 0)
				asked = false
			}
			return err
		}
		now := monoNow()
		if first == 0 {
			first = now
		}
		if b := m.bias.Load(); biasHolder(b) >= 0 && owner != handedOff {
			// Biased: the holder never unlocks the word, so no
			// hand-off and no sleeping on it; revoke instead.
			took, err := m.biasedWait(ctx, b, v, now-first > starvationThreshold, &backoff)
			if took {
				if asked && !m.handoff.CompareAndSwap(m.me, 0) {
					m.handoff.CompareAndSwap(m.me|grantedBit, 0)
				}
				asked = false
			}
			if took || err != nil {
				return err
			}
			continue
		}
		if owner == handedOff {
			asked = asked && m.handoff.Load()&slotMask == m.me
		} else if !asked && now-first > starvationThreshold {
			asked = m.ask()
		}
		if !asked && owner != handedOff && !m.watch(v) {
			// Hot: stay off the owner's cache line and its wake-ups.
			if err := sleepContext(ctx, backoff); err != nil {
				return err
			}
			backoff = min(2*backoff, maxBackoff)
			continue
		}
		// A long hold, or a hand-off is pending: sleep until Unlock.
		if v&waitersBit == 0 {
			if !m.word.CompareAndSwap(v, v|waitersBit) {
				continue
			}
			v |= waitersBit
			// Dekker with an unlocker that biases the lock: it stores
			// the bias word, then looks for this bit. Whichever looks
			// second sees the other: either it wakes us, or we see the
			// bias here and do not sleep.
			if biasHolder(m.bias.Load()) >= 0 {
				continue
			}
		}
		if stopWake == nil && ctx.Done() != nil {
			stopWake = context.AfterFunc(ctx, func() { wake(m.word, math.MaxInt32) })
		}
		wait(m.word, v, waitSlice)
		slept = true
		if err := ctx.Err(); err != nil {
			return err
		}
		if monoNow()-now >= int64(waitSlice) && m.word.Load() == v && owner <= maxOwnerID && m.ownerSlot(owner) < 0 {
			// The owner is gone and the kernel did not say so (it
			// died between a store and its robust thread's exit, or
			// the word is garbage): mark it as the kernel would have.
			m.word.CompareAndSwap(v, v&waitersBit|ownerDiedBit)
		}
	}
}

// take tries to lock m, found as v: free, or left by a dead owner
// (OWNER_DIED with no owner, or an owner id no live process has). It
// reports whether it took the lock, and ErrOwnerDead when the protected
// state needs repair (see settle).
func (m *Mutex) take(v uint32, slept bool) (bool, error) {
	nv := m.tid | v&waitersBit
	if slept {
		nv |= waitersBit // others may still sleep: keep Unlock waking
	}
	if !m.word.CompareAndSwap(v, nv) {
		return false, nil
	}
	if v&^waitersBit == 0 {
		// It was free. A free word is never biased (the bias is given
		// up, or moved with the word, before the word is free): a bias
		// word that says otherwise is garbage.
		if b := m.bias.Load(); biasHolder(b) >= 0 {
			m.bias.CompareAndSwap(b, nextBias(b, -1, -1, 0))
		}
		return true, nil
	}
	if m.settle(true) {
		return true, m.errorf(ErrOwnerDead)
	}
	return true, nil
}

// settle finishes taking the word, which is ours now: from a dead owner
// (dead) or, in a revocation, from a live biased holder. It decides whether
// the protected state needs repair, clears the records that decided it and
// marks the word OWNER_DIED if so, and reports it.
//
// A death is harmful unless a record says it was not:
//   - a granted hand-off: grants are made in Unlock, after a critical
//     section, and their grantee clears them before it returns from its
//     lock call, so while one stands nobody is inside;
//   - the bias word: a lock biased to a process that died was left inside
//     a critical section or not, which its verdict says, or else its
//     entry's in-critical-section bit (intact while the bias word names
//     it: see join).
//
// Everything is read after the word became ours, so nothing read can be
// older than the death it judges: no record changes hands while the word
// is held. Clearing them comes after the decision; a taker killed in
// between had not returned from its lock call, so the next taker, which
// finds the same records, decides the same.
func (m *Mutex) settle(dead bool) (dirty bool) {
	dirty = dead && m.handoff.Load()&grantedBit == 0
	for {
		b := m.bias.Load()
		h := biasHolder(b)
		if h < 0 {
			break
		}
		switch vd := biasVerdict(b); {
		case vd != 0:
			dirty = vd == verdictDirty
		case dead:
			dirty = m.verdictOf(h) == verdictDirty
		default:
			dirty = false // revoked from a live holder that was outside
		}
		if m.bias.CompareAndSwap(b, nextBias(b, -1, -1, 0)) {
			break
		}
	}
	if h := m.handoff.Load(); h&grantedBit != 0 {
		m.handoff.CompareAndSwap(h, 0) // void once the word is held
	}
	for dirty {
		v := m.word.Load()
		if m.word.CompareAndSwap(v, v|ownerDiedBit) {
			break
		}
	}
	return dirty
}

// orphaned deals with a word handed off (handedOff) to the waiter the
// hand-off word h names, and reports whether that waiter is gone and the
// word was freed. The grant is cleared before the word is freed: a grant
// says nobody is inside, which is true only until someone takes the word.
func (m *Mutex) orphaned(h uint32) bool {
	if h&grantedBit != 0 {
		if m.live(int(h&slotMask) - 1) {
			return false
		}
		if !m.handoff.CompareAndSwap(h, 0) {
			return true // changed: look again
		}
	}
	m.freeOrphan()
	return true
}

// freeOrphan frees a handed-off word whose grant is gone.
func (m *Mutex) freeOrphan() {
	for {
		v := m.word.Load()
		if v&tidMask != handedOff || m.handoff.Load()&grantedBit != 0 {
			return
		}
		if m.word.CompareAndSwap(v, 0) {
			if v&waitersBit != 0 {
				wake(m.word, 1)
			}
			return
		}
	}
}

// watch reads the word for a moment and reports whether it stayed v.
func (m *Mutex) watch(v uint32) bool {
	for range watchLoads {
		if m.word.Load() != v {
			return false
		}
	}
	return true
}

// ask records this process as the starving waiter, unless another one is.
// A grant to a requester that died before using it is cleared, and the
// word it left is freed. A grant to a live requester is never touched.
func (m *Mutex) ask() bool {
	h := m.handoff.Load()
	if h&grantedBit != 0 {
		if !m.live(int(h&slotMask)-1) && m.handoff.CompareAndSwap(h, 0) {
			m.freeOrphan()
		}
		return false
	}
	if h != 0 && !m.live(int(h&slotMask)-1) {
		m.handoff.CompareAndSwap(h, 0) // a dead requester's
		return false
	}
	return h == 0 && m.handoff.CompareAndSwap(0, m.me)
}

// withdraw takes back our hand-off request. If it was granted meanwhile,
// the grant is cleared first and then the word, handed to us, is freed
// (by us, or by whoever finds it orphaned first).
func (m *Mutex) withdraw() {
	if m.handoff.CompareAndSwap(m.me, 0) {
		return
	}
	if m.handoff.CompareAndSwap(m.me|grantedBit, 0) {
		m.freeOrphan()
	}
}

// sleepContext sleeps for d or until ctx is done.
func sleepContext(ctx context.Context, d time.Duration) error {
	if ctx.Done() == nil {
		sleep(d)
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func sleep(d time.Duration) { time.Sleep(d) }

// TryLock locks m if it is free, without waiting. It returns (true, nil)
// or (true, ErrOwnerDead) when it took the lock, (false, nil) when it is
// held, and (false, ErrNotRecoverable). It does not probe whether the
// holder of a plain lock is alive; LockContext does. A lock biased to a
// process that is between critical sections is free: TryLock revokes the
// bias and takes it.
func (m *Mutex) TryLock() (bool, error) {
	for {
		v := m.word.Load()
		owner := v & tidMask
		switch {
		case owner == notRecoverable:
			return false, m.errorf(ErrNotRecoverable)
		case owner == handedOff:
			if m.orphaned(m.handoff.Load()) {
				continue
			}
			return false, nil
		case owner == 0 || (v&ownerDiedBit != 0 && m.ownerSlot(owner) < 0):
			took, err := m.take(v, false)
			if !took {
				continue
			}
			raceAcquire(m)
			return true, err
		}
		b := m.bias.Load()
		h := biasHolder(b)
		if h < 0 || biasVerdict(b) != 0 || biasRevoker(b) >= 0 || owner != m.entry(h).Load()&tidMask {
			return false, nil
		}
		if !m.live(h) {
			// A biased holder killed before its robust thread's exit
			// could mark the word: take it over.
			took, err := m.take(v, false)
			if !took {
				continue
			}
			raceAcquire(m)
			return true, err
		}
		took, err := m.revoke(context.Background(), v, b, false)
		if took {
			raceAcquire(m)
		}
		return took, err
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
		if m.handOff(v) {
			return nil
		}
		if m.word.CompareAndSwap(v, 0) {
			if v&waitersBit != 0 {
				wake(m.word, 1)
			}
			return nil
		}
	}
}

// handOff gives the lock, held as v by this process, to a starving waiter
// if one asked: first the request is marked granted (so the requester
// cannot withdraw it any more without freeing what it was given), then the
// word goes from our id to handedOff, which no barger takes and whose
// taker the hand-off word names, then everyone sleeping is woken (the
// futex cannot wake one chosen sleeper). The requester stores its own id:
// a word never names a process that did not write it, so a dead
// requester's id can never be left there for a later process with the
// same thread id to find.
func (m *Mutex) handOff(v uint32) bool {
	s := m.handoff.Load()
	if s == 0 || s&grantedBit != 0 || s == m.me {
		return false
	}
	if !m.live(int(s) - 1) {
		m.handoff.CompareAndSwap(s, 0) // the requester died waiting
		return false
	}
	if !m.handoff.CompareAndSwap(s, s|grantedBit) {
		return false // withdrawn
	}
	for !m.word.CompareAndSwap(v, handedOff|waitersBit) {
		v = m.word.Load() // only a waiter setting the waiters bit changes it
	}
	wake(m.word, math.MaxInt32)
	return true
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
	case handedOff:
		return fmt.Errorf("%s: mutex at %d: %w: it is being handed to a waiter", m.a.seg.Path(), m.off, ErrNotOwner)
	default:
		return fmt.Errorf("%s: mutex at %d: %w: owner id %d, this process is %d", m.a.seg.Path(), m.off, ErrNotOwner, owner, m.tid)
	}
}

// errorf wraps one of the package's sentinels with the mutex's place,
// except ErrOwnerDead, which lock calls return bare. It reports a lock
// that was taken, to a caller who knows which mutex it locked, and it is
// tested at once by a process that typically just woke from a long sleep,
// with cold caches: there errors.Is on the bare sentinel took 0.14 µs
// against 1.7 µs for the wrapped one, whose Unwrap loop's type
// assertions all missed (bench recover's waiter, median of 300). And a
// takeover must not allocate: formatting the error on the spot cost 35-40
// µs of a ~150 µs takeover in an idle process, whose heap pages the
// scavenger had given back. So ErrNotRecoverable's is made in NewMutex.
func (m *Mutex) errorf(err error) error {
	switch err {
	case ErrOwnerDead:
		return ErrOwnerDead
	case ErrNotRecoverable:
		return m.errNotRecoverable
	}
	return m.wrap(err)
}

func (m *Mutex) wrap(err error) error {
	return fmt.Errorf("%s: mutex at %d: %w", m.a.seg.Path(), m.off, err)
}
