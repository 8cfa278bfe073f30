//go:build linux

package ticketshm_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

// TestOpenDuringLastClose (review): an Open while the last Close tears the
// Counter down waits for it and makes a new Counter; before, it made a
// second BiasedMutex of the record and failed with semaphore.ErrInUse.
func TestOpenDuringLastClose(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []ticketshm.Mode{ticketshm.Locked, ticketshm.LockFree} {
		name := storeName(t, "shm-mutex")
		c, err := ticketshm.Create(ctx, name, 1000, mode)
		if err != nil {
			t.Fatal(err)
		}
		b, err := c.Buyer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		closed := make(chan error)
		go func() { closed <- c.Close() }() // waits for the Buyer
		for !ticketshm.Closing(c) {
			time.Sleep(time.Millisecond)
		}
		opened := make(chan error)
		var again *ticketshm.Counter
		go func() {
			var err error
			again, err = ticketshm.Open(ctx, name)
			opened <- err
		}()
		if _, err := b.Buy(ctx); err != nil {
			t.Fatal(err)
		}
		b.Close()
		if err := <-closed; err != nil {
			t.Fatal(err)
		}
		if err := <-opened; err != nil {
			t.Fatalf("%v: Open during the last Close: %v", mode, err)
		}
		if again == c {
			t.Fatalf("%v: Open during the last Close returned the closing Counter", mode)
		}
		if n, err := again.Buy(ctx); n != 2 || err != nil {
			t.Fatalf("%v: Buy on the new Counter: %d, %v; want ticket 2", mode, n, err)
		}
		again.Close()
	}
}

// TestOpenCloseLoop (review): goroutines that each Open, Buy and Close in
// a loop, as per-request handlers do, never fail.
func TestOpenCloseLoop(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []ticketshm.Mode{ticketshm.Locked, ticketshm.LockFree} {
		name := storeName(t, "shm-mutex")
		c, err := ticketshm.Create(ctx, name, 1_000_000, mode)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range 300 {
					c, err := ticketshm.Open(ctx, name)
					if err != nil {
						t.Errorf("%v: Open: %v", mode, err)
						return
					}
					if _, err := c.Buy(ctx); err != nil {
						t.Errorf("%v: Buy: %v", mode, err)
					}
					if err := c.Close(); err != nil {
						t.Errorf("%v: Close: %v", mode, err)
					}
				}
			}()
		}
		wg.Wait()
	}
}

// TestOpenNotBlockedByAnother (review): an Open that waits for another
// process's lock on one Counter does not hold up this process's opens and
// closes of others, and honours its own deadline. Before, it held a
// process-wide lock: a Create of another Counter waited for the holder.
func TestOpenNotBlockedByAnother(t *testing.T) {
	ctx := context.Background()
	x := storeName(t, "shm-mutex")
	c, err := ticketshm.Create(ctx, x, 10, ticketshm.Locked)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	holder := testproc.Start(t, "mid", x, "locked") // holds x's lock until killed
	holder.Expect("mid")
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	if _, err := ticketshm.Open(short, x); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open of a Counter whose lock another process holds, short deadline: %v", err)
	}
	waiting := make(chan error)
	go func() {
		c, err := ticketshm.Open(ctx, x) // waits for the holder
		if err == nil {
			c.Close()
		}
		waiting <- err
	}()
	// While that Open waits, another Counter opens and closes. The
	// deadline only guards against the old behaviour: it is never met
	// unless the Create waits for the holder.
	guard, cancel2 := context.WithTimeout(ctx, time.Minute)
	defer cancel2()
	for range 3 {
		y, err := ticketshm.Create(guard, storeName(t, "shm-mutex"), 10, ticketshm.Locked)
		if err != nil {
			t.Fatalf("Create of another Counter while an Open waits: %v", err)
		}
		if err := y.Close(); err != nil {
			t.Fatal(err)
		}
	}
	holder.Kill()
	holder.Wait()
	if err := <-waiting; err != nil {
		t.Fatalf("the waiting Open, once the holder died: %v", err)
	}
}

// TestFailedOpenLetsTheNextMake (review, round 2): the open that makes a
// Counter gives up (its ctx ends while another process holds the lock)
// while a second open waits for it; the second then makes the Counter.
// Before, the first left its BiasedMutex on the record and the second
// failed with semaphore.ErrInUse.
func TestFailedOpenLetsTheNextMake(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []ticketshm.Mode{ticketshm.Locked, ticketshm.LockFree} {
		x := storeName(t, "shm-mutex")
		c, err := ticketshm.Create(ctx, x, 10, mode)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		holder := testproc.Start(t, "hold-counter", x) // holds x's lock until killed
		holder.Expect("holding")
		first := make(chan error)
		short, cancel := context.WithCancel(ctx)
		go func() {
			_, err := ticketshm.Open(short, x)
			first <- err
		}()
		for !ticketshm.Making() {
			time.Sleep(time.Millisecond)
		}
		second := make(chan error)
		go func() {
			c, err := ticketshm.Open(ctx, x)
			if err == nil {
				_, err = c.Buy(ctx)
				c.Close()
			}
			second <- err
		}()
		cancel()
		if err := <-first; !errors.Is(err, context.Canceled) {
			t.Fatalf("%v: the first open: %v, want context.Canceled", mode, err)
		}
		holder.Kill()
		holder.Wait()
		if err := <-second; err != nil {
			t.Fatalf("%v: the second open, after the first gave up: %v", mode, err)
		}
	}
}

// TestOpenHonoursCtxDuringClaim (review, round 3): an Open that waits for
// another process's slot claim in progress (a claimer stopped mid-claim)
// returns when its ctx ends; before, the BiasedMutex's own claim waited
// without a deadline, for ever.
func TestOpenHonoursCtxDuringClaim(t *testing.T) {
	ctx := context.Background()
	x := storeName(t, "shm-mutex")
	c, err := ticketshm.Create(ctx, x, 10, ticketshm.LockFree)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	path, _ := shm.Path(x)
	claimer := testproc.Start(t, "hold-claim", path)
	claimer.Expect("claiming")
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := ticketshm.Open(short, x); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Open while another process claims a slot, short deadline: %v", err)
	}
	claimer.Kill()
	claimer.Wait()
	c, err = ticketshm.Open(ctx, x)
	if err != nil {
		t.Fatalf("Open once the claimer died: %v", err)
	}
	c.Close()
}
