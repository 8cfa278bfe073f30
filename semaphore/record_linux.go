//go:build linux

package semaphore

import (
	"fmt"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/shm"
)

// MaxProcs is how many processes can use the mutexes of one segment at
// once: each claims one of the segment's process slots (shm.ClaimSlot).
const MaxProcs = 128

// The Mutex record; doc.go has it as a table.
const (
	// MutexSize is the size of a Mutex record in a segment. Records sit
	// at offsets that are multiples of RecordAlign.
	MutexSize = 1600

	// RecordAlign is the alignment of every record (a cache line).
	RecordAlign = 64

	offWord     = 0
	offHandoff  = 4
	offBias     = 8
	offTids     = 64
	offNodes    = offTids + 4*MaxProcs
	endReserved = offTids
)

// The futex word, in the kernel's robust format.
const (
	waitersBit     = 1 << 31   // FUTEX_WAITERS: someone may sleep on the word
	ownerDiedBit   = 1 << 30   // FUTEX_OWNER_DIED: the last owner died holding it
	tidMask        = 1<<30 - 1 // FUTEX_TID_MASK: the owner's id, 0 when unlocked
	notRecoverable = tidMask   // owner field of a mutex nobody may lock again
)

// entry is the owner-id entry of process slot slot in m's record.
func (m *Mutex) entry(slot int) *atomic.Uint32 { return u32(m.rec, offTids+4*slot) }

// nodeOffset is where the robust-list node of slot sits in a record; the
// list of that slot index has futex_offset -nodeOffset(slot).
func nodeOffset(slot int) int { return offNodes + 8*slot }

var _ [MutexSize - offNodes - 8*MaxProcs]struct{} // the nodes fit
var _ [offNodes + 8*MaxProcs - MutexSize]struct{} // and fill the record
var _ [MutexSize % RecordAlign]struct{}           // MutexSize keeps alignment

// attachment is this process's use of one open segment: the process slot
// it claimed there and the robust list of that slot index.
type attachment struct {
	seg  *shm.Segment
	slot int
	list *robustList

	mu      sync.Mutex
	mutexes map[int]*Mutex // by offset: one Mutex per record per process
}

var attachments struct {
	mu sync.Mutex
	m  map[*shm.Segment]*attachment
}

// attach claims a process slot in seg, preferring an index this process
// already has a robust thread for, and arranges for the nodes to be
// unlinked when the segment is closed.
func attach(seg *shm.Segment) (*attachment, error) {
	attachments.mu.Lock()
	defer attachments.mu.Unlock()
	if a := attachments.m[seg]; a != nil {
		return a, nil
	}
	slot, err := seg.ClaimSlot(MaxProcs, slotsWithLists()...)
	if err != nil {
		return nil, err
	}
	list, err := listFor(slot)
	if err != nil {
		seg.ReleaseSlot(slot)
		return nil, fmt.Errorf("%s: %w", seg.Path(), err)
	}
	a := &attachment{seg: seg, slot: slot, list: list, mutexes: make(map[int]*Mutex)}
	if attachments.m == nil {
		attachments.m = make(map[*shm.Segment]*attachment)
	}
	attachments.m[seg] = a
	seg.OnClose(a.detach)
	return a, nil
}

// detach unlinks every node of the segment before it is unmapped: the
// kernel must never walk into memory that is gone or reused.
func (a *attachment) detach() {
	attachments.mu.Lock()
	delete(attachments.m, a.seg)
	attachments.mu.Unlock()
	a.mu.Lock()
	defer a.mu.Unlock()
	for _, m := range a.mutexes {
		if m.biased != nil {
			m.biased.release()
		}
		a.list.unlink(m.node)
	}
	a.mutexes = nil
}

// checkPlacement validates a record's offset and returns its bytes.
func checkPlacement(seg *shm.Segment, off, size int) ([]byte, error) {
	data := seg.Data()
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
func i64(b []byte, i int) *atomic.Int64  { return (*atomic.Int64)(ptr(b, i)) }
