//go:build linux

package semaphore

import (
	"context"
	"fmt"

	"github.com/shmkit/shmkit/shm"
)

// Segment type tags of the segments OpenMutex and OpenSemaphore make.
const (
	MutexTag     = "semaphore.Mutex/3"
	SemaphoreTag = "semaphore.Semaphore/3"
)

// OpenMutex opens the existing segment name holding one Mutex. It fails
// with an error matching fs.ErrNotExist if there is none, and
// shm.ErrTypeMismatch for a segment of another type. The Mutex owns its
// handle on the segment: Close it when done.
func OpenMutex(ctx context.Context, name string) (*Mutex, error) {
	seg, err := shm.Open(name, MutexTag)
	return ownMutex(ctx, seg, err)
}

// CreateMutex makes the segment name holding one Mutex and opens it. It
// fails with an error matching fs.ErrExist if the name is taken. Once
// made, the segment is named and other processes may open it: if this
// process cannot attach it (its robust list full, no free process slot),
// CreateMutex returns the error and leaves the segment to them.
func CreateMutex(ctx context.Context, name string) (*Mutex, error) {
	seg, err := shm.Create(name, MutexSize, MutexTag, nil)
	// Named from here on: if this process cannot attach it, the
	// segment stays for the others that may have opened it.
	return ownMutex(ctx, seg, err)
}

// OpenOrCreateMutex opens the segment name holding one Mutex, making it
// if there is none (see shm.OpenOrCreate: of many processes that call it
// at once, one makes it and the others wait, until ctx is done).
func OpenOrCreateMutex(ctx context.Context, name string) (*Mutex, error) {
	seg, err := shm.OpenOrCreate(ctx, name, MutexSize, MutexTag, nil)
	return ownMutex(ctx, seg, err)
}

func ownMutex(ctx context.Context, seg *shm.Segment, err error) (*Mutex, error) {
	if err != nil {
		return nil, err
	}
	m, err := NewMutex(ctx, seg, 0)
	if err != nil {
		seg.Close()
		return nil, err
	}
	m.own = true
	return m, nil
}

// OpenSemaphore opens the existing segment name holding one Semaphore,
// with the capacity it was made with (Capacity). It fails with an error
// matching fs.ErrNotExist if there is none.
func OpenSemaphore(ctx context.Context, name string) (*Semaphore, error) {
	seg, err := shm.Open(name, SemaphoreTag)
	return ownSemaphore(ctx, seg, err, 0)
}

// CreateSemaphore makes the segment name holding one Semaphore of n
// permits and opens it. It fails with an error matching fs.ErrExist if the
// name is taken.
func CreateSemaphore(ctx context.Context, name string, n int64) (*Semaphore, error) {
	if err := checkCapacity(n); err != nil {
		return nil, err
	}
	seg, err := shm.Create(name, SemaphoreSize, SemaphoreTag, func(seg *shm.Segment) error {
		return InitSemaphore(seg, 0, n)
	})
	return ownSemaphore(ctx, seg, err, n)
}

// OpenOrCreateSemaphore opens the segment name holding one Semaphore,
// making it with n permits if there is none. An existing one keeps its
// count, and must have been made with n permits (ErrCapacityMismatch).
func OpenOrCreateSemaphore(ctx context.Context, name string, n int64) (*Semaphore, error) {
	if err := checkCapacity(n); err != nil {
		return nil, err
	}
	seg, err := shm.OpenOrCreate(ctx, name, SemaphoreSize, SemaphoreTag, func(seg *shm.Segment) error {
		return InitSemaphore(seg, 0, n)
	})
	return ownSemaphore(ctx, seg, err, n)
}

// ownSemaphore makes the Semaphore of an open segment, which must hold n
// permits unless n is 0.
func ownSemaphore(ctx context.Context, seg *shm.Segment, err error, n int64) (*Semaphore, error) {
	if err != nil {
		return nil, err
	}
	s, err := NewSemaphore(ctx, seg, 0)
	if err == nil && n != 0 && s.Capacity() != n {
		err = fmt.Errorf("%s: %w: it has %d permits, want %d", seg.Path(), ErrCapacityMismatch, s.Capacity(), n)
		s.Close()
	}
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

func checkCapacity(n int64) error {
	if n <= 0 {
		return fmt.Errorf("semaphore: a semaphore of %d permits: want at least 1", n)
	}
	return nil
}

// Remove deletes the segment name that OpenMutex, CreateMutex or their
// Semaphore counterparts made (shm.Remove): processes that have it open
// keep using it; the next OpenOrCreate makes a new one.
func Remove(name string) error { return shm.Remove(name) }
