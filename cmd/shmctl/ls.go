//go:build linux

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/shmkit/shmkit/shm"
)

// ls lists the segments in each directory given (default /dev/shm) and
// the segment files given by path. Files that are not segments are
// skipped; a corrupt segment is listed with its reason.
func ls(out *printer, args []string) error {
	if len(args) == 0 {
		args = []string{shm.Dir}
	}
	var paths []string
	for _, a := range args {
		fi, err := os.Lstat(a)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			paths = append(paths, a)
			continue
		}
		entries, err := os.ReadDir(a)
		if err != nil {
			return err
		}
		for _, e := range entries {
			if e.Type().IsRegular() {
				paths = append(paths, filepath.Join(a, e.Name()))
			}
		}
	}
	sort.Strings(paths)
	if !out.json {
		out.row("NAME", "TYPE", "SIZE", "STATE", "MODIFIED", "LIVE", "DEAD", "PIDS", "UID")
	}
	var failed error
	for _, p := range paths {
		s, err := look(p, false)
		if err != nil {
			switch {
			case errors.Is(err, errNotSegment):
				continue // not ours
			case errors.Is(err, fs.ErrNotExist):
				continue // removed since the directory was read
			case errors.Is(err, fs.ErrPermission) && !strings.HasPrefix(filepath.Base(p), shm.Prefix):
				continue // unreadable, and not named as ours
			}
			s = &segment{Name: displayName(p), Path: p, State: "unreadable", Reason: reason(err)}
		}
		if s.State == "corrupt" || s.State == "unreadable" {
			failed = failure{fmt.Errorf("%s: %s: %s", s.Path, s.State, s.Reason)}
		}
		if out.json {
			out.object(s)
			continue
		}
		state := s.State
		if s.Reason != "" {
			state += " (" + s.Reason + ")"
		}
		out.row(s.Name, orDash(s.Type), size(s.Size), state, s.Modified.Format("2006-01-02 15:04:05"), s.Live, s.Dead, pids(s.Pids), s.Uid)
	}
	return failed
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// size is n bytes for people: 4.0K, 66M.
func size(n int64) string {
	switch {
	case n < 1<<10:
		return fmt.Sprintf("%dB", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1fK", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1fM", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1fG", float64(n)/(1<<30))
}

func pids(p []int) string {
	if len(p) == 0 {
		return "-"
	}
	s := make([]string, len(p))
	for i, x := range p {
		s[i] = fmt.Sprint(x)
	}
	return strings.Join(s, ",")
}
