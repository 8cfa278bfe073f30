//go:build linux

package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"runtime/debug"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Check reports ErrTruncated if the segment's file is now shorter than the
// mapping: someone truncated it after it was opened, and touching the lost
// pages would raise SIGBUS. It reports ErrReplaced if the segment's name
// no longer names its file: removed, or another file renamed over it.
// This process goes on using the file it mapped, whose name is gone: the
// processes that open the name from then on use the new file, and the two
// share nothing. It is a snapshot: the file may change right after Check
// returns; Guard covers a truncation.
func (s *Segment) Check() error {
	if s.dead() {
		return fmt.Errorf("%s: %w", s.path, ErrClosed)
	}
	var n int64
	err := s.m.withFile(func(f *os.File) (err error) {
		n, err = fileSize(f)
		return err
	})
	if err != nil {
		return fmt.Errorf("%s: %w", s.path, err)
	}
	if n < int64(len(s.m.mem)) {
		return fmt.Errorf("%s: %w: file is %d bytes, mapped %d; recreate the segment", s.path, ErrTruncated, n, len(s.m.mem))
	}
	var st unix.Stat_t
	switch err := unix.Lstat(s.path, &st); {
	case errors.Is(err, unix.ENOENT):
		return fmt.Errorf("%s: %w: the name was removed", s.path, ErrReplaced)
	case err != nil:
		return &fs.PathError{Op: "check", Path: s.path, Err: err}
	case st.Ino != s.m.key.ino || st.Dev != s.m.key.dev:
		return fmt.Errorf("%s: %w: the name now names another file", s.path, ErrReplaced)
	}
	return nil
}

// Guard runs fn and turns a memory fault inside this segment's mapping into
// an error wrapping ErrTruncated, instead of the SIGBUS that kills the
// process when the file was truncated under the mapping. fn must touch the
// segment from the calling goroutine (faults are caught per goroutine, with
// debug.SetPanicOnFault). Any other panic passes through unchanged.
//
// After a fault, the memory fn was updating may be half written: treat the
// segment as lost and recreate it.
func (s *Segment) Guard(fn func()) (err error) {
	if s.dead() {
		return s.errClosed()
	}
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		r := recover()
		if r == nil {
			return
		}
		if f, ok := r.(interface {
			runtime.Error
			Addr() uintptr
		}); ok && s.contains(f.Addr()) {
			err = fmt.Errorf("%s: %w: fault at offset %d: %v; recreate the segment", s.path, ErrTruncated, f.Addr()-s.base(), f)
			return
		}
		panic(r)
	}()
	fn()
	return nil
}

// base is the address of the mapping, used only to recognise fault
// addresses; no pointer is made from it.
func (s *Segment) base() uintptr { return uintptr(unsafe.Pointer(&s.m.mem[0])) }

func (s *Segment) contains(addr uintptr) bool {
	b := s.base()
	return addr >= b && addr < b+uintptr(len(s.m.mem))
}
