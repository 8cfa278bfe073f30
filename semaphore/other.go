//go:build !linux

package semaphore

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/shmkit/shmkit/shm"
)

// The robust mutex needs Linux (robust futex lists, futexes, OFD locks).
// Elsewhere every constructor fails with errors.ErrUnsupported.

const (
	MaxProcs      = 128
	MutexSize     = 2624
	SemaphoreSize = 4736
	RecordAlign   = 64
	MutexTag      = "semaphore.Mutex/3"
	SemaphoreTag  = "semaphore.Semaphore/3"
)

// DefaultTurn is the turn a waiter lets a holder have (Linux only).
const DefaultTurn = 10 * time.Microsecond

// SetTurn sets the turn of this process's waiters (Linux only).
func SetTurn(d time.Duration) time.Duration { return DefaultTurn }

// Mutex is a robust inter-process mutex (Linux only).
type Mutex struct{}

// Semaphore is an inter-process counting semaphore (Linux only).
type Semaphore struct{}

// BiasedMutex is a Mutex biased to one process (Linux only).
type BiasedMutex struct{}

func InitMutex(seg *shm.Segment, off int) error { return errors.ErrUnsupported }
func NewMutex(ctx context.Context, seg *shm.Segment, off int) (*Mutex, error) {
	return nil, errors.ErrUnsupported
}
func OpenMutex(ctx context.Context, name string) (*Mutex, error) { return nil, errors.ErrUnsupported }
func NewBiasedMutex(ctx context.Context, seg *shm.Segment, off int) (*BiasedMutex, error) {
	return nil, errors.ErrUnsupported
}
func InitSemaphore(seg *shm.Segment, off int, n int64) error { return errors.ErrUnsupported }
func NewSemaphore(ctx context.Context, seg *shm.Segment, off int) (*Semaphore, error) {
	return nil, errors.ErrUnsupported
}
func OpenSemaphore(ctx context.Context, name string) (*Semaphore, error) {
	return nil, errors.ErrUnsupported
}
func CreateSemaphore(ctx context.Context, name string, n int64) (*Semaphore, error) {
	return nil, errors.ErrUnsupported
}
func OpenOrCreateSemaphore(ctx context.Context, name string, n int64) (*Semaphore, error) {
	return nil, errors.ErrUnsupported
}
func CreateMutex(ctx context.Context, name string) (*Mutex, error) { return nil, errors.ErrUnsupported }
func OpenOrCreateMutex(ctx context.Context, name string) (*Mutex, error) {
	return nil, errors.ErrUnsupported
}
func (m *Mutex) Lock() error                                    { return errors.ErrUnsupported }
func (m *Mutex) LockContext(ctx context.Context) error          { return errors.ErrUnsupported }
func (m *Mutex) TryLock() (bool, error)                         { return false, errors.ErrUnsupported }
func (m *Mutex) Unlock() error                                  { return errors.ErrUnsupported }
func (m *Mutex) Consistent() error                              { return errors.ErrUnsupported }
func (m *Mutex) Segment() *shm.Segment                          { return nil }
func (m *Mutex) Slot() int                                      { return 0 }
func (m *Mutex) Close() error                                   { return errors.ErrUnsupported }
func (s *Semaphore) Close() error                               { return errors.ErrUnsupported }
func (s *Semaphore) Acquire(ctx context.Context, n int64) error { return errors.ErrUnsupported }
func (s *Semaphore) TryAcquire(n int64) bool                    { return false }
func (s *Semaphore) Release(n int64) error                      { return errors.ErrUnsupported }
func (s *Semaphore) Held() int64                                { return 0 }
func (s *Semaphore) Available() int64                           { return 0 }
func (s *Semaphore) Capacity() int64                            { return 0 }
func (s *Semaphore) Segment() *shm.Segment                      { return nil }
func (h *BiasedMutex) Lock() error                              { return errors.ErrUnsupported }
func (h *BiasedMutex) LockContext(ctx context.Context) error    { return errors.ErrUnsupported }
func (h *BiasedMutex) TryLock() (bool, error)                   { return false, errors.ErrUnsupported }
func (h *BiasedMutex) Unlock() error                            { return errors.ErrUnsupported }
func (h *BiasedMutex) Consistent() error                        { return errors.ErrUnsupported }
func (h *BiasedMutex) Biased() bool                             { return false }
func (h *BiasedMutex) Slot() int                                { return 0 }
func (h *BiasedMutex) Close() error                             { return errors.ErrUnsupported }
func (h *BiasedMutex) Segment() *shm.Segment                    { return nil }

func (m *Mutex) Do(ctx context.Context, fn func(ownerDied bool) error) error {
	return errors.ErrUnsupported
}
func (m *Mutex) Reset() error        { return errors.ErrUnsupported }
func (m *Mutex) Locker() sync.Locker { panic("semaphore: Mutex is Linux only") }

func ClaimSlot(ctx context.Context, seg *shm.Segment) (shm.Slot, error) {
	return shm.Slot{}, errors.ErrUnsupported
}

func InspectMutex(seg *shm.Segment, off int) (MutexState, error) {
	return MutexState{}, errors.ErrUnsupported
}
func InspectSemaphore(seg *shm.Segment, off int) (SemaphoreState, error) {
	return SemaphoreState{}, errors.ErrUnsupported
}

// Remove fails with errors.ErrUnsupported: package semaphore is Linux only.
func Remove(name string) error { return errors.ErrUnsupported }
