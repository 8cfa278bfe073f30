//go:build linux

package semaphore

import (
	"context"
	"fmt"
	"sync"
)

// Do runs fn holding m, and is the way to use a Mutex that cannot be
// gotten wrong by habit (bbolt's db.Update shape): it locks m, calls fn,
// and always unlocks. ownerDied tells fn that the previous owner died
// holding m, so the state m protects may be half updated and fn must
// repair it first.
//
//   - fn returns nil: a repair is marked done (Consistent), and Do
//     returns Unlock's error, normally nil.
//   - fn returns an error after ownerDied: the repair failed, and m is
//     unlocked not recoverable, as glibc does (every later lock fails
//     with ErrNotRecoverable until Reset). Do returns fn's error.
//   - fn returns an error otherwise: fn must leave the state as
//     consistent as it found it; m is unlocked and Do returns fn's error.
//   - fn panics: m is left as a dying owner leaves it (the next locker
//     gets ErrOwnerDead and repairs; after ownerDied, not recoverable)
//     and the panic goes on up.
//
// Do returns the lock's error without calling fn when m cannot be locked:
// ctx done (ctx's error), ErrNotRecoverable, or a closed Mutex.
//
// The segment's last Close in this process waits for Do calls that hold
// the lock: it does not abandon a lock whose critical section is running
// (it would let another process in while fn still writes). So fn must not
// close m's segment.
func (m *Mutex) Do(ctx context.Context, fn func(ownerDied bool) error) error {
	err := m.LockContext(ctx)
	ownerDied := err == ErrOwnerDead // bare: see LockContext
	if err != nil && !ownerDied {
		return err
	}
	// Inside: the Close's detach waits (closeMu) until we are out.
	a := m.m.a
	a.closeMu.RLock()
	defer a.closeMu.RUnlock()
	if a.gone.Load() {
		return m.errClosed() // closed between the lock and here: abandoned by the Close
	}
	done := false
	defer func() {
		if done {
			return
		}
		// fn panicked, holding m.
		if ownerDied {
			m.m.Unlock() // not recoverable: the repair itself failed
		} else {
			raceRelease(m.m)
			m.m.abandon() // as if this owner had died inside
		}
	}()
	ferr := fn(ownerDied)
	done = true
	if ferr != nil {
		if uerr := m.m.Unlock(); ownerDied && uerr != nil {
			return fmt.Errorf("%w (so the lock is left not recoverable: %w)", ferr, uerr)
		}
		return ferr
	}
	if ownerDied {
		if err := m.m.Consistent(); err != nil {
			m.m.Unlock()
			return err
		}
	}
	return m.m.Unlock()
}

// Reset re-initialises a mutex that is not recoverable (an owner unlocked
// it after ErrOwnerDead without Consistent), as re-initialising a glibc
// robust mutex does: the lock is free again and its next locker gets nil.
// Whoever calls it vouches for the protected state, which no process has
// repaired. On a free, consistent mutex it does nothing; on a held one,
// or a free one waiting for its next locker's repair, it fails with
// ErrHeld.
func (m *Mutex) Reset() error {
	if err := m.usable(); err != nil {
		return err
	}
	return m.m.reset()
}

func (m *mutex) reset() error {
	for {
		v := m.word.Load()
		switch {
		case v == 0:
			return nil
		case v != notRecoverable:
			return m.wrap(fmt.Errorf("%w (word %#x)", ErrHeld, v))
		case m.bias.Load()&0xffff != 0:
			// A bias or a revocation in flight on a not-recoverable
			// word is not a state the lock makes; leave it to a look
			// by hand.
			return m.wrap(fmt.Errorf("%w (bias word %#x)", ErrHeld, m.bias.Load()))
		}
		// Lockers that read notRecoverable return without touching the
		// word or waiting: nobody holds it, nobody sleeps on it, and a
		// locker that reads 0 after this CAS takes it as usual.
		if m.word.CompareAndSwap(v, 0) {
			return nil
		}
	}
}

// Locker is m as a sync.Locker, for APIs that take one (sync.Cond). Its
// Lock never returns without the lock: it panics when m cannot be locked
// (ErrNotRecoverable, a closed Mutex) and when the previous owner died
// holding it, since a Locker cannot tell its caller to repair (the lock is
// left for the next locker to repair, as a death leaves it). Its Unlock
// panics when m is not held by this process, as sync.Mutex's is fatal. Use
// Do where the protected state may need repair.
func (m *Mutex) Locker() sync.Locker { return stdLocker{m} }

type stdLocker struct{ m *Mutex }

func (l stdLocker) Lock() {
	err := l.m.Lock()
	if err == ErrOwnerDead {
		raceRelease(l.m.m)
		l.m.m.abandon()
		panic(fmt.Sprintf("semaphore: Locker: %v: use Mutex.Do to repair", ErrOwnerDead))
	}
	if err != nil {
		panic("semaphore: Locker: " + err.Error())
	}
}

func (l stdLocker) Unlock() {
	if err := l.m.Unlock(); err != nil {
		if l.m.m != nil && l.m.m.a.gone.Load() {
			return // the segment's last Close abandoned the lock already
		}
		panic("semaphore: Locker: " + err.Error())
	}
}
