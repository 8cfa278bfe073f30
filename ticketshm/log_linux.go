//go:build linux

package ticketshm

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

// A lock-free buyer does not write the shared ledger per ticket. Ledger
// bytes of consecutive tickets share cache lines, and consecutive tickets
// go to different processes: a per-ticket ledger store moved a second
// cache line between cores for every ticket, and halved the contended
// rate. Instead each process slot has an area of its own (8 cache lines
// nobody else writes while its process lives) with a log:
//
//	+0  gen:     the slot generation (shm.Slot) of the process whose area
//	             it is; its log is live while that process is
//	+8  sales:   the slot's sales count and last ticket (Locked; counter_linux.go)
//	+16 count:   entries 0..count-1 are committed buys
//	+24 entries: 61 int64s, each the remaining count r a CAS took from r
//	             to r-1, which is ticket total-r+1
//
// A buy writes its r into entries[count] (the intent), CASes remaining,
// and on success stores count+1 (the commit). Every 61 buys, and on
// Close, the log is flushed: its tickets go into the ledger and count goes
// back to 0. All of it is plain stores to the slot's own lines, ordered
// by the CAS between them.
//
// A buyer killed anywhere leaves a log that settleDead reads, under the
// Counter's Mutex, before its slot's area is given to a new process and in
// Audit. A log is dead when the process its gen names is dead: its slot
// is free, or held by a later process (which may never attach the
// Counter). A dead process writes nothing more, so settleDead loads
// remaining only after it found the log dead: every buy the log holds
// took remaining below its r by then.
//
//   - committed entries are the slot's tickets: they go into the ledger;
//   - entries[count], if it names a ticket that was taken (remaining < r)
//     and that no ledger byte owns, is a buy killed between its CAS and
//     its commit. Either the dead buyer took it, or a live buyer took it
//     (committed in its log or not yet); either way the ticket is sold
//     once, so the dead slot gets it if the ledger byte is still 0 (a
//     32-bit CAS), and a live buyer's flush later overwrites it. Live
//     logs are not asked: read while their buyers write them, they can
//     tear, and a torn read that named the ticket lost it.
//
// A stale entries[count] (a ticket committed and flushed before) is owned
// in the ledger and left alone.
const (
	areaSize = 512                     // bytes of one slot's area: 8 cache lines
	logCap   = (areaSize - offLog) / 8 // entries
	offLog   = 24                      // the entries, in an area
)

// area is a view of one slot's area.
type area struct {
	gen   *atomic.Uint64
	sales *uint64
	count *int64
}

// buyLog is a view of one slot's log. n is this process's copy of the
// committed count when the log is its own.
type buyLog struct {
	count   *int64
	entries *[logCap]int64
	n       int
}

// areaOf is slot's area. An area is 512 bytes at a 64-aligned offset of
// the data region (which is 64-aligned itself) inside the shared mapping:
// its int64s are aligned and the memory is never moved by Go.
func (c *counter) areaOf(slot int) area {
	p := unsafe.Pointer(&c.seg.Data()[offAreas+areaSize*slot])
	return area{gen: (*atomic.Uint64)(p), sales: (*uint64)(unsafe.Add(p, 8)), count: (*int64)(unsafe.Add(p, 16))}
}

func (c *counter) logOf(slot int) buyLog {
	a := c.areaOf(slot)
	return buyLog{count: a.count, entries: (*[logCap]int64)(unsafe.Add(unsafe.Pointer(a.count), 8))}
}

// intend records r as the buy about to be tried. A plain store: on amd64
// every store is a release store, and the CAS that follows orders it on
// the others.
func (l *buyLog) intend(r int64) { l.entries[l.n] = r }

// commit makes the intended entry a bought ticket; it reports whether the
// log is now full.
func (l *buyLog) commit() bool {
	l.n++
	*l.count = int64(l.n)
	return l.n == logCap
}

func (l buyLog) loadCount() int64     { return (*atomic.Int64)(unsafe.Pointer(l.count)).Load() }
func (l buyLog) clearCount()          { (*atomic.Int64)(unsafe.Pointer(l.count)).Store(0) }
func (l buyLog) load(i int) int64     { return (*atomic.Int64)(unsafe.Pointer(&l.entries[i])).Load() }
func (l buyLog) store(i int, v int64) { (*atomic.Int64)(unsafe.Pointer(&l.entries[i])).Store(v) }

// liveArea reports whether slot's area belongs to a live process: this
// one, or the one its gen names. When that cannot be told, it says yes:
// a live buyer's log must never be settled under it.
func (c *counter) liveArea(slot int) bool {
	if slot == c.slot {
		return c.areaOf(slot).gen.Load() == c.id.Gen
	}
	g := c.areaOf(slot).gen.Load()
	if g == 0 {
		return false
	}
	alive, err := c.seg.Alive(shm.Slot{Index: slot, Gen: g})
	return err != nil || alive
}

// verdicts holds, for one settlement and the count that follows it, what
// liveArea said of each slot, asked once: a slot's process can die
// between two questions. (Its slot's lock outlives it while another task
// holds its open file: a reader of /proc/PID/maps or smaps does, for
// milliseconds after its parent reaped it, and Alive calls a zombie
// alive.) Judged live by settleDead and
// dead by tally, a log was in neither the ledger nor the live logs, and
// Audit called its tickets lost, as one chaos run in a full test run did
// (4 of 25M; TestAuditLateSlotRelease).
//
// It also counts the tickets the settlement moved into the ledger (owner
// bytes it found 0), for Repair.
type verdicts struct {
	of      [semaphore.MaxProcs]uint8
	settled int64
}

const (
	unjudged uint8 = iota
	judgedLive
	judgedDead
)

// live is liveArea(slot), asked once per v.
func (c *counter) live(v *verdicts, slot int) bool {
	switch v.of[slot] {
	case judgedLive:
		return true
	case judgedDead:
		return false
	}
	alive := c.liveArea(slot)
	v.of[slot] = judgedDead
	if alive {
		v.of[slot] = judgedLive
	}
	return alive
}

// pending is the ticket the log's intent names, if it is a ticket at all.
func (l buyLog) pending(total int64) (int64, bool) {
	n := l.loadCount()
	if n < 0 || n >= logCap {
		return 0, false
	}
	r := l.load(int(n))
	if r <= 0 || r > total {
		return 0, false
	}
	return total - r + 1, true
}

// flush writes this slot's committed tickets into the ledger and empties
// the log. The ledger stores come first: a process killed mid-flush leaves
// its entries committed, and settleDead writes them again. Not inlined: it
// runs once per 61 buys, and inlined it would only swell bought.
//
//go:noinline
func (c *counter) flush() {
	owners, total, me := c.owners, c.total, c.me
	e := c.log.entries[:c.log.n]
	if n := int64(len(e)); n > 0 && e[0]-e[n-1] == n-1 {
		// A log's entries fall strictly (remaining only goes down),
		// so n of them spanning n-1 are consecutive: tickets bought
		// with nobody else buying in between, a run of ledger bytes.
		// Eight at a time, a flush of 63 took 42 ns instead of 80-125
		// (a micro-benchmark of the two loops, the log's stores
		// included): about 0.6 ns of a lone buyer's 12 ns buy.
		fill(owners[total-e[0]:total-e[n-1]+1], me)
	} else {
		for _, r := range e {
			owners[total-r] = me
		}
	}
	c.log.clearCount() // an atomic store: after the ledger, on every CPU
	c.log.n = 0
}

// fill sets every byte of b to v, eight at a time.
func fill(b []byte, v byte) {
	w := uint64(v) * 0x0101010101010101
	for len(b) >= 8 {
		binary.LittleEndian.PutUint64(b, w)
		b = b[8:]
	}
	for i := range b {
		b[i] = v
	}
}

// liveLogs maps the committed tickets of live slots' logs (this
// process's included) to their slot, live as v judged them.
func (c *counter) liveLogs(v *verdicts) map[int64]int {
	live := map[int64]int{}
	for s := range semaphore.MaxProcs {
		l := c.logOf(s)
		n := l.loadCount()
		if n == 0 || n > logCap || n < 0 || !c.live(v, s) {
			continue
		}
		for i := range int(n) {
			if r := l.load(i); r > 0 && r <= c.total {
				live[c.total-r+1] = s
			}
		}
	}
	return live
}

// settleHook, when set (tests only), is called before settleDead looks at
// each slot, so a test can stop a settler there.
var settleHook func(slot int)

// settleDead empties the logs of dead processes into the ledger: at
// attach (our slot's area among them, if it was an earlier process's) and
// in Audit. Runs under the Mutex. A log that cannot have been written by
// a buyer is ErrCorrupt. What it judged of each slot goes into v, for the
// count that follows (tally).
func (c *counter) settleDead(v *verdicts) error {
	for s := range semaphore.MaxProcs {
		if settleHook != nil {
			settleHook(s)
		}
		l := c.logOf(s)
		n := l.loadCount()
		if n == 0 && l.load(0) == 0 {
			continue // never used, or settled
		}
		if c.mode == Locked {
			return fmt.Errorf("%s: %w: slot %d has a lock-free log in a locked counter", c.seg.Path(), ErrCorrupt, s)
		}
		if c.live(v, s) {
			continue
		}
		if n < 0 || n > logCap {
			return fmt.Errorf("%s: %w: slot %d's log counts %d buys, at most %d fit", c.seg.Path(), ErrCorrupt, s, n, logCap)
		}
		// Dead: its writes are over. Only now the count, which every
		// one of them took below its r.
		rem := c.remaining.Load()
		for i := range int(n) {
			r := l.load(i)
			if r <= rem || r > c.total {
				return fmt.Errorf("%s: %w: slot %d's log holds remaining count %d; the counter has %d of %d left",
					c.seg.Path(), ErrCorrupt, s, r, rem, c.total)
			}
			if c.owners[c.total-r] == 0 {
				v.settled++
			}
			c.owners[c.total-r] = byte(s + 1)
		}
		if t, ok := l.pending(c.total); ok && t <= c.total-rem {
			// Claimed if its ledger byte is 0, whoever else may have
			// it in a log: a live buyer's committed ticket is written
			// over by its flush (or by its own settlement), and Audit
			// counts a live log's commit before a settled guess. Asking
			// the live logs here instead could not be done safely: a
			// live log changes while it is read (a flush, a new
			// intent), and a torn read that named the ticket as a live
			// one's lost it for good (the fifth review's finding).
			if c.claim(t, s) {
				v.settled++
			}
		}
		l.clearCount()
		for i := range logCap {
			l.store(i, 0)
		}
	}
	return nil
}

// claim makes slot the owner of ticket t if the ticket has none, with a
// CAS on the ledger's aligned 32-bit word that holds t's byte: a live
// buyer's flush storing that byte at the same moment wins. It reports
// whether slot got it.
func (c *counter) claim(t int64, slot int) bool {
	i := t - 1
	if i&^3+4 > int64(len(c.owners)) { // the ledger's last bytes: no whole word
		if c.owners[i] == 0 {
			c.owners[i] = byte(slot + 1)
			return true
		}
		return false
	}
	// owners starts at a 64-aligned offset, so the word at i&^3 is a
	// 4-aligned uint32 of the shared mapping.
	w := (*atomic.Uint32)(unsafe.Pointer(&c.owners[i&^3]))
	shift := 8 * uint(i&3) // little-endian: byte i&3 of the word
	for {
		old := w.Load()
		if byte(old>>shift) != 0 {
			return false
		}
		if w.CompareAndSwap(old, old|uint32(slot+1)<<shift) {
			return true
		}
	}
}
