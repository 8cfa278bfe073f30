//go:build linux

package ticketshm_test

import (
	"context"
	"errors"
	"testing"

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
	_, audit := c.Audit()
	for name, err := range map[string]error{"Buy": buy, "Remaining": rem, "Audit": audit, "Populate": c.Populate(), "Close": c.Close()} {
		if !errors.Is(err, ticketshm.ErrClosed) || !errors.Is(err, shm.ErrClosed) {
			t.Errorf("%s on a closed or zero Counter: %v, want ErrClosed", name, err)
		}
	}
}
