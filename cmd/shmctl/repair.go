//go:build linux

package main

import (
	"context"
	"fmt"

	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/ticketshm"
)

// repairResult is repair's answer for one segment.
type repairResult struct {
	Name  string   `json:"name"`
	Path  string   `json:"path"`
	Type  string   `json:"type"`
	Did   []string `json:"did"`             // what it changed, one line each
	Left  []string `json:"left"`            // what it found and left alone, and why
	Error string   `json:"error,omitempty"` // why it refused or failed
}

// repair takes the recovery steps a user may take by hand, each only
// where no live process could be hurt by it:
//   - a Counter: dead lock-free buyers' logs settled into the ledger, a
//     locked buy cut short by a death completed (ticketshm.Repair: what
//     any process's next Open does, safe with live buyers);
//   - a Semaphore: permits of dead holders given back (what its next
//     Open does);
//   - a not-recoverable Mutex: reset (Mutex.Reset), refused while a live
//     process has it open unless forced: resetting vouches for the state
//     it protects, which nobody repaired.
//
// Steps that need knowledge of the protected data (a Mutex whose owner
// died: the next locker's repair) are left, and said so.
func repair(ctx context.Context, out *printer, name string, force bool) error {
	s, err := look(name, true)
	if err != nil {
		return err
	}
	r := repairResult{Name: s.Name, Path: s.Path, Type: s.Type, Did: []string{}, Left: []string{}}
	var result error
	did := func(format string, args ...any) { r.Did = append(r.Did, fmt.Sprintf(format, args...)) }
	left := func(format string, args ...any) { r.Left = append(r.Left, fmt.Sprintf(format, args...)) }
	switch {
	case s.State != "ready":
		result = failure{fmt.Errorf("%s: %s (%s): nothing shmctl can repair; remove it (shmctl rm) once no process uses it", s.Path, s.State, s.Reason)}
	case s.Counter != nil:
		c := s.Counter
		if c.Unsettled == 0 && c.Lock.State != "held by a dead owner" {
			left("nothing to settle")
			break
		}
		rep, err := ticketshm.Repair(ctx, s.Path)
		if err != nil {
			result = failure{err}
			break
		}
		did("settled %d ticket(s) from dead buyers' logs into the ledger", rep.Settled)
		if c.Lock.State == "held by a dead owner" && rep.After.Lock.State != "held by a dead owner" {
			did("took over the lock its dead holder left, completing that holder's buy")
		}
		if !rep.After.Audit.OK() {
			left("audit still fails: %s", auditLine(rep.After.Audit))
		}
	case s.Semaphore != nil:
		var dead int64
		for _, h := range s.Semaphore.Holders {
			if !h.Alive {
				dead += h.Permits
			}
		}
		if dead == 0 {
			left("no permits held by dead processes")
			break
		}
		sem, err := semaphore.OpenSemaphore(ctx, s.Path)
		if err != nil {
			result = failure{err}
			break
		}
		sem.Close()
		did("gave back %d permit(s) held by dead processes", dead)
	case s.Queue != nil:
		dead := 0
		for _, c := range append(s.Queue.Writing, s.Queue.Taking...) {
			if !c.Alive {
				dead++
			}
		}
		if dead == 0 {
			left("no cell of a dead process")
			break
		}
		n, err := queue.Repair(ctx, s.Path)
		if err != nil {
			result = failure{err}
			break
		}
		did("settled %d cell(s) of dead processes: messages being written dropped, messages being taken put back", n)
	case s.Mutex != nil:
		m := s.Mutex
		switch m.Consistency {
		case "consistent":
			left("the mutex is consistent")
		case "owner died":
			left("its owner died holding it: the next locker gets ErrOwnerDead and repairs the data it protects, which shmctl does not know")
		case "not recoverable":
			if s.Live > 0 && !force {
				result = failure{fmt.Errorf("%s: %w: not recoverable, and live processes have it open: pids %s; resetting vouches for the data it protects (-f resets it anyway)", s.Path, errInUse, pids(s.Pids))}
				break
			}
			mu, err := semaphore.OpenMutex(ctx, s.Path)
			if err != nil {
				result = failure{err}
				break
			}
			err = mu.Reset()
			mu.Close()
			if err != nil {
				result = failure{err}
				break
			}
			did("reset the not-recoverable mutex: its next locker gets it as if new")
		}
	default:
		left("no repair for type %q", s.Type)
	}
	if result != nil {
		r.Error = result.Error()
	}
	if out.json {
		out.object(r)
		return result
	}
	for _, d := range r.Did {
		out.line("%s: %s", s.Name, d)
	}
	for _, l := range r.Left {
		out.line("%s: left alone: %s", s.Name, l)
	}
	return result
}
