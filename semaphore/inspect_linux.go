//go:build linux

package semaphore

import (
	"github.com/shmkit/shmkit/shm"
)

// InspectMutex reads the Mutex record at data offset off of seg without
// changing anything: no slot claimed, no lock taken, no dead owner
// settled. It works on any handle, and is meant for one of
// shm.OpenPrivate (cmd/shmctl). Liveness is asked of the kernel (the
// slots' locks), pids of the slot table.
func InspectMutex(seg *shm.Segment, off int) (MutexState, error) {
	var st MutexState
	var perr error
	err := seg.Guard(func() {
		rec, err := checkPlacement(seg, off, MutexSize)
		if err != nil {
			perr = err
			return
		}
		st = inspectMutex(seg, rec)
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return MutexState{}, err
	}
	return st, nil
}

func inspectMutex(seg *shm.Segment, rec []byte) MutexState {
	procs := processes(seg)
	gen := func(i int) uint64 { return u64(rec, offGens+8*i).Load() }
	proc := func(i int, g uint64) *Process {
		if i < 0 || i >= MaxProcs {
			return nil
		}
		p := Process{Slot: i}
		if g != 0 {
			if alive, err := seg.Alive(shm.Slot{Index: i, Gen: g}); err == nil {
				p.Alive = alive
			}
			if si, ok := procs[i]; ok && si.Gen == g {
				p.Pid = si.Pid
			}
		}
		return &p
	}
	var st MutexState
	for i := range MaxProcs {
		if g := gen(i); g != 0 {
			st.Attached = append(st.Attached, *proc(i, g))
		}
	}
	v := u32(rec, offWord).Load()
	st.Word = v
	owner := v & tidMask
	st.Waiters = v&waitersBit != 0
	b := u64(rec, offBias).Load()
	if h := biasHolder(b); h >= 0 {
		st.BiasedTo = proc(h, gen(h))
		st.InCS = u32(rec, offEntries+4*h).Load()&inCSBit != 0
	}
	if r := biasRevoker(b); r >= 0 {
		st.Revoker = proc(r, gen(r))
	}
	if h := u32(rec, offHandoff).Load(); h&slotMask != 0 {
		s := int(h&slotMask) - 1
		st.HandOff = proc(s, gen(s))
		st.Granted = h&grantedBit != 0
	}
	ownerOf := func(id uint32) *Process {
		for i := range MaxProcs {
			g := gen(i)
			if g == 0 || u32(rec, offEntries+4*i).Load()&tidMask != id {
				continue
			}
			if p := proc(i, g); p.Alive {
				return p
			}
		}
		return nil
	}
	// dirty is Mutex.settle's decision for a word a death left: does
	// the next locker get ErrOwnerDead? Not when a grant or the bias
	// says the dead holder was outside its critical section.
	dirty := func() bool {
		d := u32(rec, offHandoff).Load()&grantedBit == 0
		if h := biasHolder(b); h >= 0 {
			if vd := biasVerdict(b); vd != 0 {
				d = vd == verdictDirty
			} else {
				d = u32(rec, offEntries+4*h).Load()&inCSBit != 0
			}
		}
		return d
	}
	st.Consistency = "consistent"
	switch {
	case owner == notRecoverable:
		st.State, st.Consistency = "not recoverable", "not recoverable"
	case owner == handedOff:
		st.State = "handed off"
	case isSeized(owner):
		st.State = "being taken over"
		st.OwnerID = seizedOwner(owner)
	case owner == 0 && v&ownerDiedBit != 0 && !dirty():
		st.State = "free" // its holder died outside a critical section
	case owner == 0 && v&ownerDiedBit != 0:
		st.State, st.Consistency = "free, owner died", "owner died"
	case owner == 0:
		st.State = "free"
	default:
		st.OwnerID = owner
		st.Owner = ownerOf(owner)
		switch {
		case st.Owner == nil && !dirty():
			st.State = "held by a dead owner" // outside its critical section: nothing to repair
		case st.Owner == nil:
			st.State, st.Consistency = "held by a dead owner", "owner died"
		case v&ownerDiedBit != 0:
			st.State, st.Consistency = "held", "owner died" // taken after a death, not yet Consistent
		default:
			st.State = "held"
		}
		if h := st.BiasedTo; h != nil && !st.InCS && v&ownerDiedBit == 0 &&
			u32(rec, offEntries+4*h.Slot).Load()&tidMask == owner {
			// Biased: the word keeps its holder's id between critical
			// sections. A holder that died there left nothing to
			// repair: the next locker revokes the bias and goes on.
			st.State, st.Consistency = "free", "consistent"
		}
	}
	return st
}

// processes maps slot index to the slot table's entry.
func processes(seg *shm.Segment) map[int]shm.SlotInfo {
	m := map[int]shm.SlotInfo{}
	slots, _ := seg.Slots()
	for _, s := range slots {
		m[s.Index] = s
	}
	return m
}

// InspectSemaphore reads the Semaphore record at data offset off of seg
// without changing anything (see InspectMutex).
func InspectSemaphore(seg *shm.Segment, off int) (SemaphoreState, error) {
	var st SemaphoreState
	var perr error
	err := seg.Guard(func() {
		rec, err := checkPlacement(seg, off, SemaphoreSize)
		if err != nil {
			perr = err
			return
		}
		st.Mutex = inspectMutex(seg, rec)
		st.Capacity = i64(rec, offCapacity).Load()
		st.Available = i64(rec, offAvail).Load()
		procs := processes(seg)
		sum := st.Available
		for i := range MaxProcs {
			n := i64(rec, offHeld+16*i).Load()
			if n == 0 {
				continue
			}
			g := u64(rec, offHeld+16*i+8).Load()
			h := Holder{Process: Process{Slot: i}, Permits: n}
			if g != 0 {
				h.Alive, _ = seg.Alive(shm.Slot{Index: i, Gen: g})
				if si, ok := procs[i]; ok && si.Gen == g {
					h.Pid = si.Pid
				}
			}
			st.Holders = append(st.Holders, h)
			sum += n
		}
		st.Balanced = sum == st.Capacity
	})
	if err == nil {
		err = perr
	}
	if err != nil {
		return SemaphoreState{}, err
	}
	return st, nil
}
