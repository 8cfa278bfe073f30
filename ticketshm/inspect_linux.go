//go:build linux

package ticketshm

import (
	"context"
	"fmt"
	"sync/atomic"

	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

// Inspect looks at the Counter in seg, a handle of shm.OpenPrivate,
// without changing it: no slot claimed, no lock taken. It settles dead
// buyers' logs as Audit does, but on the look's private copy, to report
// what Audit would. Any other handle is refused: settling on it would
// write to the segment.
func Inspect(seg *shm.Segment) (Inspection, error) {
	if !seg.Private() {
		return Inspection{}, fmt.Errorf("%s: ticketshm: Inspect wants a private look (shm.OpenPrivate)", seg.Path())
	}
	if seg.Tag() != Tag {
		return Inspection{}, fmt.Errorf("%s: %w: segment holds %q, want %q", seg.Path(), shm.ErrTypeMismatch, seg.Tag(), Tag)
	}
	var in Inspection
	var ierr error
	err := seg.Guard(func() { in, ierr = inspect(seg) })
	if err == nil {
		err = ierr
	}
	return in, err
}

func inspect(seg *shm.Segment) (Inspection, error) {
	c, err := views(seg, int64(seg.Size()-offOwners), 0)
	if err != nil {
		return Inspection{}, err
	}
	in := Inspection{Mode: c.mode, Total: c.total, Remaining: c.remaining.Load()}
	if in.Lock, err = semaphore.InspectMutex(seg, 0); err != nil {
		return Inspection{}, err
	}
	procs := map[int]shm.SlotInfo{}
	if slots, err := seg.Slots(); err == nil {
		for _, s := range slots {
			procs[s.Index] = s
		}
	}
	states := make([]SlotState, semaphore.MaxProcs)
	taken := c.total - in.Remaining
	var v verdicts // one look at each slot, for everything below
	for s := range semaphore.MaxProcs {
		st := &states[s]
		st.Slot = s
		g := c.areaOf(s).gen.Load()
		if g != 0 {
			st.Alive = c.live(&v, s)
			if p, ok := procs[s]; ok && p.Gen == g {
				st.Pid = p.Pid
			}
		}
		if c.mode == Locked {
			st.Sales = int64(atomic.LoadUint64(c.areaOf(s).sales) >> 32)
			continue
		}
		l := c.logOf(s)
		n := l.loadCount()
		if n < 0 || n > logCap {
			continue // settleDead below says ErrCorrupt, if dead
		}
		st.Logged = n
		if n == 0 && l.load(0) == 0 || c.live(&v, s) {
			continue
		}
		st.DeadLog = true
		for i := range int(n) {
			if r := l.load(i); r > 0 && r <= c.total && c.owners[c.total-r] == 0 {
				in.Unsettled++
			}
		}
		if t, ok := l.pending(c.total); ok && t <= taken && c.owners[t-1] == 0 {
			in.Unsettled++ // the intent: settleDead claims it, if nobody else does
		}
	}
	if err := c.settleDead(&v); err != nil { // on the private copy
		return Inspection{}, err
	}
	in.Audit = c.tally(&v)
	for s := range semaphore.MaxProcs {
		st := states[s]
		st.Sold = in.Audit.PerSlot[s]
		if c.areaOf(s).gen.Load() != 0 || st.Sold != 0 || st.Sales != 0 || st.DeadLog {
			in.Slots = append(in.Slots, st)
		}
	}
	return in, nil
}

// Repair settles what dead buyers left in the Counter name: their
// lock-free logs go into the ledger, and a locked buy cut short by a
// death is completed, as the next Open of any process would do. It is
// safe while live buyers run (it is that same Open: it claims a slot and
// takes the lock for the settlement), and leaves a counter that Audit
// finds OK unless tickets were lost or sold twice for another reason.
func Repair(ctx context.Context, name string) (Repaired, error) {
	look := func() (Inspection, error) {
		seg, err := shm.OpenPrivate(name)
		if err != nil {
			return Inspection{}, versionError(name, err)
		}
		defer seg.Close()
		return Inspect(seg)
	}
	var r Repaired
	var err error
	if r.Before, err = look(); err != nil {
		return r, err
	}
	// Settled is what the Open's settlement wrote, not the difference of
	// the two looks: a buyer judged alive by the first look (a zombie
	// whose slot is still held) and dead by the second is in After's
	// count and not in Before's, and the difference came out negative.
	c, settled, err := openSettling(ctx, name)
	if err != nil {
		return r, err
	}
	if err := c.Close(); err != nil {
		return r, err
	}
	r.Settled = settled
	if r.After, err = look(); err != nil {
		return r, err
	}
	return r, nil
}
