//go:build linux

package queue

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/futex"
	"github.com/shmkit/shmkit/shm"
)

// The layout; doc.go has it as a table.
const (
	offCapacity     = 0
	offMaxSize      = 4
	offCellSize     = 8
	offTail         = 64
	offHead         = 128
	offNotEmpty     = 192
	offRecvSleepers = 196
	offNotFull      = 256
	offSendSleepers = 260
	offAreas        = 320
	areaSize        = 64
	offCells        = offAreas + areaSize*MaxProcs
	cellHeader      = 16 // the state word, the length, padding
)

var _ [offCells % 64]struct{} // cells stay cache-line aligned

// closedBit in the tail word: CloseSend was called; the tail no longer
// moves, and the position it holds is where receivers find io.EOF.
const closedBit = 1 << 63

// A cell's state word: its position (40 bits: which lap of the ring the
// cell is in), the low 8 bits of the slot generation of the process the
// state names, a retry count, a state, and that process's slot+1.
const (
	stFree      = 0 // empty, ready for the message at its position
	stWriting   = 1 // a producer (slot) reserved it and is writing
	stPublished = 2 // a message, ready to be taken
	stTaking    = 3 // a consumer (slot) is copying it out

	posShift = 24
	posBits  = 40
	posMask  = 1<<posBits - 1
)

func word(pos uint64, state, slot int, gen uint8, tries uint64) uint64 {
	return (pos&posMask)<<posShift | uint64(gen)<<16 | (tries&63)<<10 | uint64(state)<<8 | uint64(slot+1)&0xff
}

// free and published are the words of a cell that names no process.
func free(pos uint64) uint64             { return word(pos, stFree, -1, 0, 0) }
func published(pos, tries uint64) uint64 { return word(pos, stPublished, -1, 0, tries) }

func stateOf(w uint64) int    { return int(w >> 8 & 3) }
func slotOf(w uint64) int     { return int(w&0xff) - 1 }
func genOf(w uint64) uint8    { return uint8(w >> 16) }
func triesOf(w uint64) uint64 { return w >> 10 & 63 }

// lap is how many positions w's is ahead of p (negative: behind), in the
// 40 bits a cell keeps of its position.
func lap(w, p uint64) int64 {
	d := (w>>posShift - p) & posMask
	return int64(d<<(64-posBits)) >> (64 - posBits)
}

// Queue is a handle on a queue in a shared-memory segment. It is safe for
// concurrent use by many goroutines of many processes (at most MaxProcs
// processes at once). Close it when done; its methods return an error
// wrapping ErrClosed after, as a zero Queue's do.
type Queue struct {
	seg      *shm.Segment
	me       shm.Slot
	gen8     uint8 // me.Gen's low bits, in the words of our cells
	capacity uint64
	mask     uint64
	maxSize  int
	cellSize int
	cells    []byte

	tail, head             *atomic.Uint64
	notEmpty, recvSleepers *atomic.Uint32
	notFull, sendSleepers  *atomic.Uint32

	closed   atomic.Bool
	inflight atomic.Int64
}

// cell is one cell of the ring: its state word, the message's length and
// the message. Cells are cellSize bytes at a 64-aligned offset of the
// mapping, so the words are aligned; the mapping is never moved by Go.
type cell struct {
	word *atomic.Uint64
	n    *atomic.Uint32
	data []byte
}

func (q *Queue) cell(pos uint64) cell {
	off := int(pos&q.mask) * q.cellSize
	b := q.cells[off : off+q.cellSize : off+q.cellSize]
	return cell{
		word: (*atomic.Uint64)(unsafe.Pointer(&b[0])),
		n:    (*atomic.Uint32)(unsafe.Pointer(&b[8])),
		data: b[cellHeader:],
	}
}

// area is process slot i's generation: cells whose state names slot i
// belong to the process of that generation (see doc.go, Identity).
func (q *Queue) area(i int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&q.seg.Data()[offAreas+areaSize*i]))
}

// cellAlive reports whether the process a cell's word names is alive: the
// one in the word's slot, if the slot's generation (in its area) still
// ends in the word's 8 bits (a later claim of the slot means that the
// cell's process is gone), and shm says its slot is held. Ours is.
func (q *Queue) cellAlive(w uint64) bool {
	s := slotOf(w)
	switch {
	case s < 0 || s >= MaxProcs:
		return false
	case s == q.me.Index:
		return genOf(w) == q.gen8
	case uint8(q.area(s).Load()) != genOf(w):
		return false
	}
	return q.alive(s)
}

// alive reports whether the process in a slot's area is alive. Our own
// slot is; a slot whose generation cannot be asked about counts as alive
// (its cells are left alone: a stall, never a loss).
func (q *Queue) alive(slot int) bool {
	if slot == q.me.Index {
		return true
	}
	if slot < 0 || slot >= MaxProcs {
		return false
	}
	g := q.area(slot).Load()
	if g == 0 {
		return false
	}
	ok, err := q.seg.Alive(shm.Slot{Index: slot, Gen: g})
	return ok || err != nil
}

// Size is the data size of a queue of capacity cells of maxSize bytes.
func size(capacity, maxSize int) int { return offCells + capacity*cellSizeOf(maxSize) }

func cellSizeOf(maxSize int) int { return (cellHeader + maxSize + 63) &^ 63 }

// roundCapacity is capacity rounded up to a power of two.
func roundCapacity(capacity int) int {
	if capacity <= 1 {
		return 1
	}
	return 1 << bits.Len(uint(capacity-1))
}

func checkArgs(capacity, maxSize int) error {
	switch {
	case capacity < 1 || capacity > MaxCapacity:
		return fmt.Errorf("queue: a capacity of %d: want 1 to %d", capacity, MaxCapacity)
	case maxSize < 1 || maxSize > MaxMessage:
		return fmt.Errorf("queue: a maximum message size of %d: want 1 to %d", maxSize, MaxMessage)
	case size(roundCapacity(capacity), maxSize) > shm.MaxDataSize:
		return fmt.Errorf("queue: %d cells of %d bytes do not fit a segment", roundCapacity(capacity), maxSize)
	}
	return nil
}

func initQueue(capacity, maxSize int) shm.InitFunc {
	return func(seg *shm.Segment) error {
		layout(seg.Data(), capacity, maxSize)
		return nil
	}
}

// layout writes an empty queue into d, 64-aligned and size(capacity,
// maxSize) bytes of zeros.
func layout(d []byte, capacity, maxSize int) {
	le32(d, offCapacity, uint32(capacity))
	le32(d, offMaxSize, uint32(maxSize))
	le32(d, offCellSize, uint32(cellSizeOf(maxSize)))
	cs := cellSizeOf(maxSize)
	for i := range capacity {
		(*atomic.Uint64)(unsafe.Pointer(&d[offCells+i*cs])).Store(free(uint64(i)))
	}
}

func le32(b []byte, off int, v uint32) { (*atomic.Uint32)(unsafe.Pointer(&b[off])).Store(v) }
func ld32(b []byte, off int) uint32    { return (*atomic.Uint32)(unsafe.Pointer(&b[off])).Load() }

// Open opens the existing queue name. It fails with an error matching
// fs.ErrNotExist if there is none. It claims this process's slot in the
// segment (waiting for another process's claim until ctx is done).
func Open(ctx context.Context, name string) (*Queue, error) {
	seg, err := shm.Open(name, Tag)
	if err != nil {
		return nil, versionError(name, err)
	}
	return attach(ctx, seg, 0, 0)
}

// Create makes the queue name, of capacity messages (rounded up to a
// power of two) of at most maxSize bytes each, and opens it. It fails
// with an error matching fs.ErrExist if the name is taken.
func Create(ctx context.Context, name string, capacity, maxSize int) (*Queue, error) {
	if err := checkArgs(capacity, maxSize); err != nil {
		return nil, err
	}
	capacity = roundCapacity(capacity)
	seg, err := shm.Create(name, size(capacity, maxSize), Tag, initQueue(capacity, maxSize))
	if err != nil {
		return nil, versionError(name, err)
	}
	return attach(ctx, seg, capacity, maxSize)
}

// OpenOrCreate opens the queue name, making it first if there is none.
// An existing queue of another capacity or maximum size is refused with
// ErrCapacityMismatch or ErrSizeMismatch.
func OpenOrCreate(ctx context.Context, name string, capacity, maxSize int) (*Queue, error) {
	if err := checkArgs(capacity, maxSize); err != nil {
		return nil, err
	}
	capacity = roundCapacity(capacity)
	seg, err := shm.OpenOrCreate(ctx, name, size(capacity, maxSize), Tag, initQueue(capacity, maxSize))
	if errors.Is(err, shm.ErrSizeMismatch) {
		// Say it in the queue's terms: open what is there and compare.
		if seg, oerr := shm.Open(name, Tag); oerr == nil {
			q, aerr := attach(ctx, seg, capacity, maxSize)
			if aerr == nil {
				q.Close()
				return nil, fmt.Errorf("%s: %w", seg.Path(), shm.ErrSizeMismatch) // same words, another size: corrupt
			}
			return nil, aerr
		}
	}
	if err != nil {
		return nil, versionError(name, err)
	}
	return attach(ctx, seg, capacity, maxSize)
}

// Remove deletes the queue name (shm.Remove): processes that have it open
// keep using it; the next OpenOrCreate makes a new one.
func Remove(name string) error { return shm.Remove(name) }

// versionError tells a queue of another layout version from another type.
func versionError(name string, err error) error {
	if errors.Is(err, shm.ErrTypeMismatch) {
		if info, serr := shm.Stat(name); serr == nil && strings.HasPrefix(info.Tag, "queue.Queue/") {
			return fmt.Errorf("%w: %s is %q, this build reads %q: %w", ErrLayoutVersion, info.Path, info.Tag, Tag, err)
		}
	}
	return err
}

// attachMu serialises attaches in this process: the first one of a
// segment settles what a dead process of the same slot left, and a
// second must not settle the first's live cells.
var attachMu sync.Mutex

// attach checks seg's words and makes a Queue of them (capacity and
// maxSize 0: whatever it holds), claims this process's slot and settles
// the cells a dead process of the same slot left. It closes seg on
// failure.
func attach(ctx context.Context, seg *shm.Segment, capacity, maxSize int) (*Queue, error) {
	q, err := views(seg)
	if err == nil {
		switch {
		case capacity != 0 && int(q.capacity) != capacity:
			err = fmt.Errorf("%s: %w: it has %d cells, want %d", seg.Path(), ErrCapacityMismatch, q.capacity, capacity)
		case maxSize != 0 && q.maxSize != maxSize:
			err = fmt.Errorf("%s: %w: its messages are at most %d bytes, want %d", seg.Path(), ErrSizeMismatch, q.maxSize, maxSize)
		}
	}
	if err == nil {
		q.me, err = seg.Slot(ctx)
		q.gen8 = uint8(q.me.Gen)
	}
	if err != nil {
		seg.Close()
		return nil, err
	}
	attachMu.Lock()
	if a := q.area(q.me.Index); a.Load() != q.me.Gen {
		q.settle(q.me.Index)
		a.Store(q.me.Gen)
	}
	attachMu.Unlock()
	return q, nil
}

// views checks seg's queue words and makes a Queue of them, without a
// slot.
func views(seg *shm.Segment) (*Queue, error) {
	d := seg.Data()
	if len(d) < offCells {
		return nil, fmt.Errorf("%s: %w: %d data bytes, a queue has more than %d", seg.Path(), ErrCorrupt, len(d), offCells)
	}
	capacity, maxSize, cs := int(ld32(d, offCapacity)), int(ld32(d, offMaxSize)), int(ld32(d, offCellSize))
	switch {
	case capacity < 1 || capacity > MaxCapacity || capacity&(capacity-1) != 0:
		return nil, fmt.Errorf("%s: %w: capacity %d", seg.Path(), ErrCorrupt, capacity)
	case maxSize < 1 || maxSize > MaxMessage || cs != cellSizeOf(maxSize):
		return nil, fmt.Errorf("%s: %w: maximum size %d, cells of %d bytes", seg.Path(), ErrCorrupt, maxSize, cs)
	case len(d) != size(capacity, maxSize):
		return nil, fmt.Errorf("%s: %w: %d data bytes for %d cells of %d", seg.Path(), ErrCorrupt, len(d), capacity, cs)
	}
	q := &Queue{
		seg: seg, capacity: uint64(capacity), mask: uint64(capacity - 1), maxSize: maxSize, cellSize: cs,
		cells:        d[offCells:],
		tail:         (*atomic.Uint64)(unsafe.Pointer(&d[offTail])),
		head:         (*atomic.Uint64)(unsafe.Pointer(&d[offHead])),
		notEmpty:     (*atomic.Uint32)(unsafe.Pointer(&d[offNotEmpty])),
		recvSleepers: (*atomic.Uint32)(unsafe.Pointer(&d[offRecvSleepers])),
		notFull:      (*atomic.Uint32)(unsafe.Pointer(&d[offNotFull])),
		sendSleepers: (*atomic.Uint32)(unsafe.Pointer(&d[offSendSleepers])),
		me:           shm.Slot{Index: -1},
	}
	// The head before the tail, and again after: on a busy queue both
	// move meanwhile. The tail is never behind the head, and never more
	// than two laps ahead of it (a cell dropped at settlement is free for
	// the next lap before the head passes it) plus the reservations in
	// progress.
	h1 := q.head.Load()
	t := q.tail.Load() &^ closedBit
	h2 := q.head.Load()
	if h1 > t || t-h2 > 2*q.capacity+MaxProcs {
		return nil, fmt.Errorf("%s: %w: head %d, tail %d, %d cells", seg.Path(), ErrCorrupt, h1, t, capacity)
	}
	return q, nil
}

// settle puts right what the dead process that had slot s left in the
// cells: a message it was writing is dropped (its Send never returned),
// one it was taking goes back to be taken again (its Recv never
// returned). Consumers do the same as they meet such cells; a process
// that takes slot s over must do it first, for all of them, before its
// generation goes into the slot's area: from then on a cell naming slot s
// names it. See doc.go, Identity.
func (q *Queue) settle(s int) {
	changed := false
	for i := range q.capacity {
		c := q.cell(i)
		for {
			w := c.word.Load()
			if slotOf(w) != s {
				break
			}
			pos := w >> posShift
			var nw uint64
			switch stateOf(w) {
			case stWriting:
				nw = free(pos + q.capacity)
			case stTaking:
				nw = published(pos, triesOf(w)+1)
			default:
				nw = w // no other state names a slot
			}
			if nw == w || c.word.CompareAndSwap(w, nw) {
				changed = changed || nw != w
				break
			}
		}
	}
	if changed {
		q.wakeAll()
	}
}

// enter marks a call in flight; Close waits for them. It fails on a
// closed or zero Queue.
func (q *Queue) enter() error {
	if q == nil || q.seg == nil {
		return fmt.Errorf("queue: a zero Queue (make one with Open, Create or OpenOrCreate): %w", ErrClosed)
	}
	q.inflight.Add(1)
	if q.closed.Load() {
		q.inflight.Add(-1)
		return q.errClosed()
	}
	return nil
}

func (q *Queue) exit() { q.inflight.Add(-1) }

func (q *Queue) errClosed() error { return fmt.Errorf("%s: %w", q.seg.Path(), ErrClosed) }

// testHook, when set (tests only), is called at the steps a test kills or
// stops a process at: "reserved" (a producer's cell is writing, the tail
// perhaps not yet moved) and "taking" (a consumer's cell is taking).
var testHook func(step string)

// maxTries bounds a try's loop: every turn of a valid queue's loop is
// another process's progress, so only corrupt words run this far.
const maxTries = 1 << 20

// Send sends msg, waiting while the queue is full, until ctx is done. It
// fails with ErrTooBig for a message longer than MaxSize and with
// ErrSendClosed once CloseSend was called; then nothing was sent. A nil
// error means the message is in the queue: it will be received, even if
// this process dies the next instant.
func (q *Queue) Send(ctx context.Context, msg []byte) error {
	if err := q.enter(); err != nil {
		return err
	}
	defer q.exit()
	if len(msg) > q.maxSize {
		return q.errTooBig(len(msg))
	}
	w := waiter{q: q, seq: q.notFull, sleepers: q.sendSleepers}
	for {
		ok, err := q.trySend(msg)
		if ok || err != nil {
			return err
		}
		if err := w.wait(ctx, q.full); err != nil {
			return err
		}
	}
}

// TrySend sends msg if there is room now; it reports whether it did.
func (q *Queue) TrySend(msg []byte) (bool, error) {
	if err := q.enter(); err != nil {
		return false, err
	}
	defer q.exit()
	if len(msg) > q.maxSize {
		return false, q.errTooBig(len(msg))
	}
	return q.trySend(msg)
}

func (q *Queue) errTooBig(n int) error {
	return fmt.Errorf("%s: %w: %d bytes, at most %d", q.seg.Path(), ErrTooBig, n, q.maxSize)
}

// trySend puts msg in the cell at the tail: it reserves the cell (free ->
// writing, naming our slot), moves the tail past it, writes the message
// and publishes it (writing -> published). A producer that finds the
// tail's cell reserved by another moves the tail on for it, so a
// producer killed between its two steps stalls nobody. It reports false
// when the queue is full.
func (q *Queue) trySend(msg []byte) (bool, error) {
	for range maxTries {
		t := q.tail.Load()
		if t&closedBit != 0 {
			return false, fmt.Errorf("%s: %w", q.seg.Path(), ErrSendClosed)
		}
		c := q.cell(t)
		w := c.word.Load()
		switch d := lap(w, t); {
		case w == free(t):
			if !c.word.CompareAndSwap(w, word(t, stWriting, q.me.Index, q.gen8, 0)) {
				continue
			}
			if testHook != nil {
				testHook("reserved")
			}
			if !q.tail.CompareAndSwap(t, t+1) && q.tail.Load() == t|closedBit {
				// Closed at our cell: nothing after the close is sent.
				c.word.Store(free(t))
				q.wakeRecvIfSleeping()
				return false, fmt.Errorf("%s: %w", q.seg.Path(), ErrSendClosed)
			}
			release32(c.n, uint32(len(msg)))
			copy(c.data, msg)
			// A full barrier (atomic's XCHG): the publish must be seen
			// before our look at the sleepers, as a sleeper's count is
			// before its look at the cell.
			c.word.Store(published(t, 0))
			q.wakeRecvIfSleeping()
			return true, nil
		case d == 0, d > 0:
			// Reserved by another producer that has not moved the tail
			// yet (or died first), or already past: move it on.
			q.tail.CompareAndSwap(t, t+1)
		case d == -int64(q.capacity):
			if q.tail.Load() == t {
				return false, nil // the last lap's message is still there: full
			}
		default:
			if q.tail.Load() == t {
				return false, q.corrupt(t, w, "tail")
			}
		}
	}
	return false, fmt.Errorf("%s: %w: Send found no cell in %d tries", q.seg.Path(), ErrCorrupt, maxTries)
}

func (q *Queue) corrupt(pos, w uint64, at string) error {
	return fmt.Errorf("%s: %w: the cell at the %s (position %d) holds %#x", q.seg.Path(), ErrCorrupt, at, pos, w)
}

// full reports whether the tail's cell still holds the last lap's
// message, and how long to sleep on it: until a consumer frees a cell,
// which wakes us; the slice only bounds a missed wake.
func (q *Queue) full() (bool, time.Duration) {
	t := q.tail.Load()
	return t&closedBit == 0 && lap(q.cell(t).word.Load(), t) < 0, time.Second
}

// Recv receives one message into buf and returns its length, waiting
// until one comes or ctx is done. It returns io.EOF once CloseSend was
// called and every message sent before it was received. A buf shorter
// than the message fails with ErrShortBuffer and leaves the message in
// the queue; a buf of MaxSize bytes always holds one.
func (q *Queue) Recv(ctx context.Context, buf []byte) (int, error) {
	if err := q.enter(); err != nil {
		return 0, err
	}
	defer q.exit()
	return q.recv(ctx, buf, nil)
}

// RecvFunc receives one message and runs fn on it, waiting until one
// comes or ctx is done; the message is removed from the queue only when
// fn returns nil. If fn returns an error (or panics), the message is put
// back, first in line, and RecvFunc returns that error; if the process
// dies while fn runs, the message is delivered again, to the next
// receiver. So a message is processed at least once, and a receiver
// killed at any instruction loses none: the shape to use when what is
// done with a message must not be lost (write it to a file, a database).
//
// msg is the message in the shared cell itself, valid only until fn
// returns: copy what must outlive it. While fn runs, the cell is the
// queue's head: other receivers wait for it, so keep fn short.
// It returns io.EOF as Recv does.
func (q *Queue) RecvFunc(ctx context.Context, fn func(msg []byte) error) error {
	if err := q.enter(); err != nil {
		return err
	}
	defer q.exit()
	_, err := q.recv(ctx, nil, fn)
	return err
}

func (q *Queue) recv(ctx context.Context, buf []byte, fn func([]byte) error) (int, error) {
	w := waiter{q: q, seq: q.notEmpty, sleepers: q.recvSleepers}
	for {
		n, ok, err := q.tryRecv(buf, fn, w.checkLive())
		if ok || err != nil {
			return n, err
		}
		if err := w.wait(ctx, q.empty); err != nil {
			return 0, err
		}
	}
}

// RecvMsg is Recv into a new slice of the message's length.
func (q *Queue) RecvMsg(ctx context.Context) ([]byte, error) {
	buf := make([]byte, q.MaxSize())
	n, err := q.Recv(ctx, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n:n], nil
}

// TryRecv receives a message if one is ready now; it reports whether it
// did (and io.EOF as Recv does).
func (q *Queue) TryRecv(buf []byte) (int, bool, error) {
	if err := q.enter(); err != nil {
		return 0, false, err
	}
	defer q.exit()
	return q.tryRecv(buf, nil, true)
}

// tryRecv takes the message in the cell at the head: published -> taking
// (naming our slot), copy it out, free the cell for the next lap, move
// the head. The head moves only after the copy, so a consumer killed
// while copying leaves its cell at the head, taking, and the next
// consumer that finds it dead takes it over and delivers it: at least
// once. live: whether to ask the kernel about a process that is taking
// or writing the head's cell (a syscall: waiters ask only now and then).
func (q *Queue) tryRecv(buf []byte, fn func([]byte) error, live bool) (int, bool, error) {
	for range maxTries {
		// The tail is the producers' line: read only where it matters,
		// not on the way to a published message.
		h := q.head.Load()
		c := q.cell(h)
		w := c.word.Load()
		d := lap(w, h)
		if d != 0 {
			t := q.tail.Load()
			switch {
			case t == h|closedBit:
				return 0, false, io.EOF // closed here: everything before is received
			case q.head.Load() != h:
			case d < 0:
				return 0, false, q.corrupt(h, w, "head")
			case h >= t&^closedBit:
				// Dropped (settled) before its producer moved the
				// tail past it: move the tail on for it first.
				if t&closedBit == 0 && t >= h {
					q.tail.CompareAndSwap(t, t+1)
				} else {
					return 0, false, q.corrupt(h, w, "head")
				}
			default:
				q.head.CompareAndSwap(h, h+1) // taken already (or dropped): move on
			}
			continue
		}
		switch stateOf(w) {
		case stFree:
			if q.tail.Load() == h|closedBit {
				return 0, false, io.EOF // closed here: everything before is received
			}
			return 0, false, nil // empty
		case stWriting:
			if q.tail.Load() == h|closedBit {
				return 0, false, io.EOF // its producer is about to give it back
			}
			if !live || q.cellAlive(w) {
				return 0, false, nil // its producer is writing
			}
			// Its producer died before its Send returned: drop it.
			if c.word.CompareAndSwap(w, free(h+q.capacity)) {
				q.passDropped(h)
			}
			continue
		case stTaking:
			if !live || q.cellAlive(w) {
				return 0, false, nil // another consumer is copying it out
			}
		}
		// Published, or being taken by a dead consumer: ours.
		if testHook != nil && stateOf(w) == stTaking {
			testHook("decided")
		}
		mine := word(h, stTaking, q.me.Index, q.gen8, triesOf(w)+1)
		if !c.word.CompareAndSwap(w, mine) {
			continue
		}
		if testHook != nil {
			testHook("taking")
		}
		n := int(c.n.Load())
		if n > q.maxSize {
			c.word.Store(free(h + q.capacity))
			q.head.CompareAndSwap(h, h+1)
			q.wakeSendIfSleeping()
			q.wakeRecvIfSleeping()
			return 0, false, fmt.Errorf("%s: %w: a message of %d bytes at position %d, at most %d; dropped", q.seg.Path(), ErrCorrupt, n, h, q.maxSize)
		}
		// A CAS from our own word: should the take have gone to
		// another receiver meanwhile (it cannot, while we live), the
		// cell is theirs, not ours to write.
		putBack := func() { c.word.CompareAndSwap(mine, published(h, triesOf(mine))) }
		if fn != nil {
			if err := q.run(fn, c.data[:n], putBack); err != nil {
				q.wakeRecvIfSleeping()
				return 0, false, err
			}
		} else if n > len(buf) {
			putBack()
			q.wakeRecvIfSleeping() // another receiver may wait behind our take
			return 0, false, fmt.Errorf("%s: %w: the next message is %d bytes, the buffer %d", q.seg.Path(), ErrShortBuffer, n, len(buf))
		} else {
			copy(buf, c.data[:n])
		}
		// A CAS from our own word, not a store: should another receiver
		// have taken the cell over from us (see doc.go, Identity: a
		// look fooled by a word come round), the cell is no longer ours
		// to free, and a store would wipe what it holds now.
		if !c.word.CompareAndSwap(mine, free(h+q.capacity)) {
			return n, true, nil // delivered here, and there too
		}
		q.head.CompareAndSwap(h, h+1)
		q.wakeSendIfSleeping()
		q.wakeRecvIfSleeping() // one may wait for this cell to be done
		return n, true, nil
	}
	return 0, false, fmt.Errorf("%s: %w: Recv found no cell in %d tries", q.seg.Path(), ErrCorrupt, maxTries)
}

// passDropped moves the head past position h, whose cell was dropped:
// the tail first if its producer died before moving it (the head never
// passes the tail), unless the queue was closed right there (then h is
// where receivers find io.EOF, and the head stays).
func (q *Queue) passDropped(h uint64) {
	for {
		t := q.tail.Load()
		if t == h|closedBit {
			return
		}
		if t != h || q.tail.CompareAndSwap(h, h+1) {
			break
		}
	}
	q.head.CompareAndSwap(h, h+1)
	q.wakeSendIfSleeping()
}

// run runs fn on a message being taken; on its error or panic the
// message is put back before run returns or the panic goes on.
func (q *Queue) run(fn func([]byte) error, msg []byte, putBack func()) (err error) {
	done := false
	defer func() {
		if !done {
			putBack() // panicking
			q.wakeRecvIfSleeping()
		}
	}()
	err = fn(msg)
	done = true
	if err != nil {
		putBack()
	}
	return err
}

// wakeRecvIfSleeping and wakeSendIfSleeping wake the sleepers of one
// side if any said they sleep (see waiter.wait). The flag is taken, not
// counted down by the sleepers: one wake per round of sleep however many
// messages follow, and a sleeper killed asleep leaves a flag that the
// next wake clears, not a count that makes every later call wake.
func (q *Queue) wakeRecvIfSleeping() {
	if q.recvSleepers.Load() != 0 && q.recvSleepers.Swap(0) != 0 {
		q.notEmpty.Add(1)
		futex.Wake(q.notEmpty, 1<<30)
	}
}

func (q *Queue) wakeSendIfSleeping() {
	if q.sendSleepers.Load() != 0 && q.sendSleepers.Swap(0) != 0 {
		q.notFull.Add(1)
		futex.Wake(q.notFull, 1<<30)
	}
}

// empty reports whether the head's cell holds nothing to take now, and
// how long to sleep on it: a free cell until a producer publishes, which
// wakes us (the slice bounds a missed wake); a cell being written or taken
// 10 ms, after which the waiter asks whether that process is alive.
func (q *Queue) empty() (bool, time.Duration) {
	h := q.head.Load()
	if q.tail.Load() == h|closedBit {
		return false, 0
	}
	w := q.cell(h).word.Load()
	if lap(w, h) != 0 {
		return false, 0
	}
	switch stateOf(w) {
	case stFree:
		return true, time.Second
	case stPublished:
		return false, 0
	}
	return true, sleepSlice
}

// wakeAll wakes every sleeper of both kinds, in every process: after a
// close, a settlement, a cancelled wait.
func (q *Queue) wakeAll() {
	q.recvSleepers.Store(0)
	q.sendSleepers.Store(0)
	q.notEmpty.Add(1)
	futex.Wake(q.notEmpty, 1<<30)
	q.notFull.Add(1)
	futex.Wake(q.notFull, 1<<30)
}

// CloseSend closes the queue for sending, for every process: Sends fail
// with ErrSendClosed from now on, and receivers get io.EOF once they have
// received every message sent before. Closing a closed queue is
// ErrSendClosed. It cannot be undone.
func (q *Queue) CloseSend() error {
	if err := q.enter(); err != nil {
		return err
	}
	defer q.exit()
	for {
		t := q.tail.Load()
		if t&closedBit != 0 {
			return fmt.Errorf("%s: %w: already", q.seg.Path(), ErrSendClosed)
		}
		if q.tail.CompareAndSwap(t, t|closedBit) {
			q.wakeAll()
			return nil
		}
	}
}

// Len is the number of messages in the queue now (sent and not yet
// received), Cap its capacity, MaxSize the longest message it holds.
func (q *Queue) Len() int {
	if q.enter() != nil {
		return 0
	}
	defer q.exit()
	t, h := q.tail.Load()&^closedBit, q.head.Load()
	if t < h {
		return 0
	}
	return int(min(t-h, q.capacity))
}

func (q *Queue) Cap() int {
	if q == nil || q.seg == nil {
		return 0
	}
	return int(q.capacity)
}

func (q *Queue) MaxSize() int {
	if q == nil || q.seg == nil {
		return 0
	}
	return q.maxSize
}

// Segment is the queue's segment handle.
func (q *Queue) Segment() *shm.Segment { return q.seg }

// Close closes the handle, after the calls in flight on it return
// (blocked ones return ErrClosed at once). The queue stays, with its
// messages; shm.Remove deletes it. Close after Close returns ErrClosed.
func (q *Queue) Close() error {
	if q == nil || q.seg == nil {
		return fmt.Errorf("queue: a zero Queue: %w", ErrClosed)
	}
	if !q.closed.CompareAndSwap(false, true) {
		return q.errClosed()
	}
	// Sleepers of this handle look at closed when they wake: wake them
	// now, and again now and then for one that was just going to sleep
	// (every sleeper of the queue wakes too, so not often).
	for i := 0; q.inflight.Load() != 0; i++ {
		if i%100 == 0 {
			q.wakeAll()
		}
		time.Sleep(100 * time.Microsecond)
	}
	return q.seg.Close()
}

// waiter is a Send or Recv waiting for its turn: a short spin, yields,
// then sleeps on the futex word seq, with the sleepers flag set so that
// the other side wakes it (and only then makes the syscall).
type waiter struct {
	q        *Queue
	seq      *atomic.Uint32
	sleepers *atomic.Uint32
	rounds   int
}

// checkLive says whether this round asks the kernel about a process in
// the way: after the spinning is over, every few rounds.
func (w *waiter) checkLive() bool { return w.rounds > spinRounds && w.rounds%4 == 0 }

const (
	spinRounds  = 2000 // about 20-50 µs of yields before the first sleep
	sleepSlice  = 10 * time.Millisecond
	yieldRounds = 64 // of the spin, the first ones pure spins
)

// wait waits for a change worth another try: blocked reports whether
// the condition still holds after registering as a sleeper, and for how
// long to sleep on it.
func (w *waiter) wait(ctx context.Context, blocked func() (bool, time.Duration)) error {
	w.rounds++
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.q.closed.Load() {
		return w.q.errClosed()
	}
	if w.rounds <= spinRounds {
		if w.rounds > yieldRounds {
			yield()
		}
		return nil
	}
	// The word's value first, then the ctx waker: a wake that lands
	// between them changes the word, and the futex wait returns at once.
	seq := w.seq.Load()
	if ctx.Done() != nil {
		// A wake for every sleeper on the word when ctx is done. It
		// may run after the handle's Close: harmless, the segment's
		// range is retired, not unmapped (shm.Segment.Close).
		word := w.seq
		stop := context.AfterFunc(ctx, func() {
			word.Add(1)
			futex.Wake(word, 1<<30)
		})
		defer stop()
	}
	// Say we sleep (a locked XCHG: a full barrier before the look at the
	// cell in blocked, as the other side publishes before it looks at the
	// flag), look once more, sleep. The waker clears the flag; we set it
	// again each time we go back to sleep.
	w.sleepers.Store(1)
	if ok, d := blocked(); ok {
		futex.Wait(w.seq, seq, d)
	}
	return ctx.Err()
}

// yield gives this thread's CPU to another runnable thread, if one waits.
func yield() { unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
