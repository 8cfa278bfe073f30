//go:build linux

package ticketshm_test

import (
	"context"
	"errors"
	"reflect"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

// TestCounterUseAfterClose (issue 16, item 7): after the last Close, and
// on a zero Counter, Buy, Remaining, Audit, Populate and Close return an
// error wrapping ErrClosed (shm.ErrClosed). Before the fix Buy after Close
// died with SIGSEGV.
func TestCounterUseAfterClose(t *testing.T) {
	ctx := context.Background()
	name := "ticketshm.test.close." + t.Name()
	t.Cleanup(func() { shm.Remove(name) })
	for _, mode := range []ticketshm.Mode{ticketshm.Locked, ticketshm.LockFree} {
		c, err := ticketshm.OpenOrCreate(ctx, name, 100, mode)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ticketshm.Open(context.Background(), name) // the same Counter, a second open
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.Buy(ctx); err != nil {
			t.Fatal(err)
		}
		c.Close()
		if _, err := again.Buy(ctx); err != nil {
			t.Fatalf("Buy with one open left: %v", err)
		}
		again.Close()
		check(t, c)
		shm.Remove(name)
	}
	check(t, &ticketshm.Counter{})
}

func check(t *testing.T, c *ticketshm.Counter) {
	t.Helper()
	ctx := context.Background()
	_, buy := c.Buy(ctx)
	_, rem := c.Remaining(ctx)
	_, audit := c.Audit(context.Background())
	for name, err := range map[string]error{"Buy": buy, "Remaining": rem, "Audit": audit, "Populate": c.Populate(context.Background()), "Close": c.Close()} {
		if !errors.Is(err, ticketshm.ErrClosed) || !errors.Is(err, shm.ErrClosed) {
			t.Errorf("%s on a closed or zero Counter: %v, want ErrClosed", name, err)
		}
	}
}

// twoOpens creates a Locked Counter of 100 tickets and opens it again:
// two handles on this process's one attachment.
func twoOpens(t *testing.T) (c1, c2 *ticketshm.Counter) {
	t.Helper()
	ctx := context.Background()
	name := storeName(t, "shm-mutex")
	c1, err := ticketshm.Create(ctx, name, 100, ticketshm.Locked)
	if err != nil {
		t.Fatal(err)
	}
	if c2, err = ticketshm.Open(ctx, name); err != nil {
		t.Fatal(err)
	}
	return c1, c2
}

// TestCloseTwiceLeavesOtherOpens (a new user's trial): each open is a
// handle of its own, so a second Close of one returns ErrClosed and the
// process's other opens go on buying. Before, Open returned the same
// *Counter and the second Close ended another open's.
func TestCloseTwiceLeavesOtherOpens(t *testing.T) {
	ctx := context.Background()
	c1, c2 := twoOpens(t)
	if c1 == c2 {
		t.Fatal("two opens returned the same *Counter")
	}
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c1.Close(); !errors.Is(err, ticketshm.ErrClosed) {
		t.Fatalf("a second Close: %v, want ErrClosed", err)
	}
	check(t, c1)
	if _, err := c2.Buy(ctx); err != nil {
		t.Fatalf("the other open, after the first was closed twice: %v", err)
	}
	if c1.Slot() != c2.Slot() || c1.Total() != 100 || c1.Mode() != ticketshm.Locked {
		t.Errorf("Slot %d and %d, Total %d, Mode %v: want one slot, 100, Locked", c1.Slot(), c2.Slot(), c1.Total(), c1.Mode())
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
	check(t, c2)
}

// TestCopyIsTheSameOpen (review, round 3): a copy of a Counter (which go
// vet reports) is the same open: its Close closes the original, a second
// Close of either says ErrClosed, and other opens go on. Before, each
// copy's Close ended an open, and the second ended another open's.
func TestCopyIsTheSameOpen(t *testing.T) {
	ctx := context.Background()
	c1, c2 := twoOpens(t)
	cp := new(ticketshm.Counter)
	reflect.ValueOf(cp).Elem().Set(reflect.ValueOf(c1).Elem()) // *cp = *c1, unseen by vet
	if err := c1.Close(); err != nil {
		t.Fatal(err)
	}
	if err := cp.Close(); !errors.Is(err, ticketshm.ErrClosed) {
		t.Fatalf("Close of a copy of a closed open: %v, want ErrClosed", err)
	}
	if _, err := c2.Buy(ctx); err != nil {
		t.Fatalf("the other open, after an open and its copy were closed: %v", err)
	}
	if err := c2.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestAuditHonoursCtx (a new user's trial): Audit and Populate take a
// ctx; with another process holding the lock for good (stopped, or as
// here, asleep), Audit returns when ctx ends, and Close then does not
// wait for it. Before, Audit waited without a deadline, and Close behind
// it.
func TestAuditHonoursCtx(t *testing.T) {
	ctx := context.Background()
	name := storeName(t, "shm-mutex")
	c, err := ticketshm.Create(ctx, name, 10, ticketshm.Locked)
	if err != nil {
		t.Fatal(err)
	}
	holder := testproc.Start(t, "hold-counter", name) // holds the lock until killed
	holder.Expect("holding")
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := c.Audit(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Audit while another process holds the lock: %v, want DeadlineExceeded", err)
	}
	b, err := c.Buyer(ctx) // this process's other calls now wait for the Buyer's Close
	if err != nil {
		t.Fatal(err)
	}
	short, cancel = context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if err := c.Populate(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Populate while a Buyer holds the Counter: %v, want DeadlineExceeded", err)
	}
	b.Close()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	holder.Kill()
	holder.Wait()
}
