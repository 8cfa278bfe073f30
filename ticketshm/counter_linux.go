//go:build linux

package ticketshm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

// The Counter record; doc.go has it as a table.
const (
	offTotal     = semaphore.MutexSize
	offRemaining = offTotal + 8
	offMode      = offTotal + 16
	offIntents   = semaphore.MutexSize + 64
	intentStride = 64 // a cache line each: buyers in different slots never share one
	offOwners    = offIntents + intentStride*semaphore.MaxProcs
)

var _ [offOwners - 9856]struct{} // doc.go's table
var _ [9856 - offOwners]struct{}

// Counter is a ticket counter in a shared-memory segment: the total, the
// remaining count and a ledger of which process slot bought each ticket.
// Every buy is all-or-nothing: a buyer killed at any instruction never
// makes a ticket vanish or sells one twice, and Audit proves it.
//
// A Counter is a Store shared by many processes. Like every Store it is
// used by one goroutine at a time: goroutines that buy concurrently each
// open their own Counter, which gives each its own slot in the ledger.
type Counter struct {
	seg       *shm.Segment
	mu        *semaphore.Mutex
	mode      Mode
	total     int64
	remaining *atomic.Int64
	intent    *atomic.Int64 // this slot's pending lock-free buy: remaining seen, 0 none
	owners    []byte        // owners[t-1]: slot+1 of ticket t's buyer, 0 unsold
	slot      int
}

var _ Store = (*Counter)(nil)

// OpenCounter opens the Counter segment name, creating it with total
// tickets in mode if it does not exist. An existing Counter keeps its
// count; its total must match (shm.ErrSizeMismatch) and so must its mode
// unless mode is 0 (ErrModeMismatch). A segment of another type fails with
// shm.ErrTypeMismatch, a Counter of another layout version with
// ErrLayoutVersion.
func OpenCounter(ctx context.Context, name string, total int64, mode Mode) (*Counter, error) {
	if total <= 0 || total >= MaxTickets {
		return nil, fmt.Errorf("ticketshm: %d tickets: want 1 to %d", total, MaxTickets-1)
	}
	create := mode
	if create == 0 {
		create = Locked
	}
	if create != Locked && create != LockFree {
		return nil, fmt.Errorf("ticketshm: unknown mode %d", uint32(mode))
	}
	seg, err := shm.OpenOrCreate(ctx, name, offOwners+int(total), Tag, func(s *shm.Segment) error {
		d := s.Data()
		i64(d, offTotal).Store(total)
		i64(d, offRemaining).Store(total)
		(*atomic.Uint32)(unsafe.Pointer(&d[offMode])).Store(uint32(create))
		return nil
	})
	if err != nil {
		return nil, versionError(name, err)
	}
	c, err := attach(seg, total, mode)
	if err != nil {
		seg.Close()
		return nil, err
	}
	return c, nil
}

// Open opens an existing Counter segment, in whatever mode it was created
// if mode is 0.
func Open(name string, mode Mode) (*Counter, error) {
	seg, err := shm.Open(name, Tag)
	if err != nil {
		return nil, versionError(name, err)
	}
	c, err := attach(seg, int64(seg.Size()-offOwners), mode)
	if err != nil {
		seg.Close()
		return nil, err
	}
	return c, nil
}

// versionError tells a Counter of another layout version from a segment
// of another type.
func versionError(name string, err error) error {
	if errors.Is(err, shm.ErrTypeMismatch) {
		if info, serr := shm.Stat(name); serr == nil && strings.HasPrefix(info.Tag, "ticketshm.Counter/") {
			return fmt.Errorf("%w: %s is %q, this build reads %q: %w", ErrLayoutVersion, info.Path, info.Tag, Tag, err)
		}
	}
	return err
}

func attach(seg *shm.Segment, total int64, mode Mode) (*Counter, error) {
	d := seg.Data()
	if len(d) <= offOwners {
		return nil, fmt.Errorf("%s: %w: %d data bytes, a Counter has more than %d", seg.Path(), ErrCorrupt, len(d), offOwners)
	}
	c := &Counter{
		seg:       seg,
		total:     i64(d, offTotal).Load(),
		remaining: i64(d, offRemaining),
		mode:      Mode((*atomic.Uint32)(unsafe.Pointer(&d[offMode])).Load()),
		owners:    d[offOwners:],
	}
	switch {
	case c.total != total || int64(len(c.owners)) != total:
		return nil, fmt.Errorf("%s: %w: total %d, %d owner bytes, want %d", seg.Path(), ErrCorrupt, c.total, len(c.owners), total)
	case c.mode != Locked && c.mode != LockFree:
		return nil, fmt.Errorf("%s: %w: mode %d", seg.Path(), ErrCorrupt, uint32(c.mode))
	case mode != 0 && c.mode != mode:
		return nil, fmt.Errorf("%s: %w: counter is %v, want %v", seg.Path(), ErrModeMismatch, c.mode, mode)
	case !isZero(d[offMode+4 : offIntents]):
		return nil, fmt.Errorf("%s: %w: reserved bytes set", seg.Path(), ErrCorrupt)
	}
	if r := c.remaining.Load(); r < 0 || r > c.total {
		return nil, fmt.Errorf("%s: %w: %d remaining of %d", seg.Path(), ErrCorrupt, r, c.total)
	}
	mu, err := semaphore.NewMutex(seg, 0)
	if err != nil {
		return nil, err
	}
	c.mu, c.slot = mu, mu.Slot()
	c.intent = i64(d, offIntents+intentStride*c.slot)
	// A dead process that had our slot may have left a buy in flight;
	// settle it (and any other dead slot's) before we reuse the slot.
	if err := c.locked(context.Background(), func() { c.settleIntents() }); err != nil {
		return nil, err
	}
	return c, nil
}

// Buy sells one ticket and returns its number (1 for the first ticket
// sold), or ErrSoldOut.
func (c *Counter) Buy(ctx context.Context) (int64, error) {
	if c.mode == LockFree {
		return c.buyLockFree()
	}
	var t int64
	err := c.locked(ctx, func() {
		r := c.remaining.Load()
		if r == 0 {
			return
		}
		t = c.total - r + 1
		// The ledger first, then the count: a buyer killed between
		// the two leaves a ticket with an owner and the old count,
		// which repair completes.
		c.owners[t-1] = byte(c.slot + 1)
		c.remaining.Store(r - 1)
	})
	if err != nil {
		return 0, err
	}
	if t == 0 {
		return 0, fmt.Errorf("%s: %w", c.seg.Path(), ErrSoldOut)
	}
	return t, nil
}

// buyLockFree takes ticket total-r+1 with one CAS of remaining from r to
// r-1. The slot's intent word says which r it is trying, so that a buyer
// killed between the CAS and the ledger store can be settled: see
// settleIntents.
func (c *Counter) buyLockFree() (int64, error) {
	for {
		r := c.remaining.Load()
		if r == 0 {
			c.intent.Store(0)
			return 0, fmt.Errorf("%s: %w", c.seg.Path(), ErrSoldOut)
		}
		// The intent stays after the buy: it names a ticket that
		// has its owner by then, which settleIntents leaves alone.
		// Not clearing it spares a locked store on every buy.
		c.intent.Store(r)
		if c.remaining.CompareAndSwap(r, r-1) {
			t := c.total - r + 1
			c.owners[t-1] = byte(c.slot + 1)
			return t, nil
		}
	}
}

// Remaining reports how many tickets are left: one atomic load.
func (c *Counter) Remaining(context.Context) (int64, error) { return c.remaining.Load(), nil }

// locked runs fn under the record's Mutex; if the previous holder died,
// it repairs the counter first.
func (c *Counter) locked(ctx context.Context, fn func()) error {
	err := c.mu.LockContext(ctx)
	if err != nil && errors.Is(err, semaphore.ErrOwnerDead) { // errors.Is is a call: keep it off the fast path
		c.repair()
		err = c.mu.Consistent()
	}
	if err != nil {
		return err
	}
	fn()
	return c.mu.Unlock()
}

// repair completes a locked buy whose buyer died after writing the ledger
// and before decrementing remaining: the ticket was sold.
func (c *Counter) repair() {
	r := c.remaining.Load()
	if r > 0 && c.owners[c.total-r] != 0 {
		c.remaining.Store(r - 1)
	}
}

// settleIntents attributes the tickets of lock-free buyers that died
// between their CAS and their ledger store. A dead slot's intent r names
// ticket total-r+1. If that ticket was taken (remaining < r) and has no
// owner, either the dead buyer took it, or a live buyer whose CAS from r
// won is about to store its own slot there; in both cases the ticket is
// sold, and counted once (a later store by the live buyer just corrects the
// owner). Runs under the Mutex.
func (c *Counter) settleIntents() {
	rem := c.remaining.Load()
	for s := range semaphore.MaxProcs {
		in := i64(c.seg.Data(), offIntents+intentStride*s)
		r := in.Load()
		if r == 0 {
			continue
		}
		if s != c.slot {
			if alive, err := c.seg.SlotAlive(s); err != nil || alive {
				continue
			}
		}
		if r > 0 && r <= c.total && rem < r {
			if t := c.total - r + 1; c.owners[t-1] == 0 {
				c.owners[t-1] = byte(s + 1)
			}
		}
		in.Store(0)
	}
}

// Audit checks the counter under its Mutex: it settles the in-flight buys
// of dead lock-free buyers, then counts the ledger against the count. With
// live lock-free buyers running, their buys between CAS and ledger store
// show as InFlight (and as Lost until they land); audit a quiet counter
// for an exact answer. It reads every ledger byte: O(total).
func (c *Counter) Audit() (Audit, error) {
	var a Audit
	err := c.locked(context.Background(), func() {
		c.settleIntents()
		a = Audit{Total: c.total, Remaining: c.remaining.Load(), PerSlot: make([]int64, semaphore.MaxProcs)}
		taken := c.total - a.Remaining
		for i, o := range c.owners {
			switch {
			case o == 0 && int64(i) < taken:
				a.Lost++
			case o == 0:
			case int(o) > semaphore.MaxProcs || int64(i) >= taken:
				a.Oversold++
			default:
				a.Sold++
				a.PerSlot[o-1]++
			}
		}
		for s := range semaphore.MaxProcs {
			r := i64(c.seg.Data(), offIntents+intentStride*s).Load()
			if r > 0 && r <= c.total && r > a.Remaining && c.owners[c.total-r] == 0 {
				a.InFlight++
			}
		}
	})
	return a, err
}

// Mode is the counter's mode.
func (c *Counter) Mode() Mode { return c.mode }

// Total is the number of tickets the counter was created with.
func (c *Counter) Total() int64 { return c.total }

// Slot is this process's slot in the counter's ledger.
func (c *Counter) Slot() int { return c.slot }

// Close unmaps the counter. The segment stays; shm.Remove deletes it.
func (c *Counter) Close() error { return c.seg.Close() }

func i64(b []byte, off int) *atomic.Int64 {
	// The data region of a segment is 64-byte aligned and every offset
	// used here is a multiple of 8: the atomic's alignment holds. The
	// memory is a shared mapping, never moved by Go.
	return (*atomic.Int64)(unsafe.Pointer(&b[off]))
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
