//go:build linux

package semaphore

import (
	"context"
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// TestOpenVocabulary (issue 17): Open* must find the segment, Create*
// must not, OpenOrCreate* take either; a Semaphore's capacity mismatch is
// said in permits.
func TestOpenVocabulary(t *testing.T) {
	ctx := context.Background()
	name := tempName(t)
	if _, err := OpenMutex(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenMutex of a missing lock: %v, want fs.ErrNotExist", err)
	}
	m, err := CreateMutex(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := CreateMutex(ctx, name); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateMutex of an existing lock: %v, want fs.ErrExist", err)
	}
	for _, open := range []func(context.Context, string) (*Mutex, error){OpenMutex, OpenOrCreateMutex} {
		o, err := open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		o.Close()
	}

	sname := tempName(t)
	if _, err := OpenSemaphore(ctx, sname); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenSemaphore of a missing one: %v, want fs.ErrNotExist", err)
	}
	if _, err := CreateSemaphore(ctx, sname, 0); err == nil {
		t.Fatal("CreateSemaphore of 0 permits: nil")
	}
	s, err := CreateSemaphore(ctx, sname, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := CreateSemaphore(ctx, sname, 2); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateSemaphore of an existing one: %v, want fs.ErrExist", err)
	}
	if _, err := OpenOrCreateSemaphore(ctx, sname, 3); !errors.Is(err, ErrCapacityMismatch) {
		t.Fatalf("OpenOrCreateSemaphore with 3 permits of a 2: %v, want ErrCapacityMismatch", err)
	}
	o, err := OpenSemaphore(ctx, sname)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Capacity() != 2 {
		t.Fatalf("OpenSemaphore: capacity %d, want 2", o.Capacity())
	}
	// More permits than another process made it with: an error at once,
	// not a panic (before) and not a wait for ctx.
	if err := o.Acquire(ctx, 3); !errors.Is(err, ErrCapacity) {
		t.Fatalf("Acquire of 3 permits of a 2: %v, want ErrCapacity", err)
	}
	if o.TryAcquire(3) || o.Available() != 2 {
		t.Fatalf("TryAcquire of 3 permits of a 2 succeeded, or took some: %d left", o.Available())
	}
	// Remove, in this package's words: the name goes, the handles stay.
	if err := Remove(sname); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenSemaphore(ctx, sname); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenSemaphore after Remove: %v, want fs.ErrNotExist", err)
	}
	if err := o.Acquire(ctx, 1); err != nil {
		t.Fatalf("Acquire on a handle of a removed semaphore: %v", err)
	}
	o.Release(1)
}

// TestAttachNotHeldUpByAClaim: a NewMutex that waits for another
// process's slot claim in progress on one segment (here without a
// deadline: until the claimer is gone) does not hold up this process's
// attaches of other segments. Before, it waited holding the process-wide
// attachments lock, and every NewMutex, OpenMutex and Counter open of any
// segment waited with it.
func TestAttachNotHeldUpByAClaim(t *testing.T) {
	ctx := context.Background()
	x := tempName(t)
	seg, err := openTest(x)
	if err != nil {
		t.Fatal(err)
	}
	claimer := testproc.Start(t, "hold-claim", seg.Path())
	claimer.Expect("claiming")
	stuck := make(chan error, 1)
	go func() {
		m, err := NewMutex(context.Background(), seg, 0) // waits for the claimer
		if err == nil {
			m.Close()
		}
		stuck <- err
	}()
	// While that waits: another segment attaches. The minute guards
	// against the old behaviour only (it waited until the claimer died);
	// it is never reached otherwise.
	others := make(chan error, 1)
	go func() {
		for range 3 {
			m, err := CreateMutex(ctx, tempName(t))
			if err != nil {
				others <- err
				return
			}
			m.Close()
		}
		others <- nil
	}()
	select {
	case err := <-others:
		if err != nil {
			t.Fatalf("CreateMutex of another segment while a NewMutex waits for a claim: %v", err)
		}
	case <-time.After(time.Minute):
		claimer.Kill() // lets both go, so the test can end
		t.Fatal("CreateMutex of another segment waited for another segment's claim")
	}
	claimer.Kill()
	claimer.Wait()
	if err := <-stuck; err != nil {
		t.Fatalf("the waiting NewMutex, once the claimer died: %v", err)
	}
	seg.Close()
}

// TestNewHonoursCtxDuringClaim: NewMutex, NewBiasedMutex and NewSemaphore
// wait for another process's slot claim in progress (a claimer stopped
// mid-claim) only until their ctx ends, and succeed once it is gone.
// Before they took no ctx and waited for ever.
func TestNewHonoursCtxDuringClaim(t *testing.T) {
	x := tempName(t)
	seg, err := shm.Create(x, SemaphoreSize, testTag, func(s *shm.Segment) error { return InitSemaphore(s, 0, 2) })
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	claimer := testproc.Start(t, "hold-claim", seg.Path())
	claimer.Expect("claiming")
	news := map[string]func(context.Context) error{
		"NewMutex": func(ctx context.Context) error {
			m, err := NewMutex(ctx, seg, 0)
			if err == nil {
				m.Close()
			}
			return err
		},
		"NewBiasedMutex": func(ctx context.Context) error {
			_, err := NewBiasedMutex(ctx, seg, 0)
			return err
		},
		"NewSemaphore": func(ctx context.Context) error {
			_, err := NewSemaphore(ctx, seg, 0)
			return err
		},
	}
	for name, f := range news {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := f(ctx)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("%s while another process claims a slot, short deadline: %v", name, err)
		}
	}
	claimer.Kill()
	claimer.Wait()
	if err := news["NewSemaphore"](context.Background()); err != nil {
		t.Errorf("NewSemaphore once the claimer died: %v", err)
	}
}
