// Package ctxlock is an in-process mutual exclusion lock whose Lock
// takes a context: a sync.Mutex's price when nobody waits (one CAS to
// lock, one atomic store and a load to unlock), and a waiter that gives
// up when its context is done.
//
// shmkit's handles serialise their process's goroutines with it around
// state that lives in shared memory but is this process's alone (a
// Counter's log and its lock's bias): a goroutine that waits there for
// another process must still honour its own deadline, which a
// sync.Mutex cannot do.
package ctxlock

import (
	"context"
	"sync/atomic"
)

// Mutex is the lock. The zero Mutex is unlocked and ready to use; a
// Mutex must not be copied after first use.
//
// Unlock wakes one waiter when any is registered. The waiter's
// registration (waiters.Add) and the unlocker's release (state.Store)
// are both sequentially consistent atomics, each followed by a load of
// the other's word: either the waiter's retry sees the lock free, or the
// unlocker sees the waiter and sends a token. A token may find the
// channel full, when one sent before is still unclaimed; whoever takes
// that token retries, and its unlock wakes the next. Waiters that find
// the lock taken again (a goroutine that arrived meanwhile got it) wait
// again: no hand-off, like sync.Mutex in its normal mode.
type Mutex struct {
	state   atomic.Int32                  // 0 free, 1 held
	waiters atomic.Int32                  // goroutines in Lock's slow path
	wake    atomic.Pointer[chan struct{}] // made by the first waiter
}

// Lock locks m, waiting while another goroutine holds it until ctx is
// done; then it returns ctx's error (context.Cause) without the lock.
func (m *Mutex) Lock(ctx context.Context) error {
	if m.state.CompareAndSwap(0, 1) {
		return nil
	}
	return m.lockSlow(ctx)
}

// TryLock locks m if it is free and reports whether it did.
func (m *Mutex) TryLock() bool { return m.state.CompareAndSwap(0, 1) }

func (m *Mutex) lockSlow(ctx context.Context) error {
	wake := m.channel()
	m.waiters.Add(1)
	defer m.waiters.Add(-1)
	for {
		if m.state.CompareAndSwap(0, 1) {
			return nil
		}
		select {
		case <-wake:
		case <-ctx.Done():
			// A token sent meanwhile stays in the channel for the
			// next waiter; a lock freed meanwhile is taken.
			if m.state.CompareAndSwap(0, 1) {
				return nil
			}
			return context.Cause(ctx)
		}
	}
}

// channel is the wake channel, made by the first waiter.
func (m *Mutex) channel() chan struct{} {
	if p := m.wake.Load(); p != nil {
		return *p
	}
	c := make(chan struct{}, 1)
	if m.wake.CompareAndSwap(nil, &c) {
		return c
	}
	return *m.wake.Load()
}

// Unlock unlocks m. Unlocking an unlocked Mutex panics, as sync.Mutex's
// Unlock is a fatal error.
func (m *Mutex) Unlock() {
	if m.state.Swap(0) != 1 {
		panic("ctxlock: unlock of unlocked mutex")
	}
	if m.waiters.Load() != 0 {
		select {
		case *m.wake.Load() <- struct{}{}:
		default: // a token is pending: its taker wakes the next
		}
	}
}
