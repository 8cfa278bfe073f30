//go:build linux

package ticketshm

import "context"

// BuyHalfway does the first half of a buy and stops, as a buyer killed at
// the worst instruction would: Locked, it holds the Mutex and has written
// the ledger but not remaining; LockFree, it has CASed remaining but not
// written the ledger. Tests kill the process right after.
func BuyHalfway(c *Counter) {
	if c.mode == LockFree {
		r := c.remaining.Load()
		c.intent.Store(r)
		c.remaining.CompareAndSwap(r, r-1)
		return
	}
	if err := c.mu.LockContext(context.Background()); err != nil {
		panic(err)
	}
	r := c.remaining.Load()
	c.owners[c.total-r] = byte(c.slot + 1)
}
