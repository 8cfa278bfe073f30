//go:build linux

package ticketshm_test

import (
	"context"
	"errors"
	"io/fs"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/ticketshm"
)

// TestOpenVocabulary (issue 17): Open must find the Counter, Create must
// not, OpenOrCreate takes either; mismatches are said in tickets and
// modes.
func TestOpenVocabulary(t *testing.T) {
	ctx := context.Background()
	name := storeName(t, "shm-mutex")
	if _, err := ticketshm.Open(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open of a missing Counter: %v, want fs.ErrNotExist", err)
	}
	c, err := ticketshm.Create(ctx, name, 100, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.Mode() != ticketshm.Locked || c.Total() != 100 {
		t.Fatalf("Create with mode 0: %v, %d tickets; want Locked, 100", c.Mode(), c.Total())
	}
	if _, err := ticketshm.Create(ctx, name, 100, 0); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create of an existing Counter: %v, want fs.ErrExist", err)
	}
	if _, err := c.Buy(ctx); err != nil {
		t.Fatal(err)
	}
	o, err := ticketshm.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if r, _ := o.Remaining(ctx); o.Total() != 100 || r != 99 {
		t.Fatalf("Open: %d tickets, %d remaining; want 100, 99", o.Total(), r)
	}
	oc, err := ticketshm.OpenOrCreate(ctx, name, 100, ticketshm.Locked)
	if err != nil {
		t.Fatal(err)
	}
	oc.Close()
	_, err = ticketshm.OpenOrCreate(ctx, name, 101, 0)
	if !errors.Is(err, ticketshm.ErrTotalMismatch) || !strings.Contains(err.Error(), "it has 100 tickets, want 101") {
		t.Fatalf("OpenOrCreate with another total: %v, want ErrTotalMismatch in tickets", err)
	}
	if _, err := ticketshm.OpenOrCreate(ctx, name, 100, ticketshm.LockFree); !errors.Is(err, ticketshm.ErrModeMismatch) {
		t.Fatalf("OpenOrCreate with another mode: %v, want ErrModeMismatch", err)
	}
	if _, err := ticketshm.Create(ctx, storeName(t, "shm-mutex"), 0, 0); err == nil {
		t.Fatal("Create of 0 tickets: nil")
	}
	// Remove, in this package's words: the name goes, the open handles
	// sell on.
	if err := ticketshm.Remove(name); err != nil {
		t.Fatal(err)
	}
	if _, err := ticketshm.Open(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Open after Remove: %v, want fs.ErrNotExist", err)
	}
	if _, err := o.Buy(ctx); err != nil {
		t.Fatalf("Buy through an open of a removed Counter: %v", err)
	}
}
