//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"sync/atomic"

	"github.com/shmkit/shmkit/shm"
)

// SemaphoreSize is written out for its godoc; these fail to compile if
// it is not the layout's size.
var (
	_ [SemaphoreSize - (offHeld + 16*MaxProcs)]struct{}
	_ [(offHeld + 16*MaxProcs) - SemaphoreSize]struct{}
)

// The Semaphore record; doc.go has it as a table.
const (
	// SemaphoreSize is the size of a Semaphore record in a segment: a
	// Mutex record, the permit counts, then 16 bytes per process slot.
	SemaphoreSize = 4736

	offCapacity = MutexSize
	offAvail    = offCapacity + 8
	offSeq      = offAvail + 8
	offHeld     = MutexSize + 64
)

var _ [SemaphoreSize % RecordAlign]struct{}
var _ [SemaphoreSize - 4736]struct{} // doc.go's table
var _ [4736 - SemaphoreSize]struct{}

// Semaphore is a counting semaphore shared by processes, shaped like
// golang.org/x/sync/semaphore.Weighted. Permits are held by a process (any
// of its goroutines may release them), recorded under its process slot
// together with the slot's generation, so they are the permits of that
// process and of no later one in its slot. Permits held by a process that
// died are given back: by the next Acquire that finds too few permits (it
// checks which holders are dead), by every waiter each time its sleep
// slice ends, and by every NewSemaphore.
//
// Its bookkeeping (available permits, permits held per process slot) is
// guarded by a robust Mutex in the same record, so a process killed in the
// middle of Acquire or Release is repaired by the next caller.
//
// A Semaphore is safe for concurrent use by many goroutines of many
// processes. Its methods return an error wrapping shm.ErrClosed after its
// Close or its segment's last Close in this process, and calls racing
// either return that or succeed as if they had come just before it (see
// Mutex).
type Semaphore struct {
	closed   atomic.Bool
	mu       *mutex
	seg      *shm.Segment // the handle it was made with
	own      bool         // OpenSemaphore made seg: Close closes it
	rec      []byte
	capacity int64
	avail    *atomic.Int64
	seq      *atomic.Uint32 // bumped by every Release; waiters sleep on it
	slot     shm.Slot
}

// InitSemaphore writes an unlocked Semaphore with n permits at data offset
// off of seg. Call it from the segment's init function (shm.InitFunc),
// before any process uses the record.
func InitSemaphore(seg *shm.Segment, off int, n int64) error {
	b, err := checkPlacement(seg, off, SemaphoreSize)
	if err != nil {
		return err
	}
	if n <= 0 {
		panic("semaphore: InitSemaphore with no permits")
	}
	clear(b)
	i64(b, offCapacity).Store(n)
	i64(b, offAvail).Store(n)
	return nil
}

// NewSemaphore attaches to the Semaphore record at data offset off of seg,
// written by InitSemaphore. A record that is not one (no permits, counts
// out of range, reserved bytes set) is refused with ErrCorrupt. It claims
// this process's slot as NewMutex does, and checks the books under the
// record's lock; both wait until ctx is done.
func NewSemaphore(ctx context.Context, seg *shm.Segment, off int) (*Semaphore, error) {
	rec, err := checkPlacement(seg, off, SemaphoreSize)
	if err != nil {
		return nil, err
	}
	capacity := i64(rec, offCapacity).Load()
	if capacity <= 0 || !isZero(rec[offSeq+4:offHeld]) {
		return nil, fmt.Errorf("%s: %w: no semaphore at offset %d (capacity %d); InitSemaphore writes one", seg.Path(), ErrCorrupt, off, capacity)
	}
	if a := i64(rec, offAvail).Load(); a < 0 || a > capacity {
		return nil, fmt.Errorf("%s: %w: %d permits available of %d", seg.Path(), ErrCorrupt, a, capacity)
	}
	for i := range MaxProcs {
		if h := i64(rec, offHeld+16*i).Load(); h < 0 || h > capacity {
			return nil, fmt.Errorf("%s: %w: slot %d holds %d permits of %d", seg.Path(), ErrCorrupt, i, h, capacity)
		}
	}
	mu, err := newMutex(ctx, seg, off, false)
	if err != nil {
		return nil, err
	}
	s := &Semaphore{
		mu:       mu,
		seg:      seg,
		rec:      rec,
		capacity: capacity,
		avail:    i64(rec, offAvail),
		seq:      u32(rec, offSeq),
		slot:     mu.a.slot,
	}
	// Check the books (they balance whenever the mutex is free), and give
	// back now the permits of dead holders: among them, the process that
	// had our slot before us.
	var books error
	if err := s.locked(ctx, func() {
		sum := s.avail.Load()
		for i := range MaxProcs {
			sum += s.held(i).Load()
		}
		if sum != capacity {
			books = fmt.Errorf("%s: %w: %d permits available or held, capacity %d", seg.Path(), ErrCorrupt, sum, capacity)
			return
		}
		if s.reclaim() > 0 {
			s.wakeAll()
		}
	}); err != nil {
		return nil, err
	}
	if books != nil {
		return nil, books
	}
	return s, nil
}

// held is the count of permits held from slot i; holder is the generation
// of the process that holds them (shm.Slot).
func (s *Semaphore) held(i int) *atomic.Int64    { return i64(s.rec, offHeld+16*i) }
func (s *Semaphore) holder(i int) *atomic.Uint64 { return u64(s.rec, offHeld+16*i+8) }

// mine is this process's count, once its generation is recorded with it.
// Called under the mutex.
func (s *Semaphore) mine() *atomic.Int64 {
	if g := s.holder(s.slot.Index); g.Load() != s.slot.Gen {
		// reclaim gave back what an earlier process here held.
		g.Store(s.slot.Gen)
	}
	return s.held(s.slot.Index)
}

// holderAlive reports whether the permits of slot i are held by a live
// process. When in doubt it says yes: permits are never taken from a
// live holder.
func (s *Semaphore) holderAlive(i int) bool {
	sl := shm.Slot{Index: i, Gen: s.holder(i).Load()}
	if sl == s.slot {
		return true
	}
	alive, err := s.mu.a.seg.Alive(sl)
	return err != nil || alive
}

// locked runs fn under the record's mutex, repairing the books first if
// the previous holder died in the middle of an update.
func (s *Semaphore) locked(ctx context.Context, fn func()) error {
	err := s.mu.LockContext(ctx)
	a := s.mu.a
	if err == nil || errors.Is(err, ErrOwnerDead) {
		// The books are being changed: the Close's detach waits.
		a.closeMu.RLock()
		defer a.closeMu.RUnlock()
	}
	if a.gone.Load() {
		return s.mu.wrap(shm.ErrClosed) // the segment's last Close raced the call
	}
	if errors.Is(err, ErrOwnerDead) {
		s.repair()
		err = s.mu.Consistent()
	}
	if err != nil {
		return err
	}
	fn()
	return s.mu.Unlock()
}

// repair rebuilds the books after a holder of the record's mutex died: the
// permits of dead holders are freed and the available count is recomputed
// from the per-slot counts, which live processes keep exact.
func (s *Semaphore) repair() {
	var inUse int64
	for i := range MaxProcs {
		h := s.held(i)
		n := h.Load()
		if n == 0 {
			continue
		}
		if !s.holderAlive(i) {
			h.Store(0)
			continue
		}
		inUse += n
	}
	s.avail.Store(s.capacity - inUse)
	s.wakeAll()
}

// reclaim gives back the permits of dead holders. It returns how many.
// Called under the mutex.
func (s *Semaphore) reclaim() int64 {
	var freed int64
	for i := range MaxProcs {
		h := s.held(i)
		if h.Load() != 0 && !s.holderAlive(i) {
			freed += h.Swap(0)
		}
	}
	s.avail.Add(freed)
	return freed
}

// Acquire acquires n permits, waiting until they are available or ctx is
// done. On success it returns nil; on failure ctx.Err() (or the error of the
// record's mutex) and leaves the semaphore unchanged. More permits than
// the semaphore's capacity (which whoever made it chose) can never be
// had: an error wrapping ErrCapacity, at once. It panics if n is negative.
// Ignoring its error means running without the permits: more holders than
// the capacity.
func (s *Semaphore) Acquire(ctx context.Context, n int64) error {
	if err := s.usable(); err != nil {
		return err
	}
	if err := s.checkN(n); err != nil {
		return err
	}
	var stopWake func() bool
	defer func() {
		if stopWake != nil {
			stopWake()
		}
	}()
	for reclaim := false; ; reclaim = true {
		if err := s.usable(); err != nil {
			return err
		}
		seq := s.seq.Load()
		ok, err := s.try(ctx, n, reclaim)
		if ok || err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if stopWake == nil && ctx.Done() != nil {
			stopWake = context.AfterFunc(ctx, s.ctxWaker())
		}
		wait(s.seq, seq, waitSlice)
	}
}

// TryAcquire acquires n permits without waiting for a Release, and reports
// whether it did. On failure it leaves the semaphore unchanged; more
// permits than its capacity are a failure (Acquire says why). It panics
// if n is negative.
func (s *Semaphore) TryAcquire(n int64) bool {
	if s.usable() != nil || s.checkN(n) != nil {
		return false
	}
	ok, _ := s.try(context.Background(), n, true)
	return ok
}

func (s *Semaphore) try(ctx context.Context, n int64, reclaim bool) (ok bool, err error) {
	others := false // permits reclaimed beyond ours: other waiters may go
	defer func() {
		if others {
			s.wakeAll()
		}
	}()
	err = s.locked(ctx, func() {
		if s.avail.Load() < n && reclaim {
			others = s.reclaim() > 0
		}
		if s.avail.Load() >= n {
			s.mine().Add(n)
			s.avail.Add(-n)
			ok = true
		}
		others = others && s.avail.Load() > 0
	})
	return ok, err
}

// Release gives back n permits held by this process. It panics if this
// process holds fewer than n, like x/sync/semaphore. Unlike it, Release
// returns an error: the one of the record's mutex, if it cannot be locked.
func (s *Semaphore) Release(n int64) error {
	if err := s.usable(); err != nil {
		return err
	}
	if n < 0 {
		panic("semaphore: Release of a negative count")
	}
	over := false
	err := s.locked(context.Background(), func() {
		h := s.mine()
		if h.Load() < n {
			over = true
			return
		}
		s.avail.Add(n)
		h.Add(-n)
	})
	if over {
		if err := s.usable(); err != nil {
			// The segment's last Close raced this call: the permits went
			// with it, and the count read was the retired range's zero.
			return err
		}
		panic("semaphore: released more than held")
	}
	if err != nil {
		return err
	}
	s.wakeAll()
	return nil
}

// Held is the number of permits this process holds.
func (s *Semaphore) Held() int64 {
	if s.usable() != nil {
		return 0
	}
	if s.holder(s.slot.Index).Load() != s.slot.Gen {
		return 0
	}
	return s.held(s.slot.Index).Load()
}

// Available is the number of free permits. It may be stale by the time it
// is used, and does not count permits of dead holders not yet reclaimed.
func (s *Semaphore) Available() int64 {
	if s.usable() != nil {
		return 0
	}
	return s.avail.Load()
}

// usable is Mutex.usable for s: a zero Semaphore, a closed one, or one
// whose segment's last handle in this process was closed fails with an
// error wrapping shm.ErrClosed (and Held, Available and TryAcquire say 0
// and false).
func (s *Semaphore) usable() error {
	switch {
	case s.mu == nil:
		return errZero("Semaphore", "OpenSemaphore or NewSemaphore")
	case s.closed.Load() || s.mu.a.gone.Load():
		return s.mu.wrap(shm.ErrClosed)
	}
	return nil
}

// Capacity is the number of permits the semaphore was made with.
func (s *Semaphore) Capacity() int64 { return s.capacity }

// checkN panics on a negative count (a bug in the caller, as for
// Release) and refuses one beyond the capacity (data: another process may
// have made the semaphore).
func (s *Semaphore) checkN(n int64) error {
	if n < 0 {
		panic(fmt.Sprintf("semaphore: acquire of %d permits", n))
	}
	if n > s.capacity {
		return fmt.Errorf("%s: %w: %d permits asked, it has %d", s.seg.Path(), ErrCapacity, n, s.capacity)
	}
	return nil
}

// ctxWaker is the callback that wakes Acquire's sleepers when its
// context ends. Only the futex wake, a system call: the callback runs in
// a goroutine of its own that may outlive Acquire, and a store into the
// mapping after the caller closed the segment would fault (the eighth
// review's finding); a wake on an unmapped address is EFAULT. A wake that
// comes before the sleep costs a slice at most.
func (s *Semaphore) ctxWaker() func() {
	word := s.seq
	return func() { wake(word, math.MaxInt32) }
}

func (s *Semaphore) wakeAll() {
	s.seq.Add(1)
	wake(s.seq, math.MaxInt32)
}
