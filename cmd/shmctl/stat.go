//go:build linux

package main

import (
	"fmt"
	"strings"

	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/ticketshm"
)

// stat shows one segment: header, processes, slots, and what its type
// holds.
func stat(out *printer, name string) error {
	s, err := look(name, true)
	if err != nil {
		return err
	}
	if out.json {
		out.object(s)
	} else {
		printSegment(out, s)
	}
	if s.State == "corrupt" {
		return failure{fmt.Errorf("%s: corrupt: %s", s.Path, s.Reason)}
	}
	return nil
}

func printSegment(out *printer, s *segment) {
	out.row("name", s.Name)
	out.row("path", s.Path)
	out.row("type", orDash(s.Type))
	out.row("state", s.State)
	if s.Reason != "" {
		out.row("reason", s.Reason)
	}
	out.row("size", fmt.Sprintf("%d bytes (header version %d, %d init)", s.Size, s.Version, s.Inits))
	out.row("modified", s.Modified.Format("2006-01-02 15:04:05 MST"))
	out.row("owner", fmt.Sprintf("uid %d", s.Uid))
	procs := fmt.Sprintf("%d live, %d dead; pids %s", s.Live, s.Dead, pids(s.Pids))
	if s.Foreign > 0 {
		procs += fmt.Sprintf("; %d live in other PID namespaces", s.Foreign)
	}
	out.row("processes", procs)
	if len(s.Slots) > 0 {
		out.line("")
		out.row("SLOT", "GEN", "PID", "ALIVE", "CLOSED", "CLAIMED")
		for _, sl := range s.Slots {
			pid := fmt.Sprint(sl.Pid)
			if sl.Foreign {
				pid += " (other PID namespace)"
			}
			out.row(sl.Index, sl.Gen, pid, yes(sl.Alive), yes(sl.Closed), sl.Claimed.Format("2006-01-02 15:04:05"))
		}
	}
	switch {
	case s.Mutex != nil:
		out.line("")
		printMutex(out, "mutex", *s.Mutex, s.Slots)
	case s.Semaphore != nil:
		out.line("")
		printSemaphore(out, *s.Semaphore, s.Slots)
	case s.Counter != nil:
		out.line("")
		printCounter(out, *s.Counter, s.Slots)
	case s.Queue != nil:
		out.line("")
		printQueue(out, *s.Queue, s.Slots)
	}
	out.flush()
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func procOrNone(p *semaphore.Process) string {
	if p == nil {
		return "none"
	}
	return p.String()
}

func printMutex(out *printer, label string, m semaphore.MutexState, slots []slotView) {
	state := m.State
	if m.Owner != nil && m.Held() {
		state += " by " + m.Owner.String()
	} else if m.OwnerID != 0 && m.Held() {
		state += fmt.Sprintf(" (owner id %d)", m.OwnerID)
	}
	if !strings.HasSuffix(state, m.Consistency) { // "free, owner died" says it already
		state += "; " + m.Consistency
	}
	out.row(label, state)
	out.row("waiters", yes(m.Waiters))
	bias := procOrNone(m.BiasedTo)
	if m.BiasedTo != nil {
		bias += ", inside a critical section: " + yes(m.InCS)
	}
	if m.Revoker != nil {
		bias += ", being revoked by " + m.Revoker.String()
	}
	out.row("bias", bias)
	handoff := procOrNone(m.HandOff)
	if m.HandOff != nil {
		handoff = "pending for " + handoff + ", granted: " + yes(m.Granted)
	}
	out.row("hand-off", handoff)
	out.row("attached", attached(m.Attached, slots))
}

// attached lists the processes a type's slot areas name. One that is not
// alive is "dead" to the type's inspection; the slot table tells one that
// closed the segment before it ended ("closed") from one that died with
// it open.
func attached(ps []semaphore.Process, slots []slotView) string {
	var att []string
	for _, p := range ps {
		s := p.String()
		if !p.Alive && p.Pid != 0 {
			for _, sl := range slots {
				if sl.Index == p.Slot && sl.Pid == p.Pid && sl.Closed {
					s = fmt.Sprintf("pid %d (slot %d, closed)", p.Pid, p.Slot)
				}
			}
		}
		att = append(att, s)
	}
	return orDash(strings.Join(att, ", "))
}

func printSemaphore(out *printer, s semaphore.SemaphoreState, slots []slotView) {
	books := "balance"
	if !s.Balanced {
		books = "do not balance"
	}
	out.row("semaphore", fmt.Sprintf("%d permits, %d available; books %s", s.Capacity, s.Available, books))
	if len(s.Holders) == 0 {
		out.row("holders", "none")
	}
	for i, h := range s.Holders {
		label := ""
		if i == 0 {
			label = "holders"
		}
		out.row(label, fmt.Sprintf("%s: %d", h.Process, h.Permits))
	}
	printMutex(out, "its mutex", s.Mutex, slots)
}

func printCounter(out *printer, c ticketshm.Inspection, slots []slotView) {
	out.row("counter", fmt.Sprintf("%v, %d tickets, %d remaining", c.Mode, c.Total, c.Remaining))
	out.row("audit", auditLine(c.Audit))
	out.row("unsettled", fmt.Sprintf("%d tickets in dead buyers' logs (the next open or shmctl repair settles them)", c.Unsettled))
	printMutex(out, "lock", c.Lock, slots)
	if len(c.Slots) > 0 {
		out.line("")
		out.row("SLOT", "PID", "ALIVE", "SOLD", "SALES", "LOGGED", "DEAD LOG")
		for _, s := range c.Slots {
			out.row(s.Slot, s.Pid, yes(s.Alive), s.Sold, s.Sales, s.Logged, yes(s.DeadLog))
		}
	}
}

func printQueue(out *printer, q queue.Inspection, slots []slotView) {
	closed := ""
	if q.Closed {
		closed = "; closed for sending"
	}
	out.row("queue", fmt.Sprintf("%d of %d cells used, messages up to %d bytes; %d ready%s", q.Len, q.Capacity, q.MaxSize, q.Ready, closed))
	out.row("positions", fmt.Sprintf("head %d, tail %d", q.Head, q.Tail))
	out.row("attached", attached(q.Attached, slots))
	for _, c := range q.Writing {
		out.row("writing", fmt.Sprintf("position %d by %s", c.Position, cellProcess(c)))
	}
	for _, c := range q.Taking {
		out.row("taking", fmt.Sprintf("position %d by %s", c.Position, c.Process))
	}
	if q.Impossible > 0 {
		out.row("impossible", fmt.Sprintf("%d cells in states the protocol never makes", q.Impossible))
	}
}

func auditLine(a ticketshm.Audit) string {
	verdict := "OK"
	if !a.OK() {
		verdict = "FAILED"
	}
	return fmt.Sprintf("%s: sold %d + remaining %d of %d; lost %d, oversold %d, double sold %d, in flight %d",
		verdict, a.Sold, a.Remaining, a.Total, a.Lost, a.Oversold, a.DoubleSold, a.InFlight)
}

// cellProcess names the process a queue cell is waiting on.
func cellProcess(c queue.CellState) string {
	if c.Slot < 0 {
		return "a dead producer"
	}
	return c.Process.String()
}
