//go:build linux

package ticketshm

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/ctxlock"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

// The Counter record; doc.go has it as a table.
const (
	offTotal     = semaphore.MutexSize
	offRemaining = offTotal + 8
	offMode      = offTotal + 16
	offAreas     = semaphore.MutexSize + 64
	offOwners    = offAreas + areaSize*semaphore.MaxProcs
)

var _ [offOwners - 68224]struct{} // doc.go's table
var _ [68224 - offOwners]struct{}

// counter is this process's one attachment of a Counter segment: its
// slot, its BiasedMutex, its log. Every open of the segment in this
// process gets a Counter handle of its own on it (handle_linux.go), and
// the last handle's Close closes it.
type counter struct {
	// local serialises this process's goroutines: it guards open, log,
	// guess and rng, and every use of mu and the mapping.
	local     ctxlock.Mutex
	open      bool // from a successful open to the last Close
	seg       *shm.Segment
	mu        *semaphore.BiasedMutex
	mode      Mode
	total     int64
	remaining *atomic.Int64
	count     *int64 // remaining's word, for plain stores under the Mutex
	owners    []byte // owners[t-1]: slot+1 of ticket t's buyer, 0 unsold or in a log
	slot      int
	me        byte     // slot+1: this process's ledger byte
	id        shm.Slot // this process's slot, with its generation
	sales     *uint64  // this slot's sales word (Locked), for plain stores under the Mutex
	log       buyLog   // this slot's log of lock-free buys not yet in owners
	guess     int64    // the remaining count the next lock-free CAS tries first
	rng       uint64   // back-off's state
	// attachSettled is how many tickets the attach's settlement moved
	// from dead buyers' logs into the ledger (Repair reports it).
	attachSettled int64
}

// counters are this process's Counters, one per mapped segment, keyed by
// the address of its data (a process maps a segment once: package shm).
// mu is held only to look at or change the map and the entries, never
// while a Counter is made or closed: those wait for other processes.
var counters struct {
	mu sync.Mutex
	m  map[*byte]*counterEntry
}

// counterEntry is a Counter of this process, being opened, open or being
// closed.
type counterEntry struct {
	c    *counter      // nil while the first open makes it
	refs int           // opens not yet closed
	done chan struct{} // while making (c nil) or closing (c set): closed when that is over
}

// Open opens the existing Counter segment name, in whatever Mode and with
// however many tickets it was made (Mode, Total). It fails with an error
// matching fs.ErrNotExist if there is none. Opening claims this process's
// slot and settles what dead buyers left under the Counter's lock, so it
// waits for the lock's holder, until ctx is done.
func Open(ctx context.Context, name string) (*Counter, error) {
	c, _, err := openSettling(ctx, name)
	return c, err
}

// openSettling is Open, which also returns how many tickets its attach
// settled (attachOrClose).
func openSettling(ctx context.Context, name string) (*Counter, int64, error) {
	seg, err := shm.Open(name, Tag)
	if err != nil {
		return nil, 0, versionError(name, err)
	}
	return attachOrClose(ctx, seg, int64(seg.Size()-offOwners), 0)
}

// Create makes the Counter segment name with total tickets in mode
// (Locked if mode is 0) and opens it. It fails with an error matching
// fs.ErrExist if the name is taken. Once made, the segment is named and
// other processes may open it: if this process then cannot attach it
// (ctx done while another process holds its lock, no free process slot),
// Create returns the error and leaves the segment to them; Open it, or
// remove it (shm.Remove) once no process uses it.
func Create(ctx context.Context, name string, total int64, mode Mode) (*Counter, error) {
	mode, err := checkNew(total, mode)
	if err != nil {
		return nil, err
	}
	seg, err := shm.Create(name, offOwners+int(total), Tag, initCounter(total, mode))
	if err != nil {
		return nil, err
	}
	// Named from here on: other processes may open it. If this process
	// cannot attach it (ctx done while one of them holds its lock, no
	// free slot, this process's robust list full), the segment stays,
	// theirs as much as ours: removing it by name could split a sale.
	h, _, err := attachOrClose(ctx, seg, total, mode)
	return h, err
}

// OpenOrCreate opens the Counter segment name, making it with total
// tickets in mode (Locked if mode is 0) if there is none. An existing
// Counter keeps its count, sold out or not (Remaining tells; Create or
// shm.Remove start a new sale); its total must be total
// (ErrTotalMismatch) and its mode mode, unless mode is 0
// (ErrModeMismatch). A segment of another type fails with
// shm.ErrTypeMismatch, a Counter of another layout version with
// ErrLayoutVersion.
func OpenOrCreate(ctx context.Context, name string, total int64, mode Mode) (*Counter, error) {
	create, err := checkNew(total, mode)
	if err != nil {
		return nil, err
	}
	seg, err := shm.OpenOrCreate(ctx, name, offOwners+int(total), Tag, initCounter(total, create))
	if errors.Is(err, shm.ErrSizeMismatch) {
		// Say it in tickets: the data size is the ledger's.
		if old, oerr := shm.Open(name, Tag); oerr == nil {
			have, path := int64(old.Size()-offOwners), old.Path()
			old.Close()
			return nil, fmt.Errorf("%s: %w: it has %d tickets, want %d", path, ErrTotalMismatch, have, total)
		}
	}
	if err != nil {
		return nil, versionError(name, err)
	}
	h, _, err := attachOrClose(ctx, seg, total, mode)
	return h, err
}

// Remove deletes the Counter segment name (shm.Remove): processes that
// have it open keep selling from it; the next Create or OpenOrCreate
// makes a new one.
func Remove(name string) error { return shm.Remove(name) }

// checkNew checks the arguments of a Counter to make, and returns the
// mode it is made in.
func checkNew(total int64, mode Mode) (Mode, error) {
	if total <= 0 || total >= MaxTickets {
		return 0, fmt.Errorf("ticketshm: %d tickets: want 1 to %d", total, MaxTickets-1)
	}
	if mode == 0 {
		mode = Locked
	}
	if mode != Locked && mode != LockFree {
		return 0, fmt.Errorf("ticketshm: unknown mode %d", uint32(mode))
	}
	return mode, nil
}

func initCounter(total int64, mode Mode) shm.InitFunc {
	return func(s *shm.Segment) error {
		d := s.Data()
		i64(d, offTotal).Store(total)
		i64(d, offRemaining).Store(total)
		(*atomic.Uint32)(unsafe.Pointer(&d[offMode])).Store(uint32(mode))
		return nil
	}
}

// attachOrClose makes a handle on seg's Counter (attach), or closes seg.
// It also returns how many tickets the attach settled from dead buyers'
// logs into the ledger: 0 when this process had the Counter attached
// already (its first attach settled then).
func attachOrClose(ctx context.Context, seg *shm.Segment, total int64, mode Mode) (*Counter, int64, error) {
	c, made, err := attach(ctx, seg, total, mode)
	if err != nil {
		seg.Close()
		return nil, 0, err
	}
	var settled int64
	if made {
		settled = c.attachSettled
	}
	return &Counter{c: c, closed: new(atomic.Bool)}, settled, nil
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

// attach makes seg's Counter in this process, or takes another open of
// the one it has. An open that finds the Counter being made, or being
// closed by its last Close, waits for that (until ctx is done) and looks
// again: it never makes a second Counter (and BiasedMutex) of one record.
// made says this call made it.
func attach(ctx context.Context, seg *shm.Segment, total int64, mode Mode) (c *counter, made bool, err error) {
	key := unsafe.SliceData(seg.Data())
	for {
		counters.mu.Lock()
		e := counters.m[key]
		if e == nil {
			e = &counterEntry{done: make(chan struct{})}
			if counters.m == nil {
				counters.m = make(map[*byte]*counterEntry)
			}
			counters.m[key] = e
			counters.mu.Unlock()
			c, err := newCounter(ctx, seg, total, mode)
			counters.mu.Lock()
			if err != nil {
				delete(counters.m, key)
			} else {
				c.open = true
				e.c, e.refs = c, 1
			}
			close(e.done)
			e.done = nil
			counters.mu.Unlock()
			return c, err == nil, err
		}
		if wait := e.done; wait != nil {
			counters.mu.Unlock()
			select {
			case <-wait:
				continue
			case <-ctx.Done():
				return nil, false, fmt.Errorf("%s: waiting for this process's other open or close of the counter: %w", seg.Path(), context.Cause(ctx))
			}
		}
		c := e.c
		switch {
		case c.total != total:
			counters.mu.Unlock()
			return nil, false, fmt.Errorf("%s: %w: it has %d tickets, want %d", seg.Path(), ErrTotalMismatch, c.total, total)
		case mode != 0 && c.mode != mode:
			counters.mu.Unlock()
			return nil, false, fmt.Errorf("%s: %w: counter is %v, want %v", seg.Path(), ErrModeMismatch, c.mode, mode)
		}
		e.refs++
		counters.mu.Unlock()
		seg.Close() // the mapping stays, with c's handle
		return c, false, nil
	}
}

// views checks seg's Counter words and makes a Counter of them, not yet
// attached: no slot (-1), no lock. Inspect uses it as it is.
func views(seg *shm.Segment, total int64, mode Mode) (*counter, error) {
	d := seg.Data()
	if len(d) <= offOwners {
		return nil, fmt.Errorf("%s: %w: %d data bytes, a Counter has more than %d", seg.Path(), ErrCorrupt, len(d), offOwners)
	}
	c := &counter{
		slot:      -1,
		seg:       seg,
		total:     i64(d, offTotal).Load(),
		remaining: i64(d, offRemaining),
		count:     (*int64)(unsafe.Pointer(i64(d, offRemaining))),
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
	case !isZero(d[offMode+4 : offAreas]):
		return nil, fmt.Errorf("%s: %w: reserved bytes set", seg.Path(), ErrCorrupt)
	}
	if r := c.remaining.Load(); r < 0 || r > c.total {
		return nil, c.badCount(r)
	}
	return c, nil
}

func newCounter(ctx context.Context, seg *shm.Segment, total int64, mode Mode) (*counter, error) {
	c, err := views(seg, total, mode)
	if err != nil {
		return nil, err
	}
	// The slot first: its index is the counter's id in the ledger.
	id, err := semaphore.ClaimSlot(ctx, seg)
	if err != nil {
		return nil, err
	}
	c.id = id
	mu, err := semaphore.NewBiasedMutex(ctx, seg, 0)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			// Or the record stays marked as this BiasedMutex's while
			// the segment is mapped, and the next open fails with
			// semaphore.ErrInUse.
			mu.Close()
		}
	}()
	c.mu, c.slot, c.me = mu, c.id.Index, byte(c.id.Index+1)
	c.log = c.logOf(c.slot)
	c.sales = c.areaOf(c.slot).sales
	c.rng = rand.Uint64() // buyers of different processes back off out of step
	// A dead process that had our slot may have left buys in its log;
	// settle them (and every other dead slot's) before the area is ours.
	var serr error
	if err := c.locked(ctx, func() {
		var v verdicts
		if serr = c.settleDead(&v); serr == nil {
			c.areaOf(c.slot).gen.Store(c.id.Gen)
			c.attachSettled = v.settled
		}
	}); err != nil {
		return nil, err
	}
	if serr != nil {
		return nil, serr
	}
	ok = true
	return c, nil
}

// Buy is Counter.Buy. The body of both is here, so that a Buyer's buy is
// one call (see Counter.Buy's doc).
//
// Its fast paths (a lock-free CAS on the count this buyer last left; a
// locked buy through the bias) are written out here and everything else
// is in calls: a loop built with a profile (cmd/bench's) inlines Buy, and
// the shorter body ran faster: one buyer sold 313-314M tickets/s against
// 296-307M with the locked path written out here too
// (docs/runs/buy-paths.txt).
func (b *Buyer) Buy(ctx context.Context) (int64, error) {
	c := b.c
	if c == nil {
		return 0, errBuyerClosed()
	}
	if c.mode == LockFree {
		// CAS first, on the count this buyer last left: alone, it
		// is right and no load is needed; contended, it fails, and
		// buyLockFree backs off before it loads the count again.
		if r := c.guess; r > 0 {
			c.log.intend(r)
			if c.remaining.CompareAndSwap(r, r-1) {
				c.guess = r - 1 // bought(r), written out
				t := c.total - r + 1
				if c.log.commit() {
					c.flush()
				}
				return t, nil
			}
		}
		return c.buyLockFree()
	}
	// Through the bias first: EnterFast and ExitFast keep no state in
	// the BiasedMutex, which is right here, where the section begins and
	// ends in this function and nothing in it can fail. The body is the
	// locked path's, written out again: a function shared by both
	// (inlined all the same) compiled to a slower loop.
	if !c.mu.EnterFast() {
		return c.buyLocked(ctx)
	}
	// Each of the Counter's fields is loaded once (remaining's word
	// through count, the pointer the store uses; the ledger byte
	// precomputed in me): a buy is about 60 instructions, and three
	// loads fewer sold 324-332M tickets/s against 271-309M
	// (docs/runs/buy-loads.txt).
	count, sales := c.count, c.sales
	r := atomic.LoadInt64(count)
	if uint64(r-1) >= uint64(c.total) {
		return 0, c.refuseFast(r)
	}
	t := c.total - r + 1
	owner := (*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(c.owners)), t-1))
	recordSale(owner, c.me, sales, nextSales(atomic.LoadUint64(sales), t), count, r-1)
	if !c.mu.ExitFast() {
		return c.unlockSold(t)
	}
	return t, nil
}

// refuseFast leaves the critical section that Buy entered through the
// bias and found r remaining in: sold out, or a count no Counter writes.
func (c *counter) refuseFast(r int64) error {
	if !c.mu.ExitFast() {
		if err := c.mu.Unlock(); err != nil && r == 0 {
			return err
		}
	}
	if r != 0 {
		return c.badCount(r)
	}
	return c.soldOut()
}

// unlockSold unlocks after a sale through the bias that a revoker waits
// on (ExitFast said so): Unlock wakes it.
func (c *counter) unlockSold(t int64) (int64, error) {
	if err := c.mu.Unlock(); err != nil {
		return 0, err
	}
	return t, nil
}

// buyLocked is a locked Buy that did not get through the bias: it takes
// the Mutex (through the bias if it can, else waiting, until ctx is done).
func (c *counter) buyLocked(ctx context.Context) (int64, error) {
	if !c.mu.LockFast() {
		if err := c.lock(ctx); err != nil {
			return 0, err
		}
	}
	// remaining is read with an atomic load (a plain MOV on amd64) and
	// written with a plain store: atomic.Int64.Store is an XCHG on amd64,
	// a locked instruction (about 9 ns on the Xeon this was measured on,
	// more than the rest of the buy). The lock orders them for the next
	// holder; Remaining's lock-free readers load an aligned word, which a
	// plain store never tears.
	r := c.remaining.Load()
	if uint64(r-1) >= uint64(c.total) { // r <= 0 || r > total, one branch
		return 0, c.unlockRefusing(r)
	}
	t := c.total - r + 1
	// owners[t-1] without the bounds check: t-1 = total-r is in
	// [0, total) since r is in [1, total], and attach made sure that
	// len(owners) == total. At a few nanoseconds a buy, every branch
	// of the hot path shows.
	owner := (*byte)(unsafe.Add(unsafe.Pointer(unsafe.SliceData(c.owners)), t-1))
	recordSale(owner, c.me, c.sales, nextSales(atomic.LoadUint64(c.sales), t), c.count, r-1)
	if !c.mu.UnlockFast() {
		if err := c.mu.Unlock(); err != nil {
			return 0, err
		}
	}
	return t, nil
}

// nextSales is the sales word s after a sale of ticket t: one more sale
// in the high half, t in the low. That is (s>>32+1)<<32 | t, computed as
// (s | 1<<32-1) + t + 1: with the low half all ones, the one carries into
// the high half and leaves zeros for t, which is below 2^32 (MaxTickets).
// Every locked buy loads this word and stores the next one, so the
// operations between are on the chain that paces a buyer running alone:
// three here against four, and one buyer sold 349-350M tickets/s against
// 335-340M, c-robust 110-114M beside both (docs/runs/buy-sales.txt).
// Two forms with two operations there were slower (325-336M), so the
// chain is not all of it; keep this one unless a run says otherwise.
func nextSales(s uint64, t int64) uint64 { return (s | lowHalf) + uint64(t) + 1 }

const lowHalf = 1<<32 - 1

// recordSale writes a locked sale: the ledger byte first, then this
// slot's sales word, then the count. A buyer killed before the count
// leaves a ticket with an owner and the old count, which repair
// completes; the order is the crash safety.
//
// They are plain stores, in one function the compiler inlines. What keeps
// their order is the gc compiler, not the Go memory model (which says
// nothing of memory shared with another process): gc threads every store
// through one memory chain in program order and never reorders two
// stores, and x86-64 makes stores visible in program order. The stores
// before and after the critical section (the bias entry, in package
// semaphore) are ordered against these by the atomic loads of the bias
// word, which are links of the same chain. TestStoreOrder disassembles
// this function as gc compiled it and fails if the stores are not in this
// order. Other architectures take the non-biased path, where the lock's
// CAS orders them for the next holder, and the order of a death there is
// gc's too.
func recordSale(owner *byte, slot byte, sales *uint64, s uint64, count *int64, r int64) {
	*owner = slot
	*sales = s
	*count = r
}

// unlockRefusing unlocks a locked Buy that found r remaining: sold out,
// or a count no Counter writes.
func (c *counter) unlockRefusing(r int64) error {
	err := c.mu.Unlock()
	switch {
	case r != 0:
		return c.badCount(r)
	case err != nil:
		return err
	}
	return c.soldOut()
}

// buyLockFree retries after Buy's CAS on its guess failed (or had no
// guess): another buyer got there first, so it backs off before each try.
func (c *counter) buyLockFree() (int64, error) {
	for losses := 0; ; losses++ {
		if losses > 0 || c.guess > 0 {
			c.backoff(losses)
		}
		r := c.remaining.Load()
		switch {
		case r == 0:
			return 0, c.soldOut()
		case r < 0 || r > c.total:
			return 0, c.badCount(r)
		}
		c.log.intend(r)
		if c.remaining.CompareAndSwap(r, r-1) {
			return c.bought(r), nil
		}
	}
}

// bought commits the lock-free buy that took remaining from r, flushing
// a full log.
func (c *counter) bought(r int64) int64 {
	c.guess = r - 1
	if c.log.commit() {
		c.flush()
	}
	return c.total - r + 1
}

// Back-off after a lost CAS, in rounds of a multiply-add (about 1 ns
// each): a random wait below backoffMin, doubling with each loss in a
// row up to backoffMin<<backoffDoublings. Without it, every buyer pulls
// remaining's cache line to its core on every try, and the line moves
// once per ticket; with it, the buyer that won sells a run of tickets
// with the line in its cache, and the randomness keeps the losers from
// retrying in step. On a 2-core Xeon VM, `go run ./cmd/bench -backends
// shm-lockfree -procs 2,4,8` sold 43-55 M/s with it and 25-36 M/s with
// backoffMin 1 (no wait), two runs each, every buyer at 0.83 of its
// share or more either way.
const (
	backoffMin       = 256
	backoffDoublings = 2
)

func (c *counter) backoff(losses int) {
	x := c.rng*6364136223846793005 + 1442695040888963407 // Knuth's MMIX LCG
	n := (x >> 33) % (backoffMin << min(losses, backoffDoublings))
	for range n {
		x = x*6364136223846793005 + 1442695040888963407
	}
	c.rng = x
}

func (c *counter) soldOut() error { return fmt.Errorf("%s: %w", c.seg.Path(), ErrSoldOut) }

// badCount is the error for a remaining count r outside 0..total.
func (c *counter) badCount(r int64) error {
	return fmt.Errorf("%s: %w: %d remaining of %d", c.seg.Path(), ErrCorrupt, r, c.total)
}

// Remaining reports how many tickets are left: one atomic load.
func (c *counter) Remaining(ctx context.Context) (int64, error) {
	if err := c.local.Lock(ctx); err != nil {
		return 0, c.errWaiting(err)
	}
	defer c.local.Unlock()
	if !c.open {
		return 0, c.errClosed()
	}
	return c.remaining.Load(), nil
}

// errWaiting is the error of a call whose ctx ended while another
// goroutine of this process had the Counter.
func (c *counter) errWaiting(err error) error {
	name := "ticketshm: a zero Counter"
	if c != nil && c.seg != nil {
		name = c.seg.Path()
	}
	return fmt.Errorf("%s: waiting for this process's other buyer: %w", name, err)
}

// errClosed is the error of a call on a closed or zero Counter.
func (c *counter) errClosed() error {
	if c == nil || c.seg == nil {
		return fmt.Errorf("ticketshm: a zero Counter (make one with Open, Create or OpenOrCreate): %w", ErrClosed)
	}
	return fmt.Errorf("%s: %w", c.seg.Path(), ErrClosed)
}

// lock takes the record's Mutex; if the previous holder died, it repairs
// the counter first.
func (c *counter) lock(ctx context.Context) error {
	err := c.mu.LockContext(ctx)
	if errors.Is(err, semaphore.ErrOwnerDead) {
		c.repair()
		err = c.mu.Consistent()
	}
	return err
}

// locked runs fn under the record's Mutex, repaired.
func (c *counter) locked(ctx context.Context, fn func()) error {
	if err := c.lock(ctx); err != nil {
		return err
	}
	fn()
	return c.mu.Unlock()
}

// repair completes a locked buy whose buyer died after writing the ledger
// and before decrementing remaining: the ticket was sold. Its sales word
// counts it unless it got that far (it names the ticket last sold).
func (c *counter) repair() {
	if c.mode != Locked {
		return // lock-free buys hold no lock; a settler killed under it is redone
	}
	r := c.remaining.Load()
	if r <= 0 || c.owners[c.total-r] == 0 {
		return
	}
	t := c.total - r + 1
	if o := int(c.owners[t-1]) - 1; o < semaphore.MaxProcs {
		sales := c.areaOf(o).sales
		if s := atomic.LoadUint64(sales); uint32(s) != uint32(t) {
			atomic.StoreUint64(sales, nextSales(s, t))
		}
	}
	c.remaining.Store(r - 1)
}

// Audit is Counter.Audit.
func (c *counter) Audit(ctx context.Context) (Audit, error) {
	if err := c.local.Lock(ctx); err != nil {
		return Audit{}, c.errWaiting(err)
	}
	defer c.local.Unlock()
	if !c.open {
		return Audit{}, c.errClosed()
	}
	var a Audit
	var serr error
	err := c.locked(ctx, func() {
		if c.mode == LockFree {
			c.flush()
		}
		var v verdicts // one look at each slot, for both
		if serr = c.settleDead(&v); serr != nil {
			return
		}
		a = c.tally(&v)
	})
	if err == nil {
		err = serr
	}
	return a, err
}

// tally is Audit's count, once settleDead settled the logs it judged
// dead (v).
func (c *counter) tally(v *verdicts) Audit {
	live := c.liveLogs(v)
	a := Audit{Total: c.total, Remaining: c.remaining.Load(), PerSlot: make([]int64, semaphore.MaxProcs)}
	taken := c.total - a.Remaining
	for i, o := range c.owners {
		if len(live) > 0 { // a map lookup per ticket costs more than the rest
			if s, ok := live[int64(i)+1]; ok {
				o = byte(s + 1) // a live log's commit outranks a settled guess
			}
		}
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
		if c.mode == Locked {
			a.Sales += int64(atomic.LoadUint64(c.areaOf(s).sales) >> 32)
		}
		if t, ok := c.logOf(s).pending(c.total); ok && t <= taken && c.owners[t-1] == 0 {
			if _, ok := live[t]; !ok {
				a.InFlight++
			}
		}
	}
	if c.mode == Locked {
		a.DoubleSold = max(0, a.Sales-a.Sold)
	}
	return a
}

// Populate is Counter.Populate.
func (c *counter) Populate(ctx context.Context) error {
	if err := c.local.Lock(ctx); err != nil {
		return c.errWaiting(err)
	}
	defer c.local.Unlock()
	if !c.open {
		return c.errClosed()
	}
	return c.seg.Populate()
}

// Close ends one open of the counter (Counter.Close): the last waits for
// the calls in flight (and an open Buyer's Close), writes this process's
// lock-free buys into the ledger and unmaps the counter.
func (c *counter) Close() error {
	if c.seg == nil {
		return c.errClosed()
	}
	key := unsafe.SliceData(c.seg.Data())
	counters.mu.Lock()
	e := counters.m[key]
	if e == nil || e.c != c || e.refs == 0 {
		counters.mu.Unlock()
		return c.errClosed()
	}
	e.refs--
	if e.refs > 0 {
		counters.mu.Unlock()
		return nil
	}
	// The last: an open from now on waits for the teardown, then makes a
	// new Counter.
	e.done = make(chan struct{})
	counters.mu.Unlock()
	defer func() {
		counters.mu.Lock()
		delete(counters.m, key)
		close(e.done)
		counters.mu.Unlock()
	}()
	_ = c.local.Lock(context.Background()) // never fails: no deadline
	defer c.local.Unlock()
	c.open = false
	if c.mode == LockFree {
		c.flush()
	}
	err := c.mu.Close()
	if cerr := c.seg.Close(); err == nil {
		err = cerr
	}
	return err
}

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
