//go:build linux

package ticketshm

import (
	"context"
	"fmt"
)

// A Buyer is a Counter held by one goroutine for a run of buys: the
// in-process lock that every Counter call takes is taken once, by
// Counter.Buyer, and released by the Buyer's Close. Meanwhile this
// process's other calls on the Counter wait (and honour their contexts),
// and other processes buy as before.
//
// It is the shape of sql.DB.Conn: the Counter is safe for concurrent use,
// a Buyer is not (the race detector reports two goroutines in one); it
// saves 2-3 ns a buy on the machine of docs/runs, a third of a locked buy.
// cmd/bench's buyers, each a process with one goroutine, buy through one.
//
// The goroutine that holds a Buyer must not call the Counter's own methods
// meanwhile, nor open the Counter again: they wait for the Buyer's Close,
// which that goroutine would never reach (until their ctx is done; Close
// waits without a deadline, and an Open during the last Close waits for
// it). A Buyer must not be copied.
type Buyer struct {
	_ noCopy
	c *counter // nil once closed
}

// noCopy makes go vet's copylocks check report a copied Buyer.
type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

var _ Store = (*Buyer)(nil)

// Buyer takes the Counter for this goroutine until the Buyer's Close,
// waiting while another goroutine of this process uses it, until ctx is
// done.
func (c *counter) Buyer(ctx context.Context) (*Buyer, error) {
	if err := c.local.Lock(ctx); err != nil {
		return nil, c.errWaiting(err)
	}
	if !c.open {
		c.local.Unlock()
		return nil, c.errClosed()
	}
	return &Buyer{c: c}, nil
}

// Remaining is Counter.Remaining.
func (b *Buyer) Remaining(context.Context) (int64, error) {
	if b.c == nil {
		return 0, errBuyerClosed()
	}
	return b.c.remaining.Load(), nil
}

// Close gives the Counter back to this process's other goroutines; it
// does not close the Counter. A second Close returns an error wrapping
// ErrClosed.
func (b *Buyer) Close() error {
	if b.c == nil {
		return errBuyerClosed()
	}
	c := b.c
	b.c = nil
	c.local.Unlock()
	return nil
}

func errBuyerClosed() error {
	return fmt.Errorf("ticketshm: Buyer used after its Close: %w", ErrClosed)
}
