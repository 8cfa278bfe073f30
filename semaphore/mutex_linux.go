//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync"
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
// stay out of its way for a turn (SetTurn; wait_linux.go): they do not read
// the word meanwhile, and do not set the waiters bit, which would cost the
// owner a futex wake on every Unlock.
//
// A waiter that has waited a turn asks for a hand-off: it writes its slot
// into the record's hand-off word and watches the word. The next Unlock
// then does not release the word but hands it over (see handOff), so that
// no barger can take it. Processes thus take turns: throughput stays close
// to an uncontended lock, a process arriving at a random moment waits
// about half a turn, and none waits without bound. One hand-off request is
// pending at a time: other waiters wait another turn, and a waiter whose
// request is not answered within two turns (a long critical section)
// sleeps on the futex until an Unlock wakes it. A request by a process
// that died is dropped by the next Unlock, and a grant that its live
// grantee has not taken for a millisecond (or two turns; grantGrace) is
// taken by another waiter: a grantee stopped (SIGSTOP, or its CPU taken
// away) must not hold up the lock for as long, where a stopped waiter of
// glibc's mutex holds up nobody (TestStoppedGrantee), nor for callers
// whose calls are each shorter than that (TestStoppedGranteeShortCalls:
// sawGrant).
//
// No strict FIFO: with more processes than cores, a queue lock hands the
// lock to a process that is not running and everyone waits for the
// scheduler.
var (
	// waitSlice bounds one futex sleep. The kernel wakes a sleeper when
	// the owner unlocks or dies; the slice covers the one case it cannot,
	// an owner killed between releasing the word and waking, and a word
	// owned by a process the kernel never knew (garbage): a waiter that
	// sees the word unchanged for a slice checks that the owner is alive.
	// It also ends the sleep of waiters left asleep when the one waiter
	// an Unlock woke is killed before it takes the word (that Unlock
	// cleared the waiters bit; nobody is left to wake the rest), as with
	// any futex lock that wakes one.
	waitSlice = 10 * time.Millisecond // a variable for the tests only
)

// mutex is a Mutex record as this process uses it: one per record per
// mapping, shared by every Mutex handle (and the BiasedMutex or Semaphore)
// on the record in this process.
type mutex struct {
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

	// seizeMu makes this process's seizes of the word take turns (see
	// seize).
	seizeMu sync.Mutex

	// biased is the BiasedMutex that is this record's only user in this
	// process, if any; plain, whether NewMutex handed it out. Guarded by
	// a.mu.
	biased *BiasedMutex
	plain  bool

	// lostTo is the slot of the revoker that last took the lock from
	// this process's bias, at lostAt (monoNow): see fresh. Written and
	// read by the BiasedMutex's goroutine only.
	lostTo int
	lostAt int64

	// doubt is set in a lock call once a revocation of it failed: from
	// then on biasedWait asks whether the word's owner lives before it
	// acts (see biasedWait). Written and read under local.
	doubt bool

	// grant is another live waiter's grant (the hand-off word) that this
	// process's lock calls found standing (see sawGrant), and stall a
	// revocation claim, not won, found standing with its holder outside
	// (see claimStalled). They outlast a lock call that did not take the
	// lock, so that calls shorter than the grace (TryLock; LockContext
	// with a tight deadline), made one after another, add up to it; a
	// lock call that takes the lock forgets the grant, as its value comes
	// back. Written and read under local.
	grant, stall sighting

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
// use the segment); a claim waits for another process's claim in progress
// until ctx is done. A record whose words cannot be a Mutex's is refused
// with ErrCorrupt. A record this process uses through a BiasedMutex is
// refused with ErrInUse.
func NewMutex(ctx context.Context, seg *shm.Segment, off int) (*Mutex, error) {
	m, err := newMutex(ctx, seg, off, false)
	if err != nil {
		return nil, err
	}
	return &Mutex{m: m, seg: seg}, nil
}

func newMutex(ctx context.Context, seg *shm.Segment, off int, forBias bool) (*mutex, error) {
	rec, err := checkPlacement(seg, off, MutexSize)
	if err != nil {
		return nil, err
	}
	a, err := attach(ctx, seg)
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
	m := &mutex{
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
		lostTo:  -1,
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
func (m *mutex) join() {
	s := m.a.slot.Index
	for {
		// A word seized by our slot index is our dead predecessor's
		// seizure (nobody else seizes as slot s, and we have not yet):
		// undo it first, as anyone who finds a seizer dead does. Once
		// our generation is in the record, the seized value would name
		// a live seizer, us, and nobody would ever undo it; and below,
		// undoRevoke would wait for it.
		v := m.word.Load()
		if !isSeized(v&tidMask) || seizer(v&tidMask) != s || m.undoSeized(v) {
			break
		}
	}
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
		// A grant it never took leaves the word handed off to nobody:
		// the next locker takes it (orphaned).
		h := m.handoff.Load()
		if int(h&slotMask)-1 != s || m.handoff.CompareAndSwap(h, 0) {
			break
		}
	}
	for {
		v := m.word.Load()
		owner := v & tidMask
		if isSeized(owner) && seizedOwner(owner) == m.tid {
			// Someone is making sure that id is dead: it is, but let
			// the seizer finish (or clear up after a dead one).
			m.awaitSeized(context.Background(), v)
			continue
		}
		if owner == m.tid && m.word.CompareAndSwap(v, v&waitersBit|ownerDiedBit) {
			wake(m.word, 1)
		}
		break
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
func (m *mutex) leave() {
	for {
		// A grant we never took leaves the word handed off to nobody:
		// the next locker takes it (orphaned).
		h := m.handoff.Load()
		if h&slotMask != m.me || m.handoff.CompareAndSwap(h, 0) {
			break
		}
	}
	m.abandon()
}

// LockContext: see Mutex.LockContext.
func (m *mutex) LockContext(ctx context.Context) error {
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

func (m *mutex) lockSlow(ctx context.Context) (err error) {
	if err := ctx.Err(); err != nil {
		// As POSIX's timed locks do: a lock that can be had at once is
		// taken, whatever the deadline.
		if ok, terr := m.TryLock(); ok || terr != nil {
			return terr
		}
		return err
	}
	select {
	case m.local <- struct{}{}:
	case <-ctx.Done():
		if ok, terr := m.TryLock(); ok || terr != nil {
			return terr
		}
		return ctx.Err()
	}
	defer func() { <-m.local }()
	m.doubt = false

	var (
		stopWake func() bool // wakes sleepers when ctx is done
		first    int64       // when this locker first found the lock held
		slept    bool        // slept on the futex: others may sleep there too
		asked    int64       // when our hand-off request went into the record; 0 none
		checked  int64       // when the owner's liveness was last asked
		seen     uint32      // the word then
	)
	defer func() {
		if stopWake != nil {
			stopWake()
		}
		if err == nil || err == ErrOwnerDead {
			m.grant = sighting{} // the word left the grant we saw: its value comes back
		}
		if asked != 0 && err != nil && err != ErrOwnerDead && !m.a.gone.Load() {
			m.withdraw()
		}
	}()
	for {
		if m.a.gone.Load() {
			// The segment's last handle closed while we waited (a
			// misuse: see Mutex.Close): its memory is going.
			return m.wrap(shm.ErrClosed)
		}
		v := m.word.Load()
		owner := v & tidMask
		switch {
		case owner == notRecoverable:
			return m.errorf(ErrNotRecoverable)
		case isSeized(owner):
			if err := m.awaitSeized(ctx, v); err != nil {
				return err
			}
			continue

		case owner == handedOff:
			h := m.handoff.Load()
			if h == m.me|grantedBit || h&grantedBit == 0 || !m.live(int(h&slotMask)-1) {
				// Ours: the granter left the word for us to take. Or
				// nobody's: its grantee withdrew or died.
				if m.takeHandedOff(v) {
					asked = 0
					return nil
				}
				continue
			}
			// Another waiter's: it takes the word next, in a moment.
			// One that has not taken it a while after we first found
			// its grant was stopped, or its CPU taken away: it must
			// not hold up the lock for as long, as a stopped waiter
			// of glibc's mutex holds up nobody. The grant is taken as
			// one to nobody; its grantee finds it gone and asks again.
			if m.sawGrant(h, monoNow()) {
				if m.takeHandedOff(v) {
					grantTakeovers.Add(1)
					if asked != 0 && !m.handoff.CompareAndSwap(m.me, 0) {
						m.handoff.CompareAndSwap(m.me|grantedBit, 0)
					}
					asked = 0
					return nil
				}
				continue
			}
		case owner == 0 || isGarbage(owner) || (v&ownerDiedBit != 0 && m.ownerSlot(owner) < 0):
			// Free, or left by a dead owner.
			took, err := m.take(v, slept)
			if !took {
				continue
			}
			if asked != 0 {
				m.handoff.CompareAndSwap(m.me, 0)
				asked = 0
			}
			return err
		}
		if err := expired(ctx); err != nil {
			// Held, and our time is up. Looked at on every round: not
			// every wait below looks at ctx before it returns (a nap
			// of a moment, a revocation under way), and rounds of them
			// would outlast a short deadline by a millisecond.
			return err
		}
		now := monoNow()
		if first == 0 {
			first, checked, seen = now, now, v
		}
		if v != seen {
			checked, seen = now, v
		} else if now-checked >= int64(waitSlice) && owner <= maxOwnerID {
			// The word stayed the same for a slice: is its owner alive?
			// A death the kernel did not report (the owner died between
			// a store and its robust thread's exit, or the word is
			// garbage) is taken over as the kernel's would be.
			checked = now
			if m.ownerSlot(owner) < 0 {
				took, err := m.take(v, slept)
				if took {
					if asked != 0 {
						m.handoff.CompareAndSwap(m.me, 0)
						asked = 0
					}
					return err
				}
				continue
			}
		}
		if b := m.bias.Load(); biasHolder(b) >= 0 && owner != handedOff {
			// Biased: the holder never unlocks the word, so no
			// hand-off and no sleeping on it; revoke instead.
			took, err := m.biasedWait(ctx, b, v, now-first, slept)
			if took {
				if asked != 0 && !m.handoff.CompareAndSwap(m.me, 0) {
					m.handoff.CompareAndSwap(m.me|grantedBit, 0)
				}
				asked = 0
			}
			if took || err != nil {
				return err
			}
			continue
		}
		if asked != 0 && m.handoff.Load()&^grantedBit != m.me {
			// Our request is gone: dropped by a stale taker of an
			// orphaned grant, or by an Unlock that judged us dead
			// while we were stopped. Ask again.
			asked = 0
		}
		t := turnNs()
		switch {
		case owner == handedOff:
			// Handed to another waiter: sleep until it takes the word.
		case asked == 0 && now-first < t:
			// The holder's turn: wait it out, off the lock's cache lines.
			if err := waitUntil(ctx, first+t); err != nil {
				return err
			}
			continue
		case asked == 0:
			if m.ask() {
				asked = now
				// The waiters bit sends the holder's next Unlock down
				// its slow path, where it hands the word over.
				if v&waitersBit == 0 {
					m.word.CompareAndSwap(v, v|waitersBit)
				}
				continue
			}
			// Another waiter asked first and is next: sleep on the
			// futex, woken with every hand-over to ask again (more
			// waiters than cores must leave the holder the CPU, and
			// each gets its chance to be next).
		case now-asked < 2*t:
			// The holder hands the word over at its next Unlock, in
			// a moment if it is running: watch for it.
			yield()
			continue
		}
		// A long critical section, or a grant to another: sleep until
		// an Unlock wakes us.
		if v&waitersBit == 0 {
			if !m.word.CompareAndSwap(v, v|waitersBit) {
				continue
			}
			v |= waitersBit
			// Dekker with an unlocker that biases the lock: it stores
			// the bias word, then looks for this bit. Whichever looks
			// second sees the other: either it clears the bit and
			// wakes us (a futex wait on the word with the bit returns
			// at once, should it come after the wake), or we see the
			// bias here and do not sleep.
			if biasHolder(m.bias.Load()) >= 0 {
				continue
			}
		}
		if stopWake == nil && ctx.Done() != nil {
			stopWake = context.AfterFunc(ctx, func() { wake(m.word, math.MaxInt32) })
		}
		slice := waitSlice
		if owner == handedOff {
			// Until the grantee's grace is out (above), and no
			// longer: a grantee that does not take the word wakes
			// nobody.
			slice = min(slice, time.Duration(max(m.grant.at+grantGrace()-monoNow(), int64(time.Microsecond))))
		}
		if d, ok := ctx.Deadline(); ok {
			// Until the deadline, and no longer: the wake that ctx's
			// end sends (stopWake) comes when the Go scheduler runs
			// its timer, a millisecond late or more in an idle process.
			slice = min(slice, max(time.Until(d), time.Microsecond))
		}
		if timedOut := wait(m.word, v, slice); timedOut && slice == waitSlice {
			wordTimeouts.Add(1)
		}
		slept = true
		if err := ctx.Err(); err != nil {
			return err
		}
	}
}

// expired is ctx.Err(), or context.DeadlineExceeded once ctx's deadline
// has passed: the timer that cancels ctx fires when the Go scheduler gets
// to it, which a locker going round yields and naps on a busy machine
// delays by milliseconds (TestDeadlineUnderStoppedClaim).
func expired(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		return context.DeadlineExceeded
	}
	return nil
}

// wordTimeouts counts futex sleeps on a word that ended by their slice
// rather than a wake: each is a wake-up that never came (tests).
var wordTimeouts atomic.Int64

// grantGrace is how long a grant to another waiter may stand before a
// waiter takes it as one to nobody: a millisecond, or two turns if
// longer. A running grantee takes the word within microseconds (it
// watches the word for two turns after it asks), a sleeping one when the
// granter's wake has it scheduled again: tens of microseconds on an idle
// CPU, about a time slice on a crowded one.
func grantGrace() int64 { return max(int64(time.Millisecond), 2*turnNs()) }

// grantTakeovers counts grants taken as grants to nobody (tests).
var grantTakeovers atomic.Int64

// sawGrant records that this process found h, another live waiter's
// grant, standing at now, and reports whether it found the same grant
// standing grantGrace or more before: in this lock call, or in earlier
// ones of this process that did not take the lock (a TryLock, a
// LockContext whose deadline came first). Each such call is shorter than
// the grace, and would otherwise start it afresh: a stopped grantee would
// hold up every caller that does not block for a millisecond, for as long
// as it is stopped. The value of a grant comes back (the same waiter
// granted again), so the first sighting may be of an earlier grant: the
// grantee of the later one then loses its turn, not its safety, as with
// a stale taker of an orphaned grant (takeHandedOff). Called under local.
func (m *mutex) sawGrant(h uint32, now int64) bool {
	return m.grant.stood(uint64(h), now, grantGrace())
}

// sighting is a value of a shared word found standing, and when it was
// first found (monoNow). Every value it is given is non-zero.
type sighting struct {
	v  uint64
	at int64
}

// stood records v found standing at now, and reports whether the same
// value was found grace or more before (a new value starts afresh).
func (s *sighting) stood(v uint64, now, grace int64) bool {
	if v != s.v {
		*s = sighting{v, now}
		return false
	}
	return now-s.at >= grace
}

// standing runs saw (sawGrant, claimStalled) under local for TryLock, which
// does not hold it, and reports what it says; false, without running it,
// while another goroutine of this process is in a lock call: that call
// keeps the records, and takes the grant or undoes the claim itself once
// it has stood.
func (m *mutex) standing(saw func(now int64) bool) bool {
	select {
	case m.local <- struct{}{}:
	default:
		return false
	}
	defer func() { <-m.local }()
	return saw(monoNow())
}

// takenWord is the word a locker leaves when it takes the lock, before
// the waiters bit of the word it took from: its owner id, and the bit if
// it slept on the futex in this lock call. An Unlock that frees the word
// clears the bit and wakes one sleeper; others may still sleep, and only
// the bit makes the woken one's Unlock wake the next (TestNoLostWakeup's
// four processes). take and revoke both take with it.
func (m *mutex) takenWord(slept bool) uint32 {
	if slept {
		return m.tid | waitersBit
	}
	return m.tid
}

// take tries to lock m, found as v: free, or left by a dead owner
// (OWNER_DIED with no owner, or an owner id no live process has). It
// reports whether it took the lock, and ErrOwnerDead when the protected
// state needs repair (see settle).
//
// A dead owner's word that the bias word still names a holder of is
// taken under a seizure, and the holder judged (judgeBias) before the
// word becomes ours: see revoke for why.
func (m *mutex) take(v uint32, slept bool) (bool, error) {
	nv := m.takenWord(slept) | v&waitersBit
	switch owner := v & tidMask; {
	case v&^waitersBit == 0:
		if !m.word.CompareAndSwap(v, nv) {
			return false, nil
		}
		// It was free. A free word is never biased (the bias is given
		// up, or moved with the word, before the word is free): a bias
		// word that says otherwise is garbage.
		if b := m.bias.Load(); biasHolder(b) >= 0 {
			m.bias.CompareAndSwap(b, nextBias(b, -1, -1, 0))
		}
		return true, nil
	case owner == 0, isGarbage(owner):
		// Left by a dead owner (the kernel's OWNER_DIED, or abandon's),
		// or garbage. Without a bias holder there is no claim to void:
		// one is only ever made on a holder, and a bias only by the
		// word's live owner.
		switch {
		case biasHolder(m.bias.Load()) < 0:
			if !m.word.CompareAndSwap(v, nv) {
				return false, nil
			}
		case owner != 0:
			// Garbage: make it the dead owner's word it stands for
			// (OWNER_DIED, no owner) and look again. A seized value
			// keeps 22 bits of an owner id, so one undone by a third
			// party (its seizer died) would turn garbage into an id.
			m.word.CompareAndSwap(v, v&^tidMask|ownerDiedBit)
			return false, nil
		case !m.seize(v, func() bool { return m.judgeBias(m.seizedValue(v)) }, nv):
			return false, nil
		}
	case owner <= maxOwnerID:
		// An owner id that no live process has, we read: make sure of
		// it with the word seized, where the id cannot come back.
		if !m.seize(v, func() bool { return m.ownerSlot(owner) < 0 && m.judgeBias(m.seizedValue(v)) }, nv) {
			return false, nil
		}
	default:
		return false, nil
	}
	if m.settle(true) {
		return true, m.errorf(ErrOwnerDead)
	}
	return true, nil
}

// Seizing the word.
//
// The word is 32 bits with no room for a version, and the values it takes
// come back: a thread id is reused, and a lock freed and taken again by
// the same process holds the same id. So a CAS on it, computed from a
// decision made on other words (this owner id belongs to no live process;
// our revocation claim still stands), could land on a later, equal value
// that the decision says nothing about: a stopped process that resumes
// would take a lock from a live holder. seize closes that: it first CASes
// the word to a seized value (seizedBit, our slot, the owner id found),
// which no one but the seizer changes and no one takes, then makes the
// decision again, and then commits (the value it wanted) or undoes (the
// value it found). While the word is seized, the decision's inputs can
// change only in ways that keep it: the owner id cannot come back into a
// word that does not hold it, and the owner it names, if alive, waits for
// the seizer before it unlocks. A seizer that dies is undone by whoever
// finds it dead.

// seize CASes the word from v (an owner id in the owner field) to the
// seized value, asks valid, and sets the word to to (with v's waiters
// bit) if valid says yes, or back to v. It reports whether it committed.
//
// The seized value names its seizer by slot index only, and a slot index
// is reused: a later seizer of the same owner id from the same slot makes
// the same value. So a third party that judged an earlier seizer dead and
// was stopped before its undo can undo a live seizure. The seizer
// therefore commits, and undoes, with a CAS from its seized value: a
// stale undo costs it this attempt (the word is back at v, as if it had
// never seized), never the exclusion. A valid with a side effect must
// make sure the word is still sv (judgeBias): after a stale undo the
// world it would act on may have moved on. Within this process seizes of the
// record take turns (seizeMu), so two goroutines never make one value.
func (m *mutex) seize(v uint32, valid func() bool, to uint32) bool {
	sv := m.seizedValue(v)
	m.seizeMu.Lock()
	defer m.seizeMu.Unlock()
	hook("seizing")
	if !m.word.CompareAndSwap(v, sv) {
		return false
	}
	hook("seized")
	if valid() {
		hook("decided")
		if m.word.CompareAndSwap(sv, to|v&waitersBit) {
			return true
		}
		hook("seize-undone") // by a stale third party: try again
		return false
	}
	if m.word.CompareAndSwap(sv, v) && v&waitersBit != 0 {
		wake(m.word, math.MaxInt32) // the owner may have slept on the seized value
	}
	return false
}

// seizedValue is the value seize makes of v: seizedBit, our slot, v's
// owner id (22 bits of it) and v's other bits.
func (m *mutex) seizedValue(v uint32) uint32 {
	return seizedBit | uint32(m.a.slot.Index)<<seizedShift | v&seizedTidMask | v&^tidMask
}

// undoSeized puts back the owner id of v, a word seized by a process that
// died before it decided, and reports whether it did.
func (m *mutex) undoSeized(v uint32) bool {
	hook("undoing")
	if !m.word.CompareAndSwap(v, seizedOwner(v&tidMask)|v&^tidMask) {
		return false
	}
	if v&waitersBit != 0 {
		wake(m.word, math.MaxInt32)
	}
	return true
}

// ours reports whether v is this process's owner id, seized by someone
// making sure it is dead: the lock is ours, but we wait to change the word.
func (m *mutex) ours(v uint32) bool {
	owner := v & tidMask
	return isSeized(owner) && seizedOwner(owner) == m.tid
}

// awaitSeized waits until the seized word v changes: a seizer decides in a
// moment; one that died is undone here (the owner id it found goes back).
func (m *mutex) awaitSeized(ctx context.Context, v uint32) error {
	for start := monoNow(); m.word.Load() == v; {
		if s := seizer(v & tidMask); s != m.a.slot.Index && !m.live(s) {
			m.undoSeized(v)
			return nil
		}
		var err error
		if monoNow()-start < int64(time.Millisecond) {
			err = ctx.Err()
			yield()
		} else {
			err = nap(ctx, 100*time.Microsecond) // a seizer that was stopped
		}
		if err != nil {
			return err
		}
	}
	return nil
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
func (m *mutex) settle(dead bool) (dirty bool) {
	hook("settling")
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
		// The word holds our id, but a seizer that read the same id
		// before it was ours (a dead process's, reused) may hold it
		// seized a moment: wait it out, as Unlock does, and mark only
		// our own value. Marking the seized value would leave the
		// seizer unable to commit or undo: seized for good.
		v := m.word.Load()
		if m.ours(v) {
			m.awaitSeized(context.Background(), v)
			continue
		}
		if v&tidMask != m.tid || m.word.CompareAndSwap(v, v|ownerDiedBit) {
			break
		}
	}
	return dirty
}

// takeHandedOff takes a word found handed off (v), for us (our grant) or
// for nobody (its grant was withdrawn, or its grantee died): the word is
// taken first, then any grant is cleared, before the lock call returns: a
// grant says that nobody is inside, which stays true until then. If the
// word was handed off again meanwhile, to a live waiter, that waiter loses
// its turn, not its safety: it finds its grant gone and asks again.
func (m *mutex) takeHandedOff(v uint32) bool {
	hook("take-handed-off")
	if !m.word.CompareAndSwap(v, m.tid|v&waitersBit) {
		return false
	}
	if h := m.handoff.Load(); h&grantedBit != 0 || h == m.me {
		m.handoff.CompareAndSwap(h, 0)
	}
	return true
}

// ask records this process as the waiter to hand the lock to, unless
// another one is. A grant to a live requester is never touched; one to a
// dead requester is left for the next locker to take (takeHandedOff).
func (m *mutex) ask() bool {
	h := m.handoff.Load()
	if h&grantedBit != 0 {
		return false
	}
	if h != 0 && !m.live(int(h&slotMask)-1) {
		m.handoff.CompareAndSwap(h, 0) // a dead requester's
		return false
	}
	return h == 0 && m.handoff.CompareAndSwap(0, m.me)
}

// withdraw takes back our hand-off request. If it was granted meanwhile,
// we take the word handed to us and unlock it, as a holder would; but
// only while the grant stands: once it is gone (a taker of orphaned
// grants took the word, which clears it), whatever the word holds is
// someone else's business, and withdraw returns.
func (m *mutex) withdraw() {
	if m.handoff.CompareAndSwap(m.me, 0) || m.handoff.Load() != m.me|grantedBit {
		return
	}
	for spins := 0; m.handoff.Load() == m.me|grantedBit; spins++ {
		v := m.word.Load()
		switch owner := v & tidMask; {
		case owner == handedOff:
			if m.takeHandedOff(v) {
				m.Unlock()
				return
			}
		case owner == notRecoverable:
			m.handoff.CompareAndSwap(m.me|grantedBit, 0) // moot
			return
		case owner == 0 || isGarbage(owner) || (!isSeized(owner) && m.ownerSlot(owner) < 0):
			// The granter died between its two steps: the grant
			// says it was outside its critical section, and take
			// finds it so while the grant stands.
			took, err := m.take(v, false)
			if !took {
				continue
			}
			if err == ErrOwnerDead {
				// The grant went between our look and take: this
				// lock is a dead holder's, to be repaired by a
				// caller who asked for it. Leave it as we found
				// it: OWNER_DIED, for the next locker.
				m.abandon()
				return
			}
			m.Unlock()
			return
		default:
			// The granter is between its two steps, or a seizer is
			// making sure of its id: a moment.
			if spins < 100 {
				yield()
			} else {
				nap(context.Background(), 100*time.Microsecond)
			}
		}
	}
}

// abandon lets go of the word, held by us, as a dead owner's: OWNER_DIED
// with no owner, so the next taker repairs (leave does the same at close).
func (m *mutex) abandon() {
	for {
		v := m.word.Load()
		if m.ours(v) {
			m.awaitSeized(context.Background(), v)
			continue
		}
		if v&tidMask != m.tid {
			return
		}
		if m.word.CompareAndSwap(v, v&waitersBit|ownerDiedBit) {
			wake(m.word, 1)
			return
		}
	}
}

// TryLock: see Mutex.TryLock.
func (m *mutex) TryLock() (bool, error) {
	for {
		v := m.word.Load()
		owner := v & tidMask
		switch {
		case owner == notRecoverable:
			return false, m.errorf(ErrNotRecoverable)
		case isSeized(owner):
			if s := seizer(owner); s != m.a.slot.Index && !m.live(s) {
				m.awaitSeized(context.Background(), v) // undoes it
				continue
			}
			return false, nil
		case owner == handedOff:
			if h := m.handoff.Load(); h&grantedBit != 0 && m.live(int(h&slotMask)-1) {
				// A live waiter's, unless it has stood since our
				// earlier calls saw it a grace ago (see lockSlow).
				stood := m.standing(func(now int64) bool {
					if !m.sawGrant(h, now) {
						return false
					}
					m.grant = sighting{} // taken below, or gone
					return true
				})
				if !stood {
					return false, nil
				}
				if !m.takeHandedOff(v) {
					continue
				}
				grantTakeovers.Add(1)
				raceAcquire(m)
				return true, nil
			}
			if m.takeHandedOff(v) {
				raceAcquire(m)
				return true, nil
			}
			continue
		case owner == 0 || isGarbage(owner) || (v&ownerDiedBit != 0 && m.ownerSlot(owner) < 0):
			took, err := m.take(v, false)
			if !took {
				continue
			}
			raceAcquire(m)
			return true, err
		}
		b := m.bias.Load()
		h := biasHolder(b)
		if h < 0 || biasVerdict(b) != 0 || owner != m.entry(h).Load()&tidMask {
			return false, nil
		}
		// A revocation under way: the lock is its revoker's next, unless
		// its claim, not won, has stood since our earlier calls saw it
		// a grace ago, the holder outside (see biasedWait).
		r := biasRevoker(b)
		if r >= 0 && !m.standing(func(int64) bool { return m.claimStalled(b, h) }) {
			return false, nil
		}
		if os := m.ownerSlot(owner); os >= 0 && os != h {
			// A live process with the dead holder's thread id holds
			// the word: it clears the bias when it settles.
			return false, nil
		} else if os < 0 {
			// A biased holder killed before its robust thread's exit
			// could mark the word: take it over.
			took, err := m.take(v, false)
			if !took {
				continue
			}
			raceAcquire(m)
			return true, err
		}
		if r >= 0 {
			// Undone as biasedWait undoes it (the revoker's win
			// fails); then we revoke.
			if m.bias.CompareAndSwap(b, restored(b)) {
				stalledClaims.Add(1)
			}
			continue
		}
		took, err := m.revoke(context.Background(), v, b, false, false)
		if took {
			raceAcquire(m)
		}
		return took, err
	}
}

// Unlock: see Mutex.Unlock.
func (m *mutex) Unlock() error {
	raceRelease(m)
	// Fast path: held by us, nobody sleeping.
	if m.word.CompareAndSwap(m.tid, 0) {
		return nil
	}
	return m.unlockSlow()
}

func (m *mutex) unlockSlow() error {
	for {
		v := m.word.Load()
		if m.ours(v) {
			m.awaitSeized(context.Background(), v)
			continue
		}
		if v&tidMask != m.tid {
			return m.notOwner(v)
		}
		if v&ownerDiedBit != 0 {
			// A CAS, not a store: a seizer may have seized v since
			// we read it (then we wait for it, above, and try again).
			if !m.word.CompareAndSwap(v, notRecoverable) {
				continue
			}
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

// handOff gives the lock, held as v by this process, to a waiter that
// asked: first the request is marked granted (so the requester cannot
// withdraw it any more without freeing what it was given), then the word
// goes from our id to handedOff, which no barger takes and whose taker the
// hand-off word names, then, if anyone sleeps, everyone sleeping is woken
// (the futex cannot wake one chosen sleeper; a requester that watches the
// word needs no wake). The requester stores its own id:
// a word never names a process that did not write it, so a dead
// requester's id can never be left there for a later process with the
// same thread id to find.
func (m *mutex) handOff(v uint32) bool {
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
	for !m.word.CompareAndSwap(v, handedOff|v&waitersBit) {
		// Only a waiter setting the waiters bit changes it, or a
		// seizer making sure that our id is alive.
		if v = m.word.Load(); m.ours(v) {
			m.awaitSeized(context.Background(), v)
			v = m.word.Load()
		}
	}
	if v&waitersBit != 0 {
		wake(m.word, math.MaxInt32) // the requester may sleep; so may others
	}
	return true
}

// Consistent: see Mutex.Consistent.
func (m *mutex) Consistent() error {
	for {
		v := m.word.Load()
		if m.ours(v) {
			m.awaitSeized(context.Background(), v)
			continue
		}
		if v&tidMask != m.tid {
			return m.notOwner(v)
		}
		if v&ownerDiedBit == 0 || m.word.CompareAndSwap(v, v&^ownerDiedBit) {
			return nil
		}
	}
}

func (m *mutex) notOwner(v uint32) error {
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
func (m *mutex) errorf(err error) error {
	switch err {
	case ErrOwnerDead:
		return ErrOwnerDead
	case ErrNotRecoverable:
		return m.errNotRecoverable
	}
	return m.wrap(err)
}

func (m *mutex) wrap(err error) error {
	return fmt.Errorf("%s: mutex at %d: %w", m.a.seg.Path(), m.off, err)
}
