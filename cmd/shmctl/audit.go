//go:build linux

package main

import (
	"fmt"
	"strings"

	"github.com/shmkit/shmkit/ticketshm"
)

// auditResult is audit's answer for one segment.
type auditResult struct {
	Name     string           `json:"name"`
	Path     string           `json:"path"`
	Type     string           `json:"type"`
	OK       bool             `json:"ok"`
	Problems []string         `json:"problems"` // why it fails
	Notes    []string         `json:"notes"`    // what holds but is worth knowing
	Counter  *ticketshm.Audit `json:"counter,omitempty"`
}

// audit checks what each type promises: a Counter's Audit (dead buyers'
// logs settled on a private copy, so the segment is not changed), a
// Mutex that is recoverable, a Semaphore whose books balance.
func audit(out *printer, name string) error {
	s, err := look(name, true)
	if err != nil {
		return err
	}
	r := check(s)
	if r.Problems == nil && !r.OK {
		r.Problems = []string{}
	}
	// A semaphore's books are only sure while its mutex is free: look
	// again a few times before calling them wrong.
	for i := 0; i < 20 && !r.OK && s.Semaphore != nil && s.Semaphore.Mutex.Held(); i++ {
		if s, err = look(name, true); err != nil {
			return err
		}
		r = check(s)
	}
	if out.json {
		out.object(r)
	} else {
		verdict := "OK"
		if !r.OK {
			verdict = "FAILED: " + strings.Join(r.Problems, "; ")
		}
		out.line("%s: %s", s.Name, verdict)
		for _, n := range r.Notes {
			out.line("  %s", n)
		}
	}
	if !r.OK {
		return failure{fmt.Errorf("%s: audit failed: %s", s.Path, strings.Join(r.Problems, "; "))}
	}
	return nil
}

func check(s *segment) auditResult {
	r := auditResult{Name: s.Name, Path: s.Path, Type: s.Type, Problems: []string{}, Notes: []string{}}
	bad := func(format string, args ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, args...)) }
	note := func(format string, args ...any) { r.Notes = append(r.Notes, fmt.Sprintf(format, args...)) }
	switch {
	case s.State == "corrupt":
		bad("corrupt: %s", s.Reason)
	case s.State != "ready":
		bad("not ready (%s): its initializer is running or died; the next OpenOrCreate redoes it", s.State)
	case s.Reason != "" && s.Mutex == nil && s.Semaphore == nil && s.Counter == nil:
		if s.Reason == noView {
			note("header OK; %s", s.Reason)
		} else {
			bad("%s", s.Reason)
		}
	}
	if s.Dead > 0 {
		note("%d process(es) died with it open", s.Dead)
	}
	if m := s.Mutex; m != nil {
		switch m.Consistency {
		case "not recoverable":
			bad("the mutex is not recoverable: every Lock fails until shmctl repair (or Mutex.Reset) resets it")
		case "owner died":
			note("its owner died holding it: the next locker gets ErrOwnerDead and repairs what it protects")
		}
	}
	if sem := s.Semaphore; sem != nil {
		if sem.Mutex.Consistency == "not recoverable" {
			bad("its mutex is not recoverable")
		}
		if !sem.Balanced {
			held := int64(0)
			for _, h := range sem.Holders {
				held += h.Permits
			}
			bad("books do not balance: %d available + %d held != %d permits", sem.Available, held, sem.Capacity)
		}
		for _, h := range sem.Holders {
			if !h.Alive {
				note("%s holds %d permit(s): the next Acquire (or shmctl repair) gives them back", h.Process, h.Permits)
			}
		}
	}
	if c := s.Counter; c != nil {
		a := c.Audit
		r.Counter = &a
		if !a.OK() {
			bad("%s", auditLine(a))
		}
		if c.Lock.Consistency == "not recoverable" {
			bad("its lock is not recoverable")
		}
		if c.Unsettled > 0 {
			note("%d ticket(s) in dead buyers' logs, counted as settled; the next open or shmctl repair writes them to the ledger", c.Unsettled)
		}
		if a.InFlight > 0 {
			note("%d buy(s) in flight in live processes: audit a quiet counter for an exact answer", a.InFlight)
		}
	}
	if q := s.Queue; q != nil {
		if q.Impossible > 0 {
			bad("%d cells in states the protocol never makes", q.Impossible)
		}
		for _, c := range append(q.Writing, q.Taking...) {
			if !c.Alive {
				note("the cell at position %d is %s's: the next receiver to reach it (or shmctl repair) settles it", c.Position, cellProcess(c))
			}
		}
	}
	r.OK = len(r.Problems) == 0
	return r
}
