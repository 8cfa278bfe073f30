//go:build linux

package semaphore

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/shm"
)

// MaxProcs is how many processes can use the mutexes of one segment at
// once: each holds one of the segment's process slots (shm.Segment.Slot).
const MaxProcs = shm.MaxSlots

// MutexSize is written out for its godoc; these fail to compile if it
// is not the layout's size.
var (
	_ [MutexSize - (offNodes + 8*MaxProcs)]struct{}
	_ [(offNodes + 8*MaxProcs) - MutexSize]struct{}
)

// The Mutex record; doc.go has it as a table.
const (
	// MutexSize is the size of a Mutex record in a segment: its words,
	// then 8 bytes per process slot. Records sit at offsets that are
	// multiples of RecordAlign.
	MutexSize = 2624

	// RecordAlign is the alignment of every record (a cache line).
	RecordAlign = 64

	offWord     = 0
	offHandoff  = 4
	offBias     = 8
	endReserved = 64
	offEntries  = 64
	offGens     = offEntries + 4*MaxProcs
	offNodes    = offGens + 8*MaxProcs
)

var _ [MutexSize % RecordAlign]struct{} // MutexSize keeps alignment
var _ [MutexSize - 2624]struct{}        // doc.go's table
var _ [2624 - MutexSize]struct{}

// The futex word, in the kernel's robust format. The owner field holds a
// thread id, the owner id of the process holding the lock, or a value no
// thread id takes (thread ids are below the kernel's PID_MAX_LIMIT, 2^22),
// which no thread's exit ever matches: a seized word (see seize), or one
// of the reserved values.
const (
	waitersBit   = 1 << 31   // FUTEX_WAITERS: someone may sleep on the word
	ownerDiedBit = 1 << 30   // FUTEX_OWNER_DIED: the last owner died holding it
	tidMask      = 1<<30 - 1 // FUTEX_TID_MASK: the owner's id, 0 when unlocked

	notRecoverable = tidMask     // nobody may lock it again
	handedOff      = tidMask - 1 // granted to the waiter the hand-off word names
	maxOwnerID     = 1<<22 - 3   // the largest owner id: seized values stay below handedOff

	// A seized word: seizedBit, the seizer's slot and the owner id it
	// found.
	seizedBit     = 1 << 29
	seizedShift   = 22
	seizedTidMask = 1<<seizedShift - 1
)

// isSeized reports whether a word's owner field is a seized word's.
func isSeized(owner uint32) bool { return owner&seizedBit != 0 && owner < handedOff }

// isGarbage reports whether a word's owner field is nothing this package
// writes: no thread id, no seized or reserved value. It is a dead owner's.
func isGarbage(owner uint32) bool { return owner > maxOwnerID && owner&seizedBit == 0 }

func seizer(owner uint32) int         { return int(owner>>seizedShift) & (MaxProcs - 1) }
func seizedOwner(owner uint32) uint32 { return owner & seizedTidMask }

// The hand-off word: slot+1 of the starving waiter, and grantedBit once the
// holder granted it the lock.
const (
	grantedBit = 1 << 31
	slotMask   = 0xff
)

// The bias word's holder and revoker (bias_linux.go): slot, or -1.
func biasHolder(b uint64) int  { return int(b&slotMask) - 1 }
func biasRevoker(b uint64) int { return int(b>>8&slotMask) - 1 }

// entry is the owner-id entry of process slot i in m's record: the owner
// id (thread id) of the process that attached the record from slot i, and
// inCSBit while it is inside a critical section entered through its bias.
func (m *mutex) entry(i int) *atomic.Uint32 { return u32(m.rec, offEntries+4*i) }

// gen is the slot generation of the process that wrote entry i: entry i,
// and every slot+1 of i in the record's words, name the process that
// claimed slot i in that generation (shm.Slot), and no later one.
func (m *mutex) gen(i int) *atomic.Uint64 { return u64(m.rec, offGens+8*i) }

// nodeOffset is where the robust-list node of slot sits in a record; the
// list of that slot index has futex_offset -nodeOffset(slot).
func nodeOffset(slot int) int { return offNodes + 8*slot }

var _ [255 - MaxProcs]struct{} // slot+1 fits the words' 8-bit slot fields

// attachment is this process's use of one mapped segment: the process
// slot it holds there and the robust list of that slot index.
type attachment struct {
	seg  *shm.Segment // the mapping's Pinned handle: open while the attachment is
	slot shm.Slot
	list *robustList

	mu      sync.Mutex
	mutexes map[int]*mutex // by offset: one per record per process

	// gone is set when the segment's last handle in this process closes,
	// before the memory is unmapped: every handle's call checks it first
	// and returns ErrClosed instead of touching memory that is gone.
	gone atomic.Bool

	// closeMu is held (read) by critical sections that must finish before
	// the segment's last Close abandons the locks: Mutex.Do's fn, a
	// Semaphore's book-keeping. detach takes it (write) first.
	closeMu sync.RWMutex
}

// attachments are keyed by the address of the segment's data: a process
// maps a segment file once (shm), so it is the file's identity while the
// mapping lives, and the mapping's last Close removes the entry first.
var attachments struct {
	mu sync.Mutex
	m  map[*byte]*attachment
}

// ClaimSlot claims this process's slot in seg as NewMutex, NewBiasedMutex
// and NewSemaphore do (preferring an index this process already runs a
// robust-list thread for), waiting for another process's claim in
// progress until ctx is done.
func ClaimSlot(ctx context.Context, seg *shm.Segment) (shm.Slot, error) {
	return seg.Slot(ctx, slotsWithLists()...)
}

// attach returns this process's attachment to seg, making it on first use:
// it holds the process's slot (preferring an index this process already
// has a robust thread for) and arranges for the nodes to be unlinked when
// the segment's mapping goes.
func attach(ctx context.Context, seg *shm.Segment) (*attachment, error) {
	// The slot first: on a closed handle it fails, before the mapping
	// (which may be gone) is looked at. And before attachments.mu: a
	// claim may wait for another process's claim in progress, which must
	// not hold up this process's attaches of other segments.
	slot, err := ClaimSlot(ctx, seg)
	if err != nil {
		return nil, err
	}
	attachments.mu.Lock()
	defer attachments.mu.Unlock()
	seg = seg.Pinned()
	key := unsafe.SliceData(seg.Data())
	if key == nil {
		// The segment's last Close ran since the claim: the mapping is
		// gone (its Pinned handle was born closed).
		return nil, fmt.Errorf("%s: %w", seg.Path(), shm.ErrClosed)
	}
	if a := attachments.m[key]; a != nil {
		return a, nil
	}
	list, err := listFor(slot.Index)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", seg.Path(), err)
	}
	a := &attachment{seg: seg, slot: slot, list: list, mutexes: make(map[int]*mutex)}
	// The hook first: a Close that has begun refuses it, and then no
	// attachment may be made (nothing would ever mark it gone).
	if err := seg.OnClose(func() {
		a.gone.Store(true)
		attachments.mu.Lock()
		delete(attachments.m, key)
		attachments.mu.Unlock()
		a.detach()
	}); err != nil {
		return nil, err
	}
	if attachments.m == nil {
		attachments.m = make(map[*byte]*attachment)
	}
	attachments.m[key] = a
	return a, nil
}

// detach leaves every record before the segment is unmapped: a bias is
// given up, a lock still held is abandoned (the next locker gets
// ErrOwnerDead, as if this process had died holding it), a hand-off
// request is withdrawn, and the nodes are unlinked: the kernel must never
// walk into memory that is gone or reused.
func (a *attachment) detach() {
	a.closeMu.Lock()
	defer a.closeMu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.mutexes {
		if m.biased != nil {
			m.biased.release()
		}
		m.leave()
		a.list.unlink(m.node)
	}
	a.mutexes = nil
}

// live reports whether the process that wrote entry i of m's record still
// holds its slot. When the answer cannot be had, it says yes: a waiter
// keeps waiting rather than take a lock from a live owner.
func (m *mutex) live(i int) bool {
	if i < 0 || i >= MaxProcs {
		return false
	}
	if i == m.a.slot.Index {
		return true // our own entry: we attached (callers never ask of an old one)
	}
	return m.liveGen(i, m.gen(i).Load())
}

// liveGen reports whether slot i is still held by the process whose
// generation is g (0: none yet).
func (m *mutex) liveGen(i int, g uint64) bool {
	if g == 0 {
		return false
	}
	alive, err := m.a.seg.Alive(shm.Slot{Index: i, Gen: g})
	return err != nil || alive
}

// ownerSlot is the slot of the live process whose owner id is id, or -1:
// no live process that attached this record has that id, so whoever left
// it in the word is dead. Live processes of one segment are of one PID
// namespace (shm refuses others), so their thread ids differ.
func (m *mutex) ownerSlot(id uint32) int {
	if id == m.tid {
		return m.a.slot.Index
	}
	for i := range MaxProcs {
		// The generation first, then the entry: join writes the entry
		// first, so an entry read after its generation is that
		// generation's process's (or a later one's, whose generation
		// then fails the liveness check). Read the other way round, a
		// dead process's id could pair with a new joiner's live
		// generation, and a revoker would take the word from the live
		// process that now has that id.
		if i == m.a.slot.Index {
			continue // our own id is m.tid, answered above
		}
		g := m.gen(i).Load()
		if g == 0 {
			continue
		}
		hook("owner-slot") // between the two loads: the tests stop here
		if m.entry(i).Load()&tidMask == id && m.liveGen(i, g) {
			return i
		}
	}
	return -1
}

// checkPlacement validates a record's offset and returns its bytes.
func checkPlacement(seg *shm.Segment, off, size int) ([]byte, error) {
	data := seg.Data()
	if data == nil {
		return nil, fmt.Errorf("%s: %w", seg.Path(), shm.ErrClosed) // Data is nil once closed
	}
	if off < 0 || off > len(data)-size || off%RecordAlign != 0 {
		return nil, fmt.Errorf("%s: %w: %d-byte record at offset %d of a %d-byte data region; use a multiple of %d inside it",
			seg.Path(), ErrPlacement, size, off, len(data), RecordAlign)
	}
	return data[off : off+size], nil
}

func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// ptr is the address of b[i] as an unsafe.Pointer. b is a slice of a
// shared mapping (outside the Go heap, never moved); callers keep i within
// b and aligned for what they convert the pointer to.
func ptr(b []byte, i int) unsafe.Pointer { return unsafe.Pointer(&b[i]) }

func u32(b []byte, i int) *atomic.Uint32 { return (*atomic.Uint32)(ptr(b, i)) }
func u64(b []byte, i int) *atomic.Uint64 { return (*atomic.Uint64)(ptr(b, i)) }
func i64(b []byte, i int) *atomic.Int64  { return (*atomic.Int64)(ptr(b, i)) }
