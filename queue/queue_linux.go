//go:build linux

package queue

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/shm"
)

// The layout; doc.go has it as a table.
const (
	offCapacity     = 0
	offMaxSize      = 4
	offCellSize     = 8
	offTail         = 64
	offHead         = 128
	offClosedAt     = 136
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
	stFree      = 0 // empty, ready for the message at its position (or reserved: the tail past it)
	stPublished = 2 // a message, ready to be taken
	stTaking    = 3 // a consumer (slot) is copying it out
	// State 1 is not used: layout 1 had producers mark their cells.

	posShift = 24
	posBits  = 40
	posMask  = 1<<posBits - 1
)

func word(pos uint64, state, slot int, gen uint8, tries uint64) uint64 {
	return (pos&posMask)<<posShift | uint64(gen)<<16 | (tries&31)<<10 | uint64(state)<<8 | uint64(slot+1)&0xff
}

// seizedBit marks a taking word that a receiver is taking over from its
// (dead, it believes) holder: the word is the holder's, frozen while the
// receiver looks again (see doc.go, Identity).
const seizedBit = 1 << 15

// free and published are the words of a cell that names no process.
func free(pos uint64) uint64             { return word(pos, stFree, -1, 0, 0) }
func published(pos, tries uint64) uint64 { return word(pos, stPublished, -1, 0, tries) }

func stateOf(w uint64) int    { return int(w >> 8 & 3) }
func slotOf(w uint64) int     { return int(w&0xff) - 1 }
func genOf(w uint64) uint8    { return uint8(w >> 16) }
func triesOf(w uint64) uint64 { return w >> 10 & 31 }

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
	_        noCopy // go vet's copylocks reports a copied Queue
	seg      *shm.Segment
	me       shm.Slot
	gen8     uint8 // me.Gen's low bits, in the words of our cells
	capacity uint64
	mask     uint64
	maxSize  int
	cellSize int
	cells    []byte
	areas    []byte // the slots' areas; like cells, valid after Close (shm retires the range)

	tail, head             *atomic.Uint64
	closedAt               *atomic.Uint64
	notEmpty, recvSleepers *atomic.Uint32
	notFull, sendSleepers  *atomic.Uint32

	key   attachKey
	local *slotLocal // this process's side of its slot: shared by its handles
	id    uint64     // this handle's name in local's lanes, never 0 (64 bits: never reused)
	plain bool       // publish with a plain store (registered for membarrier)
	*handle
}

type noCopy struct{}

func (*noCopy) Lock()   {}
func (*noCopy) Unlock() {}

// handle is a Queue handle's own state, behind a pointer so that a copy
// of the Queue (which go vet reports) shares it: the copy's Close closes
// the original too, and waits for its calls. With the state copied, the
// original went on sending into the mapping the copy's Close had retired,
// and its Send returned nil for messages no one would ever see.
type handle struct {
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
	return (*atomic.Uint64)(unsafe.Pointer(&q.areas[areaSize*i]))
}

// Lanes: words 2 to 7 of a slot's area hold the intents of the process's
// Sends, one goroutine's each: 0 a free lane, laneBusy a lane in use,
// laneBusy|(t+1) a Send about to reserve, or writing, the cell at
// position t (see doc.go, Protocol).
const (
	lanes    = 6
	laneOff  = 16
	laneBusy = 1 << 63
)

var _ [areaSize - laneOff - 8*lanes]struct{} // the lanes fit the area

func (q *Queue) lane(slot, i int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&q.areas[areaSize*slot+laneOff+8*i]))
}

// writerAlive reports whether a live process says, in a lane, that it is
// writing (or about to reserve) the cell at position t. A lane names no
// generation: it is its slot's, whose area holds the generation of the
// process using it (a process that takes a slot over clears its dead
// predecessor's lanes first, so a stale intent is at worst taken for the
// live successor's: a stall until the next look, never a drop).
func (q *Queue) writerAlive(t uint64) bool {
	for s := range MaxProcs {
		for i := range lanes {
			if q.lane(s, i).Load() == laneBusy|(t+1) && q.alive(s) {
				return true
			}
		}
	}
	return false
}

// seizing is the seized word slot i's process is taking over, 0 if none:
// it says who froze a seized word, which the word itself does not.
func (q *Queue) seizing(i int) *atomic.Uint64 {
	return (*atomic.Uint64)(unsafe.Pointer(&q.areas[areaSize*i+8]))
}

// liveSeizer reports whether a live process other than us is taking over
// the cell whose word is the seized word s.
func (q *Queue) liveSeizer(s uint64) bool {
	for i := range MaxProcs {
		if i != q.me.Index && q.seizing(i).Load() == s && q.alive(i) {
			return true
		}
	}
	return false
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
	defer attachMu.Unlock()
	q.key = attachKey{unsafe.SliceData(seg.Data()), q.me.Gen}
	if q.local = attached[q.key]; q.local == nil {
		// This process's first handle on this claim of the slot: what
		// the slot's area and the cells say of it is a predecessor's
		// (or junk), whatever the area's word says.
		if err := q.settle(ctx, q.me.Index); err != nil {
			seg.Close()
			return nil, err
		}
		q.seizing(q.me.Index).Store(0) // a dead predecessor's, if any
		for i := range lanes {
			q.lane(q.me.Index, i).Store(0) // its intents: the cells they name wait for no one now
		}
		q.area(q.me.Index).Store(q.me.Gen)
		q.local = &slotLocal{}
		attached[q.key] = q.local
	}
	q.local.refs++
	for q.id == 0 {
		q.id = handleIDs.Add(1)
	}
	q.plain = registered()
	return q, nil
}

// attached is this process's side of each slot it holds, per segment
// mapping and slot claim (under attachMu): the first handle settles and
// takes the slot's area, the others share it. Kept here, not read from
// the shared area, which junk could make look like ours (the review's
// TestJunkLanes).
var attached = map[attachKey]*slotLocal{}

type attachKey struct {
	data *byte  // the mapping: one per segment per process (shm)
	gen  uint64 // the slot claim
}

// slotLocal is what this process's handles on one slot share: which of
// the slot's lanes a goroutine's Send holds, and through which handle
// (its id). A lane is taken here, in this process's memory, by a CAS, and
// its intent then written into the shared lane; a handle's Close waits
// for the lanes its own Sends hold (not another handle's: a busy handle
// would keep the lanes from ever being all free at once, the second
// review's TestCloseBesideBusyHandle).
type slotLocal struct {
	lanes [lanes]atomic.Uint64
	refs  int // handles, under attachMu
}

// handleIDs numbers the handles of this process, for the lanes they
// hold: 64 bits, so that no two handles ever share a number (32 bits
// wrapped after 2^32 opens, and a new handle could take a live one's:
// the third review found it, with the counter set near its end).
var handleIDs atomic.Uint64

// detach is attach's undo, at Close.
func (q *Queue) detach() {
	attachMu.Lock()
	defer attachMu.Unlock()
	if q.local.refs--; q.local.refs <= 0 {
		delete(attached, q.key)
	}
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
		areas:        d[offAreas:offCells],
		tail:         (*atomic.Uint64)(unsafe.Pointer(&d[offTail])),
		head:         (*atomic.Uint64)(unsafe.Pointer(&d[offHead])),
		closedAt:     (*atomic.Uint64)(unsafe.Pointer(&d[offClosedAt])),
		notEmpty:     (*atomic.Uint32)(unsafe.Pointer(&d[offNotEmpty])),
		recvSleepers: (*atomic.Uint32)(unsafe.Pointer(&d[offRecvSleepers])),
		notFull:      (*atomic.Uint32)(unsafe.Pointer(&d[offNotFull])),
		sendSleepers: (*atomic.Uint32)(unsafe.Pointer(&d[offSendSleepers])),
		me:           shm.Slot{Index: -1},
		handle:       new(handle),
	}
	// The head before the tail, and again after: on a busy queue both
	// move meanwhile. The tail is never behind the head, and never more
	// than two laps ahead of it (a cell dropped at settlement is free for
	// the next lap before the head passes it) plus the reservations in
	// progress, one per lane.
	h1 := q.head.Load()
	t := q.tail.Load() &^ closedBit
	h2 := q.head.Load()
	// h2 may be past t (both moved on meanwhile: the review's
	// TestViewsBusy); only a head read before the tail must not be.
	if h1 > t || h2 <= t && t-h2 > 2*q.capacity+MaxProcs*lanes {
		return nil, fmt.Errorf("%s: %w: head %d, tail %d, %d cells", seg.Path(), ErrCorrupt, h1, t, capacity)
	}
	return q, nil
}

// settle puts right what the dead process that had slot s left in the
// cells: a message it was taking goes back to be taken again (its Recv
// never returned). A cell it reserved and was writing names no process:
// it is dropped by the receiver that finds no live intent for it once
// the lanes are cleared. Consumers do the same as they meet such cells; a process
// that takes slot s over must do it first, for all of them, before its
// generation goes into the slot's area: from then on a cell naming slot s
// names it. See doc.go, Identity.
func (q *Queue) settle(ctx context.Context, s int) error {
	changed := false
	defer func() {
		if changed {
			q.wakeAll()
		}
	}()
	for i := range q.capacity {
		c := q.cell(i)
		for {
			w := c.word.Load()
			if slotOf(w) != s {
				break
			}
			if w&seizedBit != 0 && q.liveSeizer(w) {
				// A receiver is taking it over from our dead
				// predecessor: it finds it dead (our generation is not
				// in the area yet) and commits; wait for that.
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("%s: settling slot %d: %w", q.seg.Path(), s, err)
				}
				yield()
				continue
			}
			nw, ok := q.settled(w) // taking seized or not: its holder is dead
			if !ok || c.word.CompareAndSwap(w, nw) {
				changed = changed || ok
				break
			}
		}
	}
	return nil
}

// settled is the word a cell gets when the process its word w names is
// dead: a message it was taking goes back to be taken again. ok is false
// for a word in no such state.
func (q *Queue) settled(w uint64) (nw uint64, ok bool) {
	if stateOf(w) == stTaking {
		return published(w>>posShift, triesOf(w)+1), true
	}
	return w, false
}

// enter marks a call in flight; Close waits for them. It fails on a
// closed or zero Queue.
func (q *Queue) enter() error {
	if q == nil || q.seg == nil {
		return errZero()
	}
	q.inflight.Add(1)
	if q.closed.Load() {
		q.inflight.Add(-1)
		return q.errClosed()
	}
	return nil
}

func (q *Queue) exit() { q.inflight.Add(-1) }

func errZero() error {
	return fmt.Errorf("queue: a zero Queue (make one with Open, Create or OpenOrCreate): %w", ErrClosed)
}

// busy reports whether a call is in flight on q: a Recv or a waiting
// Send (inflight), or a Send's try, which holds one of the slot's lanes
// in q's name.
func (q *Queue) busy() bool {
	if q.inflight.Load() != 0 {
		return true
	}
	for i := range lanes {
		if q.local.lanes[i].Load() == q.id {
			return true
		}
	}
	return false
}

func (q *Queue) errClosed() error { return fmt.Errorf("%s: %w", q.seg.Path(), ErrClosed) }

// testHook, when set (tests only), is called at the steps a test kills or
// stops a process at: "intent" (a producer's intent is in its lane, the
// tail not yet moved), "reserved" (the tail moved past its cell, nothing
// written) and "taking" (a consumer's cell is taking).
var testHook func(step string)

// maxTries bounds a try's loop: every turn of a valid queue's loop is
// another process's progress, so only corrupt words run this far.
const maxTries = 1 << 20

func (q *Queue) corrupt(pos, w uint64, at string) error {
	return fmt.Errorf("%s: %w: the cell at the %s (position %d) holds %#x", q.seg.Path(), ErrCorrupt, at, pos, w)
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
			q.closedAt.Store(t | closedBit)
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
	for i := 0; q.busy(); i++ {
		if i%100 == 0 {
			q.wakeAll()
		}
		time.Sleep(100 * time.Microsecond)
	}
	q.detach()
	return q.seg.Close()
}
