//go:build !linux

package shm

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"sync/atomic"
	"time"
)

// shmkit relies on Linux: futexes, OFD locks, fallocate, /dev/shm. On other
// systems every entry point fails with errors.ErrUnsupported, so a program
// can build there and say so, instead of misbehaving.

// InitFunc fills a new segment's data region.
type InitFunc func(s *Segment) error

// Segment is a mapped shared-memory segment (Linux only).
type Segment struct{}

// Info describes a segment file (Linux only).
type Info struct {
	Path     string
	FileSize int64
	Version  uint32
	Tag      string
	State    State
	Size     int
	Inits    uint64
	Uid      uint32
	ModTime  time.Time
	Err      error
}

// Slot names one process's use of a segment (Linux only).
type Slot struct {
	Index int
	Gen   uint64
}

// SlotInfo describes one entry of a segment's slot table (Linux only).
type SlotInfo struct {
	Slot
	Pid     int
	PidNS   uint64
	Claimed time.Time
	Alive   bool
	Closed  bool
}

func unsupported(op, name string) error {
	return &fs.PathError{Op: op, Path: name, Err: errors.ErrUnsupported}
}

func Create(name string, size int, tag string, init InitFunc) (*Segment, error) {
	return nil, unsupported("create", name)
}
func Open(name string, tag string) (*Segment, error) { return nil, unsupported("open", name) }
func OpenOrCreate(ctx context.Context, name string, size int, tag string, init InitFunc) (*Segment, error) {
	return nil, unsupported("open", name)
}
func Remove(name string) error       { return unsupported("remove", name) }
func Stat(name string) (Info, error) { return Info{}, unsupported("stat", name) }
func PIDNamespace() (uint64, error)  { return 0, errors.ErrUnsupported }
func OpenPrivate(name string) (*Segment, error) {
	return nil, unsupported("open private", name)
}
func (s *Segment) Private() bool         { return false }
func List() ([]Info, error)              { return nil, unsupported("list", Dir) }
func (s *Segment) Close() error          { return errors.ErrUnsupported }
func (s *Segment) Path() string          { return "" }
func (s *Segment) Tag() string           { return "" }
func (s *Segment) Size() int             { return 0 }
func (s *Segment) Data() []byte          { return nil }
func (s *Segment) Inits() uint64         { return 0 }
func (s *Segment) File() *os.File        { return nil }
func (s *Segment) Check() error          { return errors.ErrUnsupported }
func (s *Segment) Guard(fn func()) error { return errors.ErrUnsupported }
func (s *Segment) Uint32(off int) (*atomic.Uint32, error) {
	return nil, errors.ErrUnsupported
}
func (s *Segment) Int32(off int) (*atomic.Int32, error)   { return nil, errors.ErrUnsupported }
func (s *Segment) Uint64(off int) (*atomic.Uint64, error) { return nil, errors.ErrUnsupported }
func (s *Segment) Int64(off int) (*atomic.Int64, error)   { return nil, errors.ErrUnsupported }
func (s *Segment) Slot(ctx context.Context, prefer ...int) (Slot, error) {
	return Slot{}, errors.ErrUnsupported
}
func (s *Segment) OnClose(fn func()) error     { return errors.ErrUnsupported }
func (s *Segment) Alive(sl Slot) (bool, error) { return false, errors.ErrUnsupported }
func (s *Segment) SlotGen(i int) uint64        { return 0 }
func (s *Segment) Slots() ([]SlotInfo, error)  { return nil, errors.ErrUnsupported }
func (s *Segment) Populate() error             { return errors.ErrUnsupported }
