//go:build linux

package ticketshm

import "context"

// BuyHalfway does the first half of a buy and stops, as a buyer killed at
// the worst instruction would: Locked, it holds the Mutex and has written
// the ledger but not remaining; LockFree, it has CASed remaining but not
// committed it in its log. Tests kill the process right after.
func BuyHalfway(h *Counter) {
	c := h.c
	if c.mode == LockFree {
		r := c.remaining.Load()
		c.log.intend(r)
		c.remaining.CompareAndSwap(r, r-1)
		return
	}
	if err := c.mu.LockContext(context.Background()); err != nil {
		panic(err)
	}
	r := c.remaining.Load()
	c.owners[c.total-r] = byte(c.slot + 1)
}

// FlushHalfway writes half of this slot's logged tickets into the ledger
// and stops, as a buyer killed mid-flush would.
func FlushHalfway(h *Counter) {
	c := h.c
	for i := range c.log.n / 2 {
		c.owners[c.total-c.log.entries[i]] = byte(c.slot + 1)
	}
}

// LogCap is how many lock-free buys a slot logs before it flushes.
const LogCap = logCap

// The layout, for tests that write into a Counter segment.
const (
	OffTotal     = offTotal
	OffRemaining = offRemaining
	OffMode      = offMode
	OffAreas     = offAreas
	AreaSize     = areaSize
	OffLogCount  = 16 // in an area
	OffLog       = offLog
	OffOwners    = offOwners
)

// SetSettleHook sets the hook settleDead calls before it looks at each
// slot (nil: none).
func SetSettleHook(fn func(slot int)) { settleHook = fn }

// Intend, CASed and Commit are a lock-free buy's three steps, for tests
// that stop a buyer between them.
func Intend(h *Counter) int64 {
	c := h.c
	r := c.remaining.Load()
	c.log.intend(r)
	return r
}
func CASed(h *Counter, r int64) bool { return h.c.remaining.CompareAndSwap(r, r-1) }

// KeepForOrder keeps recordSale in the test binary as a function of its
// own, for TestStoreOrder to disassemble.
var KeepForOrder = []any{recordSale}

// Closing reports whether the last Close of c has begun and not ended.
func Closing(h *Counter) bool {
	counters.mu.Lock()
	defer counters.mu.Unlock()
	for _, e := range counters.m {
		if e.c == h.c {
			return e.done != nil
		}
	}
	return false
}

// Making reports whether an open of some Counter is making it now.
func Making() bool {
	counters.mu.Lock()
	defer counters.mu.Unlock()
	for _, e := range counters.m {
		if e.c == nil {
			return true
		}
	}
	return false
}

// NextSales is nextSales, for TestNextSales.
var NextSales = nextSales
