//go:build linux

package semaphore

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/shmkit/shmkit/shm"
)

// Mutex is a robust mutual-exclusion lock that lives in a shared-memory
// segment and is shared by every process that maps it. If its owner dies
// (SIGKILL at any instruction, a crash, an exit), the next process to lock
// it gets the lock together with ErrOwnerDead.
//
// Do is the way to use it: it locks, tells its function whether a dead
// owner's state needs repair, marks the repair done and always unlocks.
// Lock, TryLock, Unlock and Consistent are the parts Do is made of (POSIX's
// names for them); Locker adapts a Mutex to sync.Locker.
//
// A Mutex is owned by a process, not by a goroutine: like sync.Mutex, any
// goroutine of the owning process may unlock it, and a process is one
// owner however many Mutexes it opens on one record (they share the
// record's state in the process, as they share its mapping); Unlock from
// another process returns ErrNotOwner. It is safe for concurrent use by
// many goroutines of many processes. Once closed (Close), its methods
// return an error wrapping shm.ErrClosed, and so do they once the
// segment's last handle in this process is closed (the memory is gone);
// so does a zero Mutex. Closing the segment's last handle in this process
// while the process holds the lock abandons the lock: the next locker gets
// ErrOwnerDead. A Close may race calls in flight in other goroutines (on
// this Mutex, or the segment's last Close with calls on any handle of
// it): a call that the segment's last Close overtakes returns an error
// wrapping shm.ErrClosed, never success (what it took was abandoned by
// the Close, or lies on the retired, unshared range: shm.Segment.Close),
// and nothing faults. The last Close waits for Do's critical sections;
// it cannot see one between Lock and Unlock, whose lock it abandons while
// that goroutine may still write the shared state: close a segment only
// when no goroutine is inside such a section, or use Do.
type Mutex struct {
	m      *mutex
	seg    *shm.Segment // the handle it was made with
	own    bool         // OpenMutex made seg: Close closes it
	closed atomic.Bool
}

// Lock locks m, waiting as long as it takes. See LockContext.
func (m *Mutex) Lock() error { return m.LockContext(context.Background()) }

// LockContext locks m. On success it returns nil, or ErrOwnerDead if the
// previous owner died holding it: then the caller holds the lock and must
// repair the protected state and call Consistent before Unlock. It returns
// ErrNotRecoverable, without the lock, once the mutex was unlocked
// inconsistent. If ctx is done first it returns ctx.Err() and leaves the
// mutex as it was (it may have set the waiters bit, which costs an unlocker
// one wake-up). As with POSIX's timed locks, a lock that can be taken at
// once (TryLock) is taken even if ctx is done already.
//
// Ignoring its error is a bug: ErrOwnerDead means the protected state may
// be half updated and must be repaired before Consistent, or the next
// Unlock makes the lock unusable for every process; ErrNotRecoverable and
// ctx's error come without the lock.
func (m *Mutex) LockContext(ctx context.Context) error {
	if err := m.usable(); err != nil {
		return err
	}
	err := m.m.LockContext(ctx)
	if m.m.a.gone.Load() {
		// The segment's last Close raced the call: what it took was
		// abandoned by the Close, or is on the retired range.
		return m.errClosed()
	}
	return err
}

// TryLock locks m if it is free, without waiting. It returns (true, nil)
// or (true, ErrOwnerDead) when it took the lock, (false, nil) when it is
// held, and (false, ErrNotRecoverable). It does not probe whether the
// holder of a plain lock is alive; LockContext does. A lock biased to a
// process that is between critical sections is free: TryLock revokes the
// bias and takes it. So is, to TryLocks that keep finding it so for a
// millisecond, a lock handed to a waiter that has not taken it (or for
// two turns, if longer), or one whose revocation by another process was
// not carried through while its holder was idle (the waiter or revoker
// stopped): as LockContext does, the TryLock that finds it so takes the
// lock.
//
// Ignoring its error costs what ignoring LockContext's does: with
// (true, ErrOwnerDead) the caller holds a lock whose state needs repair.
func (m *Mutex) TryLock() (bool, error) {
	if err := m.usable(); err != nil {
		return false, err
	}
	ok, err := m.m.TryLock()
	if m.m.a.gone.Load() {
		return false, m.errClosed() // see LockContext
	}
	return ok, err
}

// Unlock unlocks m and wakes one sleeper if there is one. It returns
// ErrNotOwner if this process does not hold m. If m is inconsistent (this
// owner got ErrOwnerDead and did not call Consistent), Unlock releases it
// as not recoverable: every later lock in every process fails with
// ErrNotRecoverable, and Unlock says so.
//
// Ignoring its error hides that: ErrNotOwner means this process unlocked a
// lock it did not hold (a bug in the caller's locking), ErrNotRecoverable
// that the lock is now unusable until Reset.
func (m *Mutex) Unlock() error {
	if err := m.usable(); err != nil {
		return err
	}
	if err := m.m.Unlock(); err != nil {
		if m.m.a.gone.Load() {
			return m.errClosed() // the Close abandoned the lock first
		}
		return err
	}
	return nil
}

// Consistent marks the state protected by m as repaired after a lock call
// returned ErrOwnerDead; m then works normally again. The caller must hold
// m (ErrNotOwner otherwise). On a consistent mutex it does nothing.
// Ignoring its error means an Unlock that may make m not recoverable.
func (m *Mutex) Consistent() error {
	if err := m.usable(); err != nil {
		return err
	}
	if err := m.m.Consistent(); err != nil {
		if m.m.a.gone.Load() {
			return m.errClosed()
		}
		return err
	}
	return nil
}

// Segment is the segment m lives in: the handle it was made with.
func (m *Mutex) Segment() *shm.Segment { return m.seg }

// Slot is the process slot this process holds in m's segment (0 to
// MaxProcs-1), or -1 for a zero Mutex. Records that keep per-process data
// next to a Mutex index it by Slot.
func (m *Mutex) Slot() int {
	if m.m == nil {
		return -1
	}
	return m.m.Slot()
}

// Close closes m: its methods return shm.ErrClosed from then on. If m was
// opened by OpenMutex, Close closes its segment handle too; for one made
// by NewMutex, the caller closes its own. A lock this process holds stays
// held (by the process) until it is unlocked through another Mutex on the
// record or the segment's last handle in this process is closed.
func (m *Mutex) Close() error {
	if m.m == nil {
		return errZero("Mutex", "OpenMutex or NewMutex")
	}
	if !m.closed.CompareAndSwap(false, true) {
		return m.errClosed()
	}
	if m.own {
		return m.seg.Close()
	}
	return nil
}

// usable returns the error of a call that must not touch the record: on
// a zero Mutex, a closed one, or one whose segment's last handle in this
// process was closed (its memory is unmapped). Two loads on the way in.
func (m *Mutex) usable() error {
	switch {
	case m.m == nil:
		return errZero("Mutex", "OpenMutex or NewMutex")
	case m.closed.Load() || m.m.a.gone.Load():
		return m.errClosed()
	}
	return nil
}

// errZero is the error of a call on a zero handle: it is not attached to
// any record. It wraps shm.ErrClosed: a zero handle is as unusable as a
// closed one.
func errZero(what, makers string) error {
	return fmt.Errorf("semaphore: a zero %s (make one with %s): %w", what, makers, shm.ErrClosed)
}

func (m *Mutex) errClosed() error {
	return fmt.Errorf("%s: mutex at %d: %w", m.seg.Path(), m.m.off, shm.ErrClosed)
}
