//go:build linux

package semaphore

import (
	"context"
	"errors"
	"testing"

	"github.com/shmkit/shmkit/shm"
)

// TestUseAfterClose (issue 16, item 7): every method of a Mutex, a
// BiasedMutex and a Semaphore returns an error wrapping shm.ErrClosed
// (Held and Available: 0; TryAcquire: false) after its own Close, after
// the segment's last handle in this process was closed (its memory is
// unmapped), and on a zero value; never a fault. Before the fix, Lock
// after the segment's Close died with SIGSEGV, which no recover catches.
func TestUseAfterClose(t *testing.T) {
	ctx := context.Background()
	closedErr := func(t *testing.T, what string, err error) {
		t.Helper()
		if !errors.Is(err, shm.ErrClosed) {
			t.Errorf("%s: %v, want shm.ErrClosed", what, err)
		}
	}
	checkMutex := func(t *testing.T, m interface {
		Lock() error
		TryLock() (bool, error)
		Unlock() error
		Consistent() error
	}) {
		t.Helper()
		closedErr(t, "Lock", m.Lock())
		_, err := m.TryLock()
		closedErr(t, "TryLock", err)
		closedErr(t, "Unlock", m.Unlock())
		closedErr(t, "Consistent", m.Consistent())
	}
	t.Run("segment closed", func(t *testing.T) {
		name := tempName(t)
		seg, err := openTest(name)
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewMutex(context.Background(), seg, 0)
		if err != nil {
			t.Fatal(err)
		}
		held, err := NewBiasedMutex(context.Background(), seg, offRecB)
		if err != nil {
			t.Fatal(err)
		}
		if err := held.Lock(); err != nil {
			t.Fatal(err)
		}
		if err := held.Unlock(); err != nil { // biased now
			t.Fatal(err)
		}
		if err := held.Lock(); err != nil { // through the bias
			t.Fatal(err)
		}
		if err := m.Lock(); err != nil {
			t.Fatal(err)
		}
		seg.Close() // the last handle: unmapped
		checkMutex(t, m)
		checkMutex(t, held)
		if err := m.Close(); err != nil { // its own first Close
			t.Errorf("Mutex.Close after the segment's: %v", err)
		}
		closedErr(t, "second Mutex.Close", m.Close())
	})
	t.Run("own Close", func(t *testing.T) {
		_, seg := newTestSegment(t)
		m, err := NewMutex(context.Background(), seg, 0)
		if err != nil {
			t.Fatal(err)
		}
		m.Close()
		checkMutex(t, m)
		closedErr(t, "second Close", m.Close())
		b, err := NewBiasedMutex(context.Background(), seg, offRecB)
		if err != nil {
			t.Fatal(err)
		}
		if err := b.Close(); err != nil {
			t.Fatal(err)
		}
		checkMutex(t, b)
		closedErr(t, "BiasedMutex second Close", b.Close())
	})
	t.Run("zero values", func(t *testing.T) {
		checkMutex(t, &Mutex{})
		checkMutex(t, &BiasedMutex{})
		closedErr(t, "zero Mutex Close", (&Mutex{}).Close())
		closedErr(t, "zero BiasedMutex Close", (&BiasedMutex{}).Close())
		var s Semaphore
		closedErr(t, "zero Semaphore Acquire", s.Acquire(ctx, 1))
		closedErr(t, "zero Semaphore Release", s.Release(1))
		closedErr(t, "zero Semaphore Close", s.Close())
		if s.TryAcquire(1) || s.Held() != 0 || s.Available() != 0 {
			t.Error("a zero Semaphore gave a permit or counts")
		}
	})
	t.Run("semaphore", func(t *testing.T) {
		name := tempName(t)
		seg, err := openTest(name)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSemaphore(context.Background(), seg, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Acquire(ctx, 1); err != nil {
			t.Fatal(err)
		}
		seg.Close()
		closedErr(t, "Acquire", s.Acquire(ctx, 1))
		closedErr(t, "Release", s.Release(1))
		if s.TryAcquire(1) || s.Held() != 0 || s.Available() != 0 {
			t.Error("a Semaphore whose segment is closed gave a permit or counts")
		}
		if err := s.Close(); err != nil {
			t.Errorf("first Close after the segment's: %v", err)
		}
		closedErr(t, "second Close", s.Close())
	})
}

// TestAcquireWakerAfterClose (from the eighth adversarial review): the
// callback that wakes Acquire's sleepers when its context ends runs in a
// goroutine of its own, which can run after Acquire returned and the
// caller closed the segment. It must not touch the mapping: before, it
// bumped the release sequence with a store, and faulted (the review
// forced it with gdb). Here it runs on an unmapped segment.
func TestAcquireWakerAfterClose(t *testing.T) {
	name := tempName(t)
	seg, err := openTest(name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := NewSemaphore(context.Background(), seg, 0)
	if err != nil {
		t.Fatal(err)
	}
	waker := s.ctxWaker()
	seg.Close() // the last handle: unmapped
	waker()     // a fault here kills the test binary
}
