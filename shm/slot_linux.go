//go:build linux

package shm

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Slot names one process's use of a segment: the index of the process
// slot it claimed and the slot's generation at that claim. Every claim of
// a slot bumps its generation, so a Slot is never reused: when its process
// dies and another claims the same index, that one is another Slot.
// Shared words that name a process store a Slot (or its index, next to a
// generation) and are trusted only while Alive says so.
type Slot struct {
	Index int    // 0 to MaxSlots-1
	Gen   uint64 // 1 for the slot's first claim, then 2, ...
}

func (s Slot) String() string { return fmt.Sprintf("slot %d (generation %d)", s.Index, s.Gen) }

// slotEntry is slot i's entry in the slot table; doc.go has the layout.
type slotEntry struct {
	gen     atomic.Uint64 // claims so far: the claimer stores gen+1
	pid     atomic.Int32  // the claimer's pid, in its own PID namespace
	closed  atomic.Uint32 // 1 once the claimer closed the segment
	pidNS   atomic.Uint64 // inode of the claimer's /proc/self/ns/pid
	claimed atomic.Int64  // CLOCK_REALTIME of the claim, ns
}

var _ [SlotEntrySize - unsafe.Sizeof(slotEntry{})]struct{}
var _ [unsafe.Sizeof(slotEntry{}) - SlotEntrySize]struct{}

// slotEntry is slot i's entry. The table is inside the mapping, at
// HeaderSize (a multiple of 64) from its page-aligned start, and entries
// are 32 bytes of 8-aligned fields: the atomics are aligned. The memory is
// a shared mapping, never moved by Go, valid until the mapping goes.
func (m *mapping) slotEntry(i int) *slotEntry {
	return (*slotEntry)(unsafe.Pointer(&m.mem[HeaderSize+SlotEntrySize*i]))
}

// pidNamespace is the identity of this process's PID namespace: the inode
// of /proc/self/ns/pid. Thread ids mean something else in another
// namespace, so a segment is used by the processes of one namespace at a
// time (see doc.go, # Process slots).
var pidNamespace = sync.OnceValues(func() (uint64, error) {
	var st unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &st); err != nil {
		return 0, fmt.Errorf("%w: cannot tell this process's PID namespace: %w", ErrNamespace, &os.PathError{Op: "stat", Path: "/proc/self/ns/pid", Err: err})
	}
	return st.Ino, nil
})

// PIDNamespace is this process's PID namespace as SlotInfo.PidNS records
// it (the inode of /proc/self/ns/pid): a tool tells by it which slots are
// held from another namespace, whose pids mean nothing here.
func PIDNamespace() (uint64, error) { return pidNamespace() }

// Slot returns this process's slot in the segment, claiming one the first
// time it is asked for: every handle on the segment in this process shares
// it, until the last one is closed. A claim takes the lowest free slot (the
// ones in prefer first, in order: a process that uses many segments can
// ask for the same index in each).
//
// A slot is an OFD write lock on one byte of the segment's file, far past
// its end (offset 2^62+4096+i): it belongs to this process's open file,
// and the kernel releases it when the last handle is closed or the process
// dies, however it dies. So whether a Slot's process is alive is Alive, one
// fcntl, with no PID-reuse hole. Children started by exec do not inherit
// it (the file is opened O_CLOEXEC).
//
// It fails with ErrNoSlot when all MaxSlots slots are held by live
// processes, and with ErrNamespace when a process of another PID
// namespace holds one still after namespaceWait (100 ms: a dead
// process's slot can be held a little longer than it lives; see Alive).
// Waiting for another claimer stops when ctx is done.
func (s *Segment) Slot(ctx context.Context, prefer ...int) (Slot, error) {
	if s.dead() {
		return Slot{}, s.errClosed()
	}
	m := s.m
	if m.private {
		return Slot{}, fmt.Errorf("%s: %w", s.path, ErrPrivate)
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closing {
		return Slot{}, s.errClosed()
	}
	if m.claimed {
		return m.slot, nil
	}
	sl, err := m.claim(ctx, prefer)
	if err != nil {
		return Slot{}, fmt.Errorf("%s: %w", s.path, err)
	}
	m.slot, m.claimed = sl, true
	return sl, nil
}

// namespaceWait bounds how long a claim waits for another PID namespace's
// slots to be let go before it fails with ErrNamespace. A dead process's
// slot lock can outlive it by milliseconds (see Alive), and its pid means
// nothing here, so nothing tells a dead process of another namespace from
// a live one but the lock: a claim right after the other namespace's last
// process died would fail for nothing.
const namespaceWait = 100 * time.Millisecond

// claim takes a slot under the attach lock, which makes the namespace
// check and the claim one step for every other claimer.
func (m *mapping) claim(ctx context.Context, prefer []int) (Slot, error) {
	ns, err := pidNamespace()
	if err != nil {
		return Slot{}, err
	}
	deadline := time.Now().Add(namespaceWait)
	for delay := time.Millisecond; ; delay = min(2*delay, 20*time.Millisecond) {
		sl, err := m.claimLocked(ctx, ns, prefer)
		var foreign *foreignSlot
		if !errors.As(err, &foreign) || time.Now().Add(delay).After(deadline) {
			return sl, err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return Slot{}, err
		case <-t.C:
		}
	}
}

// foreignSlot is claimLocked's refusal: a process of another PID
// namespace holds slot i.
type foreignSlot struct {
	i            int
	pid          int32
	theirs, ours uint64
}

func (f *foreignSlot) Error() string {
	return fmt.Sprintf("%v: pid %d of PID namespace %d holds slot %d; this process is in namespace %d", ErrNamespace, f.pid, f.theirs, f.i, f.ours)
}

func (f *foreignSlot) Unwrap() error { return ErrNamespace }

// claimLocked is one try of claim, under the attach lock.
func (m *mapping) claimLocked(ctx context.Context, ns uint64, prefer []int) (sl Slot, err error) {
	if err := lockByteContext(ctx, m.f, attachLockOffset); err != nil {
		return Slot{}, err
	}
	defer func() {
		if uerr := unlockByte(m.f, attachLockOffset); uerr != nil && err == nil {
			err = uerr // the slot stays ours; the mapping's close releases it
		}
	}()
	for i := range MaxSlots {
		e := m.slotEntry(i)
		if e.gen.Load() == 0 || e.pidNS.Load() == ns {
			continue
		}
		locked, err := byteLocked(m.f, slotLockBase+int64(i))
		if err != nil {
			return Slot{}, fmt.Errorf("slot %d: %w", i, err)
		}
		if locked {
			return Slot{}, &foreignSlot{i: i, pid: e.pid.Load(), theirs: e.pidNS.Load(), ours: ns}
		}
	}
	try := func(i int) (bool, error) {
		if i < 0 || i >= MaxSlots {
			return false, nil
		}
		switch err := lockByte(m.f, slotLockBase+int64(i)); err {
		case errLocked:
			return false, nil
		case nil:
			return true, nil
		default:
			return false, fmt.Errorf("claim slot %d: %w", i, err)
		}
	}
	for _, i := range append(slices.Clone(prefer), seq(MaxSlots)...) {
		ok, err := try(i)
		if err != nil {
			return Slot{}, err
		}
		if !ok {
			continue
		}
		// The lock is ours: nobody else writes this entry until we
		// release it. The generation goes last, so a reader that sees it
		// sees the rest.
		e := m.slotEntry(i)
		e.pid.Store(int32(os.Getpid()))
		e.closed.Store(0)
		e.pidNS.Store(ns)
		e.claimed.Store(time.Now().UnixNano())
		gen := e.gen.Load() + 1
		e.gen.Store(gen)
		return Slot{Index: i, Gen: gen}, nil
	}
	return Slot{}, fmt.Errorf("%w: all %d taken by live processes", ErrNoSlot, MaxSlots)
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// Alive reports whether sl's process still holds its slot: the slot's
// generation is still sl.Gen, its lock is held (by this process, or by
// another), and the process that claimed it has not been seen gone.
//
// The lock goes with the last reference to the claimer's open file, and
// that can outlive the process: a reader of /proc/PID/maps or smaps holds
// a dead process's memory map, and with it the file, for milliseconds
// after its parent reaped it, and a copy of the descriptor (pidfd_getfd,
// SCM_RIGHTS, Segment.File) holds it for as long as it is open. So a held
// lock whose claimer was of this PID namespace is asked about once more:
// if no process has the claimer's pid (kill(pid, 0) fails with ESRCH),
// the claimer is gone and Alive says false. A zombie, a pid already
// reused, a claimer of another namespace or one this process may not
// signal still count as alive: the safe answer, until the lock goes. (A
// fork without exec shares the claimer's file, and so its lock, but not
// its mapping, which is MADV_DONTFORK: it cannot write as the slot.)
//
// A false answer is final, but for one case: a pid reused while the dead
// claimer's file is still held makes a later answer true again (the safe
// direction). A true one may be stale by the time it is used, and for a
// moment after another process claimed sl's index (it takes the lock
// before it bumps the generation) it is true of a dead Slot: callers that
// wait for a death see it soon after. A caller that asks twice can get
// true, then false: whatever it decides from the first answer, it decides
// once.
func (s *Segment) Alive(sl Slot) (bool, error) {
	if s.dead() {
		return false, s.errClosed()
	}
	if sl.Index < 0 || sl.Index >= MaxSlots {
		return false, fmt.Errorf("%s: %w: slot %d", s.path, ErrOutOfRange, sl.Index)
	}
	m := s.m
	m.mu.Lock()
	mine := m.claimed && m.slot.Index == sl.Index
	gen := m.slot.Gen
	m.mu.Unlock()
	if mine {
		return gen == sl.Gen, nil
	}
	if m.slotEntry(sl.Index).gen.Load() != sl.Gen {
		return false, nil
	}
	var locked bool
	err := m.withFile(func(f *os.File) (err error) {
		locked, err = byteLocked(f, slotLockBase+int64(sl.Index))
		return err
	})
	if err != nil {
		return false, fmt.Errorf("%s: slot %d: %w", s.path, sl.Index, err)
	}
	return locked && !gone(m.slotEntry(sl.Index), sl.Gen), nil
}

// gone reports whether the process that claimed e at generation gen is
// known to have no pid any more: it was of this PID namespace (its pid
// means something here) and kill(pid, 0) says ESRCH. The pid is read
// before the signal and the generation after it: a pid read while a new
// claimer wrote its own is that live claimer's (no ESRCH), and a
// generation that moved on means gen's claimer let the slot go.
func gone(e *slotEntry, gen uint64) bool {
	ns, err := pidNamespace()
	if err != nil || e.pidNS.Load() != ns {
		return false
	}
	pid := int(e.pid.Load())
	if pid <= 0 {
		return false
	}
	return unix.Kill(pid, 0) == unix.ESRCH || e.gen.Load() != gen
}

// SlotGen is slot i's current generation: the Gen of its last claim, 0 if
// it was never claimed.
func (s *Segment) SlotGen(i int) uint64 {
	if i < 0 || i >= MaxSlots || s.dead() {
		return 0
	}
	return s.m.slotEntry(i).gen.Load()
}

// SlotInfo describes one entry of a segment's slot table.
type SlotInfo struct {
	Slot
	Pid     int       // the claimer's pid, in its own PID namespace
	PidNS   uint64    // the claimer's PID namespace (inode of /proc/PID/ns/pid)
	Claimed time.Time // when it claimed the slot
	Alive   bool      // it holds the slot now
	Closed  bool      // it closed the segment (not Alive and not Closed: it died)
}

// Slots describes every slot that was ever claimed, live or not. Reading
// them changes nothing.
func (s *Segment) Slots() ([]SlotInfo, error) {
	if s.dead() {
		return nil, s.errClosed()
	}
	var out []SlotInfo
	for i := range MaxSlots {
		e := s.m.slotEntry(i)
		gen := e.gen.Load()
		if gen == 0 {
			continue
		}
		sl := Slot{Index: i, Gen: gen}
		alive, err := s.Alive(sl)
		if err != nil {
			return nil, err
		}
		out = append(out, SlotInfo{
			Slot:    sl,
			Pid:     int(e.pid.Load()),
			PidNS:   e.pidNS.Load(),
			Claimed: time.Unix(0, e.claimed.Load()),
			Alive:   alive,
			Closed:  e.closed.Load() == 1,
		})
	}
	return out, nil
}
