//go:build linux

package semaphore

import (
	"context"

	"github.com/shmkit/shmkit/shm"
)

// Segment type tags of the segments OpenMutex and OpenSemaphore make.
const (
	MutexTag     = "semaphore.Mutex/2"
	SemaphoreTag = "semaphore.Semaphore/2"
)

// OpenMutex opens the segment name holding one Mutex, creating it if need
// be (see shm.OpenOrCreate). A segment of another type is refused with
// shm.ErrTypeMismatch. The Mutex owns its handle on the segment: Close it
// when done.
func OpenMutex(ctx context.Context, name string) (*Mutex, error) {
	seg, err := shm.OpenOrCreate(ctx, name, MutexSize, MutexTag, nil)
	if err != nil {
		return nil, err
	}
	m, err := NewMutex(seg, 0)
	if err != nil {
		seg.Close()
		return nil, err
	}
	m.own = true
	return m, nil
}

// OpenSemaphore opens the segment name holding one Semaphore, creating it
// with n permits if need be; an existing one keeps its own count.
func OpenSemaphore(ctx context.Context, name string, n int64) (*Semaphore, error) {
	seg, err := shm.OpenOrCreate(ctx, name, SemaphoreSize, SemaphoreTag, func(seg *shm.Segment) error {
		return InitSemaphore(seg, 0, n)
	})
	if err != nil {
		return nil, err
	}
	s, err := NewSemaphore(seg, 0)
	if err != nil {
		seg.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// Segment is the segment s lives in: the handle it was made with.
func (s *Semaphore) Segment() *shm.Segment { return s.seg }

// Close closes s, and its segment handle if it was opened by
// OpenSemaphore; for one made by NewSemaphore, the caller closes its own
// segment. Its methods fail with shm.ErrClosed after. Permits this process
// holds stay held until it releases them through another Semaphore on the
// record or the segment's last handle in it is closed, when they are its
// dead process's.
func (s *Semaphore) Close() error {
	if s.mu == nil {
		return errZero("Semaphore", "OpenSemaphore or NewSemaphore")
	}
	if !s.closed.CompareAndSwap(false, true) {
		return s.mu.wrap(shm.ErrClosed)
	}
	if s.own {
		return s.seg.Close()
	}
	return nil
}

// Slot is the process slot this process holds in m's segment (0 to
// MaxProcs-1). Records that keep per-process data next to a mutex index
// it by Slot.
func (m *mutex) Slot() int { return m.a.slot.Index }
