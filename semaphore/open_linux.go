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
// shm.ErrTypeMismatch. Close the Mutex's Segment when done with it.
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
	return s, nil
}

// Segment is the segment m lives in.
func (m *Mutex) Segment() *shm.Segment { return m.a.seg }

// Segment is the segment s lives in.
func (s *Semaphore) Segment() *shm.Segment { return s.mu.a.seg }

// Slot is the process slot this process holds in m's segment (0 to
// MaxProcs-1). Records that keep per-process data next to a Mutex index
// it by Slot.
func (m *Mutex) Slot() int { return m.a.slot.Index }
