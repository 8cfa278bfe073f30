//go:build linux

package shm

import (
	"fmt"
	"sync/atomic"
	"unsafe"
)

// at returns a pointer to size bytes at data offset off, after checking that
// they lie inside the data region and are aligned to size.
//
// Why the unsafe conversions in the views below are sound: the data region
// is a shared file mapping, outside the Go heap, so the garbage collector
// neither moves nor frees it; the mapping starts on a page boundary and the
// data region at DataOffset (a multiple of 64), so an offset aligned to size
// is an address aligned to size, which is all sync/atomic's types need; the
// atomic types have the same size as their value. The pointer is valid until
// Close unmaps the region, which the Segment's doc forbids using after.
func (s *Segment) at(off, size int) (unsafe.Pointer, error) {
	switch {
	case s.dead():
		return nil, fmt.Errorf("%s: %w", s.path, ErrClosed)
	case off < 0 || off > len(s.m.data)-size:
		return nil, fmt.Errorf("%s: %w: %d-byte view at offset %d, data region is %d bytes", s.path, ErrOutOfRange, size, off, len(s.m.data))
	case off%size != 0:
		return nil, fmt.Errorf("%s: %w: %d-byte view at offset %d; use a multiple of %d", s.path, ErrMisaligned, size, off, size)
	}
	return unsafe.Pointer(&s.m.data[off]), nil
}

// Uint32 is an atomic view of the 4 bytes at data offset off, which must be
// a multiple of 4 inside the data region.
func (s *Segment) Uint32(off int) (*atomic.Uint32, error) {
	p, err := s.at(off, 4)
	return (*atomic.Uint32)(p), err
}

// Int32 is an atomic view of the 4 bytes at data offset off, which must be
// a multiple of 4 inside the data region.
func (s *Segment) Int32(off int) (*atomic.Int32, error) {
	p, err := s.at(off, 4)
	return (*atomic.Int32)(p), err
}

// Uint64 is an atomic view of the 8 bytes at data offset off, which must be
// a multiple of 8 inside the data region.
func (s *Segment) Uint64(off int) (*atomic.Uint64, error) {
	p, err := s.at(off, 8)
	return (*atomic.Uint64)(p), err
}

// Int64 is an atomic view of the 8 bytes at data offset off, which must be
// a multiple of 8 inside the data region.
func (s *Segment) Int64(off int) (*atomic.Int64, error) {
	p, err := s.at(off, 8)
	return (*atomic.Int64)(p), err
}
