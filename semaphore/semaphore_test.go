//go:build linux

package semaphore

import (
	"context"
	"errors"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

func newTestSemaphore(t *testing.T) (string, *Semaphore) {
	t.Helper()
	name := tempName(t)
	seg, err := openTest(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { seg.Close() })
	s, err := NewSemaphore(context.Background(), seg, 0)
	if err != nil {
		t.Fatal(err)
	}
	return name, s
}

func TestSemaphoreBasics(t *testing.T) {
	_, s := newTestSemaphore(t)
	ctx := context.Background()
	if s.Capacity() != testPerms || s.Available() != testPerms {
		t.Fatalf("capacity %d, available %d", s.Capacity(), s.Available())
	}
	if err := s.Acquire(ctx, 2); err != nil {
		t.Fatal(err)
	}
	if s.TryAcquire(2) {
		t.Fatal("TryAcquire(2) with 1 permit left succeeded")
	}
	if !s.TryAcquire(1) {
		t.Fatal("TryAcquire(1) with 1 permit left failed")
	}
	if s.Held() != 3 || s.Available() != 0 {
		t.Fatalf("held %d, available %d", s.Held(), s.Available())
	}
	ctx2, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := s.Acquire(ctx2, 1); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire with none left: %v, want DeadlineExceeded", err)
	}
	if s.Held() != 3 || s.Available() != 0 {
		t.Fatalf("a failed Acquire changed the books: held %d, available %d", s.Held(), s.Available())
	}
	if err := s.Release(3); err != nil {
		t.Fatal(err)
	}
	func() {
		defer func() {
			if r := recover(); r != "semaphore: released more than held" {
				t.Fatalf("over-release recovered %v", r)
			}
		}()
		s.Release(1)
	}()
}

// TestSemaphoreBound: 6 processes share 3 permits; never more than 3 hold
// one at once.
func TestSemaphoreBound(t *testing.T) {
	name, s := newTestSemaphore(t)
	var ps []*testproc.Proc
	for range 6 {
		ps = append(ps, testproc.Start(t, "sem-loop", name, "300"))
	}
	for _, p := range ps {
		p.MustExit()
	}
	most := view(s.Segment(), offMax).Load()
	if most > testPerms || most < 1 {
		t.Fatalf("at most %d holders at once, want 1..%d", most, testPerms)
	}
	if s.Available() != testPerms {
		t.Fatalf("%d permits available after everyone released, want %d", s.Available(), testPerms)
	}
	t.Logf("at most %d holders at once", most)
}

// TestSemaphoreDeadHolders: holders SIGKILLed keep no permits.
func TestSemaphoreDeadHolders(t *testing.T) {
	name, s := newTestSemaphore(t)
	a := testproc.Start(t, "sem-hold", name, "2")
	a.Expect("held")
	b := testproc.Start(t, "sem-hold", name, "1")
	b.Expect("held")
	if s.TryAcquire(1) {
		t.Fatal("TryAcquire succeeded with every permit held by live processes")
	}
	a.Kill()
	a.Wait()
	// The next Acquire that finds too few permits reclaims the dead
	// holder's two.
	if err := s.Acquire(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	b.Kill()
	b.Wait()
	if err := s.Acquire(context.Background(), 1); err != nil {
		t.Fatal(err)
	}
	if s.Held() != 3 {
		t.Fatalf("held %d, want 3", s.Held())
	}
	if err := s.Release(3); err != nil {
		t.Fatal(err)
	}
}

// TestSemaphoreKillStorm: processes loop acquire/release while all are
// SIGKILLed at random moments, 20 times over. A holder killed inside its
// loop leaves the test's own holder count high, so the bound is checked
// afterwards: every permit must be back, and 6 processes sharing the
// repaired semaphore must never be more than 3 at once.
func TestSemaphoreKillStorm(t *testing.T) {
	name, s := newTestSemaphore(t)
	for range 20 {
		var ps []*testproc.Proc
		for range 4 {
			ps = append(ps, testproc.Start(t, "sem-loop", name, "100000"))
		}
		time.Sleep(time.Duration(rand.IntN(20)) * time.Millisecond)
		for _, p := range ps {
			p.Kill()
			p.Wait()
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := s.Acquire(ctx, testPerms); err != nil {
		t.Fatalf("all holders dead, but Acquire(%d): %v", testPerms, err)
	}
	if err := s.Release(testPerms); err != nil {
		t.Fatal(err)
	}
	view(s.Segment(), offInside).Store(0)
	view(s.Segment(), offMax).Store(0)
	var ps []*testproc.Proc
	for range 6 {
		ps = append(ps, testproc.Start(t, "sem-loop", name, "300"))
	}
	for _, p := range ps {
		p.MustExit()
	}
	if most := view(s.Segment(), offMax).Load(); most > testPerms {
		t.Fatalf("%d holders at once after the storm, want at most %d", most, testPerms)
	}
	if s.Available() != testPerms {
		t.Fatalf("%d permits available, want %d", s.Available(), testPerms)
	}
}
