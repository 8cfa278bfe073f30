//go:build linux

package semaphore

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/shm"
)

// TestCloseRacesCalls (issue 16, item 7): the segment's last Close in this
// process races calls in flight on its Mutex and Semaphore in other
// goroutines, some of them asleep on the futex. (Not a BiasedMutex: one
// goroutine at a time, and the segment's Close is one.) Every call returns
// (a waiter at its next wake-up), with nil, an error wrapping
// shm.ErrClosed, or what an abandoned lock gives; nothing faults. Before
// the segment's range was retired instead of unmapped, a call that had
// passed its closed check touched unmapped memory: SIGSEGV, which kills
// the test binary.
func TestCloseRacesCalls(t *testing.T) {
	ctx := context.Background()
	allowed := func(err error) bool {
		return err == nil || errors.Is(err, shm.ErrClosed)
	}
	for round := range 40 {
		seg, err := openTest(tempName(t))
		if err != nil {
			t.Fatal(err)
		}
		m, err := NewMutex(context.Background(), seg, offRecB)
		if err != nil {
			t.Fatal(err)
		}
		s, err := NewSemaphore(context.Background(), seg, 0)
		if err != nil {
			t.Fatal(err)
		}
		errs := make(chan error, 64)
		report := func(what string, err error) bool {
			if !allowed(err) {
				errs <- err
			}
			return errors.Is(err, shm.ErrClosed)
		}
		var wg sync.WaitGroup
		for range 3 {
			wg.Add(2)
			go func() { // the Mutex, by Lock and by TryLock
				defer wg.Done()
				for i := 0; ; i++ {
					var err error
					if i%2 == 0 {
						err = m.Lock()
					} else if ok, terr := m.TryLock(); !ok {
						err = terr
						if err == nil {
							continue
						}
					}
					if errors.Is(err, ErrOwnerDead) {
						err = m.Consistent()
					}
					if report("Lock", err) {
						return
					}
					if err == nil && report("Unlock", m.Unlock()) {
						return
					}
				}
			}()
			go func() { // the Semaphore: 2 of its 3 permits, so others sleep
				defer wg.Done()
				for {
					err := s.Acquire(ctx, 2)
					if report("Acquire", err) {
						return
					}
					if err == nil && report("Release", s.Release(2)) {
						return
					}
				}
			}()
		}
		time.Sleep(time.Duration(round%5) * 200 * time.Microsecond) // a spread of moments, not a timing
		if err := seg.Close(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { wg.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			t.Fatalf("round %d: calls still in flight a minute after the segment's Close", round)
		}
		close(errs)
		for err := range errs {
			t.Errorf("round %d: %v", round, err)
		}
	}
}

// TestDoAcrossClose (from the ninth adversarial review): the segment's
// last Close waits for a Do whose fn is running, instead of abandoning
// the lock under it (another process would get in while fn still
// writes); the Do then returns an error wrapping shm.ErrClosed, not
// ErrNotOwner.
func TestDoAcrossClose(t *testing.T) {
	seg, err := openTest(tempName(t))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewMutex(context.Background(), seg, offRecB)
	if err != nil {
		t.Fatal(err)
	}
	inside, release := make(chan struct{}), make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- m.Do(context.Background(), func(bool) error {
			close(inside)
			<-release
			return nil
		})
	}()
	<-inside
	closed := make(chan error, 1)
	go func() { closed <- seg.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while Do's fn ran", err)
	case <-time.After(100 * time.Millisecond): // a wait that must not end: no timing is measured
	}
	close(release)
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil && !errors.Is(err, shm.ErrClosed) {
		t.Errorf("Do across the Close: %v, want nil or ErrClosed", err)
	}
}

// TestNewMutexRacesClose (from the ninth adversarial review): NewMutex
// racing the segment's last Close gives an error wrapping ErrClosed, or
// a Mutex whose calls say ErrClosed; never one that works on the retired
// range while another process holds the real lock.
func TestNewMutexRacesClose(t *testing.T) {
	for range 600 {
		seg, err := openTest(tempName(t))
		if err != nil {
			t.Fatal(err)
		}
		got := make(chan *Mutex, 1)
		go func() {
			m, err := NewMutex(context.Background(), seg, offRecB)
			if err != nil && !errors.Is(err, shm.ErrClosed) {
				t.Errorf("NewMutex: %v", err)
			}
			got <- m
		}()
		seg.Close()
		if m := <-got; m != nil {
			if ok, err := m.TryLock(); ok || !errors.Is(err, shm.ErrClosed) {
				t.Fatalf("a Mutex made across the Close: TryLock (%v, %v), want ErrClosed", ok, err)
			}
		}
	}
}
