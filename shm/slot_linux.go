//go:build linux

package shm

import "fmt"

// MaxSlots bounds the process slots of one segment.
const MaxSlots = 1 << 16

// ClaimSlot claims the lowest free process slot in [0, n) and returns its
// index. A slot is an OFD write lock on one byte of the segment's file, far
// past its end (offset 2^62+4096+i): it belongs to this Segment's open file
// and the kernel releases it when the Segment is closed or the process dies,
// however it dies. So "is the process in slot i alive?" is SlotAlive(i), with
// no PID-reuse hole. Children started by exec do not inherit it (the file is
// opened O_CLOEXEC). It fails with ErrNoSlot when all n slots are taken.
//
// The slots in prefer are tried first, in order: a process that uses many
// segments can ask for the same index in each.
func (s *Segment) ClaimSlot(n int, prefer ...int) (int, error) {
	if n <= 0 || n > MaxSlots {
		panic(fmt.Sprintf("shm: ClaimSlot(%d): want 1 to %d slots", n, MaxSlots))
	}
	if s.closed.Load() {
		return 0, fmt.Errorf("%s: %w", s.path, ErrClosed)
	}
	s.slotMu.Lock()
	defer s.slotMu.Unlock()
	try := func(i int) (bool, error) {
		if i < 0 || i >= n || s.slots[i] {
			return false, nil
		}
		err := lockByte(s.f, slotLockBase+int64(i))
		if err == errLocked {
			return false, nil
		}
		if err != nil {
			return false, fmt.Errorf("%s: claim slot %d: %w", s.path, i, err)
		}
		if s.slots == nil {
			s.slots = make(map[int]bool)
		}
		s.slots[i] = true
		return true, nil
	}
	for _, i := range prefer {
		if ok, err := try(i); ok || err != nil {
			return i, err
		}
	}
	for i := range n {
		if ok, err := try(i); ok || err != nil {
			return i, err
		}
	}
	return 0, fmt.Errorf("%s: %w: all %d taken by live processes", s.path, ErrNoSlot, n)
}

// ReleaseSlot gives back a slot claimed through this Segment.
func (s *Segment) ReleaseSlot(i int) error {
	s.slotMu.Lock()
	defer s.slotMu.Unlock()
	if !s.slots[i] {
		panic(fmt.Sprintf("shm: ReleaseSlot(%d): slot not claimed through this Segment", i))
	}
	delete(s.slots, i)
	if err := unlockByte(s.f, slotLockBase+int64(i)); err != nil {
		return fmt.Errorf("%s: release slot %d: %w", s.path, i, err)
	}
	return nil
}

// SlotAlive reports whether slot i is claimed by a live process (this one
// included). The answer may be stale by the time it is used: a live holder
// can die right after; a dead one stays dead until its slot is claimed anew.
func (s *Segment) SlotAlive(i int) (bool, error) {
	if i < 0 || i >= MaxSlots {
		return false, fmt.Errorf("%s: %w: slot %d", s.path, ErrOutOfRange, i)
	}
	s.slotMu.Lock()
	mine := s.slots[i]
	s.slotMu.Unlock()
	if mine {
		return true, nil
	}
	locked, err := byteLocked(s.f, slotLockBase+int64(i))
	if err != nil {
		return false, fmt.Errorf("%s: slot %d: %w", s.path, i, err)
	}
	return locked, nil
}
