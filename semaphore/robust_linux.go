//go:build linux

package semaphore

import (
	"fmt"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The kernel's robust-futex list (see set_robust_list(2) and the kernel's
// Documentation/locking/robust-futex-ABI.rst). At a thread's exit the kernel
// walks the list registered by that thread; for every entry it reads the
// 32-bit word at entry+futex_offset and, if the word's low 30 bits equal the
// thread's TID, sets the word to (word & WAITERS) | OWNER_DIED and wakes one
// waiter. The Go runtime registers no list, so shmkit registers its own from
// one goroutine per list, locked to its OS thread for the life of the
// process: that thread's TID is the owner id this process writes into the
// futex words of the mutexes it locks, from any goroutine on any thread.
//
// robustHead mirrors struct robust_list_head on 64-bit Linux.
type robustHead struct {
	next        uintptr // first entry, or the head itself when empty
	futexOffset int64   // word address minus entry address
	pending     uintptr // list_op_pending: unused (0)
}

// robustListLimit is the kernel's ROBUST_LIST_LIMIT: it stops walking a list
// after this many entries, so a list never holds more.
const robustListLimit = 2048

// robustList is one registered list and the thread that owns it. Every
// entry of one list sits at the same distance from its futex word, which is
// why there is one list per process-slot index (see doc.go, # Layout).
type robustList struct {
	head *robustHead // Go heap: never moves, kept alive by lists
	tid  uint32      // TID of the registering thread: the owner id

	mu      sync.Mutex
	entries []unsafe.Pointer // linked nodes in list order; the Go-side truth
}

var lists struct {
	mu sync.Mutex
	m  map[int]*robustList // by slot index
}

// listFor returns the robust list for slot index slot, starting its thread
// on first use.
func listFor(slot int) (*robustList, error) {
	lists.mu.Lock()
	defer lists.mu.Unlock()
	if l := lists.m[slot]; l != nil {
		return l, nil
	}
	l := &robustList{head: new(robustHead)}
	l.head.next = uintptr(unsafe.Pointer(l.head)) // empty circular list
	l.head.futexOffset = -int64(nodeOffset(slot))
	errc := make(chan error)
	go func() {
		// Never unlocked: the goroutine parks forever, so this OS
		// thread lives until the process dies, and its exit is the
		// process's death, which is when the kernel walks the list.
		runtime.LockOSThread()
		_, _, e := unix.RawSyscall(unix.SYS_SET_ROBUST_LIST, uintptr(unsafe.Pointer(l.head)), unsafe.Sizeof(*l.head), 0)
		if e != 0 {
			errc <- os.NewSyscallError("set_robust_list", e)
			return // the thread is lost with the goroutine: no list registered on it
		}
		l.tid = uint32(unix.Gettid())
		errc <- nil
		<-parked
	}()
	if err := <-errc; err != nil {
		return nil, err
	}
	if l.tid > maxOwnerID {
		return nil, fmt.Errorf("semaphore: thread id %d is above %d, the largest owner id a futex word holds here", l.tid, maxOwnerID)
	}
	if lists.m == nil {
		lists.m = make(map[int]*robustList)
	}
	lists.m[slot] = l
	return l, nil
}

// parked is never closed: the robust threads wait on it forever.
var parked = make(chan struct{})

// slotsWithLists are the slot indexes this process already has a robust
// thread for, so that ClaimSlot can prefer them and spare a thread.
func slotsWithLists() []int {
	lists.mu.Lock()
	defer lists.mu.Unlock()
	out := make([]int, 0, len(lists.m))
	for i := range lists.m {
		out = append(out, i)
	}
	return out
}

// link puts node (an 8-byte entry inside a mapped record) at the front of
// the list. The node is made to point at the old first entry before the
// head points at it, so the list the kernel might walk is whole at every
// instant, even if the process is killed between the two stores.
func (l *robustList) link(node unsafe.Pointer) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.entries) >= robustListLimit {
		return fmt.Errorf("%w: %d mutexes attached in one process slot", ErrTooMany, len(l.entries))
	}
	setNext(node, l.head.next)
	setNext(unsafe.Pointer(&l.head.next), uintptr(node))
	l.entries = append([]unsafe.Pointer{node}, l.entries...)
	return nil
}

// unlink takes node out of the list before its memory is unmapped. Only
// Go-side state is read: the shared node could have been scribbled on by
// another process.
func (l *robustList) unlink(node unsafe.Pointer) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for i, e := range l.entries {
		if e != node {
			continue
		}
		prev := unsafe.Pointer(&l.head.next)
		if i > 0 {
			prev = l.entries[i-1]
		}
		next := uintptr(unsafe.Pointer(l.head))
		if i+1 < len(l.entries) {
			next = uintptr(l.entries[i+1])
		}
		setNext(prev, next)
		l.entries = append(l.entries[:i], l.entries[i+1:]...)
		return
	}
}

// setNext writes a list pointer at p: the head's next field (Go heap, kept
// alive by lists) or a node inside a live mapping (its segment is open
// while the node is linked), 8-aligned in both cases. The value is an
// address for the kernel to follow at thread exit; Go never dereferences
// it, so it is stored as a uintptr. An atomic store, so that a concurrent
// reader (there is none but the kernel at exit) never sees half a pointer.
func setNext(p unsafe.Pointer, next uintptr) {
	atomic.StoreUintptr((*uintptr)(p), next)
}
