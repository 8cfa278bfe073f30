//go:build linux

package ticketshm

import (
	"context"
	"sync/atomic"
)

// Counter is a ticket counter in a shared-memory segment: the total, the
// remaining count and a ledger of which process slot bought each ticket.
// Every buy is all-or-nothing: a buyer killed at any instruction never
// makes a ticket vanish or sells one twice, and Audit proves it.
//
// A Counter is a Store shared by many processes, and safe for concurrent
// use by many goroutines of each: share one *Counter as one shares a
// *sql.DB. A process has one slot in the segment however many times it
// opens it: each Open, Create or OpenOrCreate returns a handle of its own
// on this process's one attachment of the segment, and each handle's
// Close ends that open only. After it, the handle's methods return an
// error wrapping ErrClosed, as a zero Counter's do, and a second Close
// does too: it never closes another open's handle. The last Close in the
// process waits for the calls in flight and unmaps the segment.
//
// A process's goroutines buy one at a time (the ledger's log and the
// lock's bias are the process's): each call takes an in-process lock, a
// sync.Mutex's price (2-3 ns a buy in BenchmarkBuyOneGoroutine, on the
// machine of docs/runs; 8 goroutines sharing a Counter bought faster than
// 8 sharing an int64 under a sync.Mutex, BenchmarkBuySharedCounter). A
// goroutine that buys in a loop and shares the Counter with nobody
// meanwhile can take that lock once for the whole loop: see Buyer.
type Counter struct {
	_ noCopy   // go vet's copylocks reports a copied Counter
	c *counter // nil in a zero Counter
	// closed is this open's, behind a pointer so that a copy of the
	// Counter (which go vet reports) shares it: the copy's Close is this
	// open's Close, and a second Close of either returns ErrClosed. With
	// the flag copied, each copy's Close ended an open, and the second
	// ended another open's. (c is beside it, not behind it: a buy loads
	// both at once, not one after the other.)
	closed *atomic.Bool
}

var _ Store = (*Counter)(nil)

// use is h's attachment, or the error of a zero or closed handle. A call
// that passes it while another goroutine closes h runs as if before that
// Close; if that Close was the process's last, the attachment says so.
func (h *Counter) use() (*counter, error) {
	switch {
	case h == nil || h.c == nil:
		return nil, (*counter)(nil).errClosed()
	case h.closed.Load():
		return nil, h.c.errClosed()
	}
	return h.c, nil
}

// Buy sells one ticket and returns its number (1 for the first ticket
// sold), or an error wrapping ErrSoldOut. It waits for this process's
// other goroutines' calls on the Counter and, Locked, for the lock, until
// ctx is done.
//
// Lock-free, it takes ticket total-r+1 with one CAS of remaining from r
// to r-1. Before the CAS it writes r into its log as the intent; after
// it, it commits the entry. Both are plain stores to this slot's own
// cache lines, so the only line that travels between buyers is
// remaining's. See log_linux.go.
//
// Locked, it sells ticket total-r+1 under the Mutex: through its bias,
// when this process has it, two plain stores and a load each way.
//
// The buy itself is Buyer.Buy's, called from here under this process's
// lock: one more call in between cost 2.5 ns a buy, a third of one
// (docs/runs/session-2026-11-27.txt).
func (h *Counter) Buy(ctx context.Context) (int64, error) {
	if h == nil || h.c == nil || h.closed.Load() {
		_, err := h.use()
		return 0, err
	}
	c := h.c
	if err := c.local.Lock(ctx); err != nil {
		return 0, c.errWaiting(err)
	}
	if !c.open {
		c.local.Unlock()
		return 0, c.errClosed()
	}
	b := Buyer{c: c}
	t, err := b.Buy(ctx)
	c.local.Unlock()
	return t, err
}

// Remaining reports how many tickets are left: one atomic load, once this
// process's other calls on the Counter let it (until ctx is done).
func (h *Counter) Remaining(ctx context.Context) (int64, error) {
	c, err := h.use()
	if err != nil {
		return 0, err
	}
	return c.Remaining(ctx)
}

// Audit checks the counter under its Mutex: it settles the logs of dead
// lock-free buyers, then counts the ledger, and the unflushed logs of live
// ones, against the count. With live lock-free buyers running, their buys
// between CAS and commit show as InFlight (and as Lost until they land);
// audit a quiet counter for an exact answer. It reads every ledger byte:
// O(total). It waits for the lock (a process stopped while it holds it
// holds up Audit), until ctx is done.
//
// A Locked counter also counts each process slot's sales as they are made
// (Sales): a ticket sold twice, by two processes that both believed they
// held the lock, has one ledger byte but two sales, and shows as
// DoubleSold. A lock-free sale takes its ticket with one CAS of one word,
// which cannot succeed twice; there Sales is 0.
func (h *Counter) Audit(ctx context.Context) (Audit, error) {
	c, err := h.use()
	if err != nil {
		return Audit{}, err
	}
	return c.Audit(ctx)
}

// Mode is the counter's mode (0 for a zero Counter).
func (h *Counter) Mode() Mode {
	if h == nil || h.c == nil {
		return 0
	}
	return h.c.mode
}

// Total is the number of tickets the counter was created with (0 for a
// zero Counter).
func (h *Counter) Total() int64 {
	if h == nil || h.c == nil {
		return 0
	}
	return h.c.total
}

// Slot is this process's slot in the counter's ledger (-1 for a zero
// Counter).
func (h *Counter) Slot() int {
	if h == nil || h.c == nil {
		return -1
	}
	return h.c.slot
}

// Populate faults in every page of the counter's segment in this process
// (see shm.Segment.Populate): the ledger has a byte per ticket, and each
// untouched page of it costs the buy that reaches it a page fault. It
// waits for this process's other calls on the Counter, until ctx is done.
func (h *Counter) Populate(ctx context.Context) error {
	c, err := h.use()
	if err != nil {
		return err
	}
	return c.Populate(ctx)
}

// Buyer takes the Counter for this goroutine until the Buyer's Close,
// waiting while another goroutine of this process uses it, until ctx is
// done. See Buyer.
func (h *Counter) Buyer(ctx context.Context) (*Buyer, error) {
	c, err := h.use()
	if err != nil {
		return nil, err
	}
	return c.Buyer(ctx)
}

// Close ends this open of the counter; a second Close of the same handle
// returns an error wrapping ErrClosed. The process's last open to close
// waits for the calls in flight (and an open Buyer's Close), writes this
// process's lock-free buys into the ledger and unmaps the counter. The
// segment stays; Remove deletes it.
func (h *Counter) Close() error {
	if h == nil || h.c == nil {
		return (*counter)(nil).errClosed()
	}
	if !h.closed.CompareAndSwap(false, true) {
		return h.c.errClosed()
	}
	return h.c.Close()
}
