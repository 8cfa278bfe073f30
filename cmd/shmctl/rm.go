//go:build linux

package main

import (
	"errors"
	"fmt"
	"io/fs"

	"github.com/shmkit/shmkit/shm"
)

// rmResult is rm's answer for one segment.
type rmResult struct {
	Name    string `json:"name"`
	Path    string `json:"path"`
	Removed bool   `json:"removed"`
	Pids    []int  `json:"pids"` // live processes that had it open
	Error   string `json:"error,omitempty"`
}

// rm removes a segment file. It refuses while a live process has the
// segment open (a slot held, or the file open or mapped as /proc shows),
// unless forced; it never follows a symbolic link (shm.Remove unlinks the
// link itself only if it is a regular file, and look refuses links) and
// never removes a file that is not a segment.
func rm(out *printer, name string, force bool) error {
	procIndex = nil // who has it open now, not at the command's start
	s, err := look(name, false)
	if err != nil {
		return err
	}
	r := rmResult{Name: s.Name, Path: s.Path, Pids: s.Pids}
	if r.Pids == nil {
		r.Pids = []int{}
	}
	var result error
	switch {
	case (len(s.Pids) > 0 || s.Foreign > 0) && !force:
		who := "pids " + pids(s.Pids)
		if s.Foreign > 0 {
			who += fmt.Sprintf(", and %d in other PID namespaces", s.Foreign)
		}
		result = failure{fmt.Errorf("%s: %w: live processes have it open: %s (-f removes it anyway; they keep their mapping)", s.Path, errInUse, who)}
	default:
		if err := shm.Remove(s.Path); err != nil && !errors.Is(err, fs.ErrNotExist) {
			result = failure{err}
		} else {
			r.Removed = true
		}
	}
	if result != nil {
		r.Error = result.Error()
	}
	switch {
	case out.json:
		out.object(r)
	case r.Removed && len(r.Pids) > 0:
		out.line("removed %s (pids %s still have it mapped)", s.Name, pids(r.Pids))
	case r.Removed:
		out.line("removed %s", s.Name)
	}
	return result
}

// errInUse: rm found live processes using the segment.
var errInUse = errors.New("in use")
