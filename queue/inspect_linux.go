//go:build linux

package queue

import (
	"context"
	"fmt"

	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

// Inspect reads the queue in seg without changing it: no slot claimed,
// nothing settled. It works on any handle, and is meant for one of
// shm.OpenPrivate (cmd/shmctl).
func Inspect(seg *shm.Segment) (Inspection, error) {
	if seg.Tag() != Tag {
		return Inspection{}, fmt.Errorf("%s: %w: segment holds %q, want %q", seg.Path(), shm.ErrTypeMismatch, seg.Tag(), Tag)
	}
	var in Inspection
	var ierr error
	err := seg.Guard(func() {
		q, err := views(seg)
		if err != nil {
			ierr = err
			return
		}
		in = q.inspect()
	})
	if err == nil {
		err = ierr
	}
	return in, err
}

func (q *Queue) inspect() Inspection {
	t, h := q.tail.Load(), q.head.Load()
	in := Inspection{
		Capacity: int(q.capacity), MaxSize: q.maxSize,
		Head: int64(h), Tail: int64(t &^ closedBit), Closed: t&closedBit != 0,
	}
	in.Len = int(max(0, min(in.Tail-in.Head, int64(q.capacity))))
	pids := map[int]shm.SlotInfo{}
	if slots, err := q.seg.Slots(); err == nil {
		for _, s := range slots {
			pids[s.Index] = s
		}
	}
	proc := func(i int) semaphore.Process {
		p := semaphore.Process{Slot: i, Alive: q.alive(i)}
		if g := q.area(i).Load(); g != 0 {
			if s, ok := pids[i]; ok && s.Gen == g {
				p.Pid = s.Pid
			}
		}
		return p
	}
	for i := range MaxProcs {
		if q.area(i).Load() != 0 {
			in.Attached = append(in.Attached, proc(i))
		}
	}
	// A cell's process: its slot's, if the generation still matches;
	// else a dead predecessor whose pid is no longer known.
	cellProc := func(w uint64) semaphore.Process {
		s := slotOf(w)
		if uint8(q.area(s).Load()) != genOf(w) {
			return semaphore.Process{Slot: s}
		}
		p := proc(s)
		p.Alive = q.cellAlive(w)
		return p
	}
	for i := range q.capacity {
		w := q.cell(i).word.Load()
		s := slotOf(w)
		switch st := stateOf(w); {
		case st == stTaking && (s < 0 || s >= MaxProcs):
			in.Impossible++
		case st == stTaking:
			in.Taking = append(in.Taking, CellState{Position: int64(w >> posShift), Process: cellProc(w), Seized: w&seizedBit != 0})
		case w&seizedBit != 0:
			in.Impossible++
		case s != -1 || (st == stFree && triesOf(w) != 0) || st != stFree && st != stPublished:
			in.Impossible++
		case st == stPublished:
			in.Ready++
		}
	}
	// Reserved cells: free for their lap, the tail past them. Their
	// writer is the live process whose lane names them, if any.
	writer := map[uint64]semaphore.Process{}
	for s := range MaxProcs {
		for i := range lanes {
			if v := q.lane(s, i).Load(); v&laneBusy != 0 && v != laneBusy {
				if p := proc(s); p.Alive || writer[v-laneBusy-1].Pid == 0 {
					writer[v-laneBusy-1] = p
				}
			}
		}
	}
	for pos := uint64(in.Head); pos < uint64(in.Tail) && pos < uint64(in.Head)+2*q.capacity; pos++ {
		if q.cell(pos).word.Load() != free(pos) {
			continue
		}
		p, ok := writer[pos]
		if !ok {
			p = semaphore.Process{Slot: -1} // its writer died, and its slot's lanes were cleared
		}
		in.Writing = append(in.Writing, CellState{Position: int64(pos), Process: p})
	}
	return in
}

// Repair settles what dead processes left in the queue name, as its
// receivers do when they reach it: messages dead producers were writing
// are dropped, messages dead receivers were taking go back to be taken
// again. It is safe while live processes use the queue: a cell is
// settled only after a look, made after the cell's word was read, finds
// the process it names dead. It returns how many cells it settled.
func Repair(ctx context.Context, name string) (int, error) {
	q, err := Open(ctx, name)
	if err != nil {
		return 0, err
	}
	defer q.Close()
	n := 0
	for s := range MaxProcs {
		if s != q.me.Index && q.area(s).Load() != 0 {
			n += q.settleIfDead(s)
		}
	}
	n += q.dropDeadReservations()
	if n > 0 {
		q.wakeAll()
	}
	return n, nil
}

// settleIfDead is settle for a slot that may be live: each cell naming
// it is settled only if, asked after the cell was read, slot s's process
// is dead (a process that claims s writes its generation before it
// touches a cell, so a cell of its own is never taken for its
// predecessor's).
func (q *Queue) settleIfDead(s int) int {
	n := 0
	for i := range q.capacity {
		c := q.cell(i)
		w := c.word.Load()
		if slotOf(w) != s || q.cellAlive(w) {
			continue
		}
		if nw, ok := q.settled(w); ok && c.word.CompareAndSwap(w, nw) {
			n++
		}
	}
	return n
}

// dropDeadReservations drops the reserved cells (free for their lap,
// the tail past them) that no live process says it writes, as a receiver
// does at the head: their producers died before publishing. The head
// passes them when it reaches them.
func (q *Queue) dropDeadReservations() int {
	n := 0
	// One lap from the head: every cell once. A second lap's cells
	// would be reserved past a first lap's still in the ring, and
	// dropping them lets producers run a third lap ahead of the head
	// (the review's TestRepairLaps).
	h := q.head.Load()
	for pos := h; pos < h+q.capacity; pos++ {
		c := q.cell(pos)
		w := c.word.Load() // before the tail: a cell reserved later has the tail past it
		if w != free(pos) || q.tail.Load()&^closedBit <= pos {
			continue
		}
		if !q.writerAlive(pos) && c.word.CompareAndSwap(w, free(pos+q.capacity)) {
			n++
		}
	}
	return n
}
