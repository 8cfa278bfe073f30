//go:build linux

package shm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
)

// InitFunc fills a new segment's data region, which it finds all zeros. It
// runs before any other process can use the segment. If it returns an error
// the segment stays uninitialized and the next OpenOrCreate runs an init
// again.
type InitFunc func(s *Segment) error

// Segment is a mapped shared-memory segment: a validated header followed by
// a data region of Size bytes.
//
// A Segment is safe for use by many goroutines; the data it maps is shared
// with every process that opened the same file, so access to it must go
// through atomic views or a lock (package semaphore). A Segment must not be
// copied. Views and slices obtained from it must not be used after Close.
type Segment struct {
	path string
	tag  string
	f    *os.File  // kept open: it carries the OFD locks of process slots
	mem  mmap.MMap // the whole file, header included; page aligned
	data []byte    // mem[HeaderSize:]

	closeOnce sync.Once
	closed    atomic.Bool
	onClose   []func() // run by Close before unmapping, last first

	slotMu sync.Mutex
	slots  map[int]bool // process slots claimed through this Segment
}

// Create makes a new segment of size data bytes with the given type tag,
// runs init on it and only then gives it its name: no other process can see
// a half-initialized segment. It fails with an error matching fs.ErrExist
// if the name is taken.
func Create(name string, size int, tag string, init InitFunc) (*Segment, error) {
	path, err := checkArgs(name, size, tag)
	if err != nil {
		return nil, err
	}
	// An unnamed file in the target directory, linked into place once it
	// is ready (O_TMPFILE + linkat).
	fd, err := unix.Open(filepath.Dir(path), unix.O_TMPFILE|unix.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: fmt.Errorf("unnamed file in %s: %w", filepath.Dir(path), err)}
	}
	f := os.NewFile(uintptr(fd), path)
	s, err := initialize(f, path, size, tag, 0, init)
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	if err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW); err != nil {
		s.Close()
		return nil, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	return s, nil
}

// Open maps an existing, initialized segment whose type tag is tag. It
// validates the header (ErrBadMagic, ErrVersion, ErrCorrupt, ErrTruncated,
// ErrTypeMismatch) and fails with ErrNotReady if the segment's initializer
// has not finished or died before it did; OpenOrCreate waits for, or redoes,
// such an initialization.
func Open(name string, tag string) (*Segment, error) {
	path, err := Path(name)
	if err != nil {
		return nil, err
	}
	if err := checkTag(tag); err != nil {
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	f, err := openFile(path, 0)
	if err != nil {
		return nil, err
	}
	s, err := openReady(f, path, 0, tag)
	if err != nil {
		f.Close()
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return s, nil
}

// OpenOrCreate opens the segment, creating and initializing it if needed.
// Of many processes that call it at once, exactly one runs init and the
// others wait until the segment is ready. If an initializer died (or its
// init returned an error), the next caller truncates the segment to zeros
// and runs its own init.
//
// An existing segment must have the same tag (ErrTypeMismatch) and data
// size (ErrSizeMismatch). Waiting stops when ctx is done, with ctx.Err().
func OpenOrCreate(ctx context.Context, name string, size int, tag string, init InitFunc) (*Segment, error) {
	path, err := checkArgs(name, size, tag)
	if err != nil {
		return nil, err
	}
	for {
		f, err := openFile(path, unix.O_CREAT)
		if err != nil {
			return nil, err
		}
		s, replaced, err := openOrInit(ctx, f, path, size, tag, init)
		if replaced {
			f.Close()
			continue // the file was removed or replaced while we waited
		}
		if err != nil {
			f.Close()
			return nil, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return s, nil
	}
}

func checkArgs(name string, size int, tag string) (string, error) {
	path, err := Path(name)
	if err != nil {
		return "", err
	}
	if err := checkSize(size); err != nil {
		return "", &fs.PathError{Op: "create", Path: path, Err: err}
	}
	if err := checkTag(tag); err != nil {
		return "", &fs.PathError{Op: "create", Path: path, Err: err}
	}
	return path, nil
}

// openOrInit runs under the init lock. replaced reports that path no longer
// names the file f, so the caller must start over.
func openOrInit(ctx context.Context, f *os.File, path string, size int, tag string, init InitFunc) (s *Segment, replaced bool, err error) {
	if err := lockByteContext(ctx, f, initLockOffset); err != nil {
		return nil, false, err
	}
	defer func() {
		if uerr := unlockByte(f, initLockOffset); uerr != nil && err == nil {
			if s != nil {
				s.unmap()
			}
			s, err = nil, uerr
		}
	}()
	var st, pst unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, false, os.NewSyscallError("fstat", err)
	}
	if err := unix.Lstat(path, &pst); err != nil || pst.Ino != st.Ino || pst.Dev != st.Dev {
		return nil, true, nil
	}
	buf, err := readHeader(f, st.Size)
	if err != nil {
		return nil, false, err
	}
	h, err := parseHeader(buf)
	switch {
	case errors.Is(err, ErrNotReady):
		// Zeros: created, never initialized (the creator died first).
		s, err = initialize(f, path, size, tag, 0, init)
		return s, false, err
	case err != nil:
		return nil, false, err
	case h.tag != tag:
		return nil, false, fmt.Errorf("%w: segment holds %q, want %q", ErrTypeMismatch, h.tag, tag)
	case h.state == StateInitializing:
		// The init lock is ours, so the initializer that wrote this
		// state is gone: redo its work from zeros.
		s, err = initialize(f, path, size, tag, h.inits, init)
		return s, false, err
	}
	s, err = mapReady(f, path, h, st.Size, size, tag)
	return s, false, err
}

// openReady validates the header of an already opened file and maps it.
func openReady(f *os.File, path string, size int, tag string) (*Segment, error) {
	n, err := fileSize(f)
	if err != nil {
		return nil, err
	}
	buf, err := readHeader(f, n)
	if err != nil {
		return nil, err
	}
	h, err := parseHeader(buf)
	if err != nil {
		return nil, err
	}
	if h.state != StateReady {
		return nil, fmt.Errorf("%w: state %v: its initializer is running or died; OpenOrCreate waits for it or redoes it", ErrNotReady, h.state)
	}
	return mapReady(f, path, h, n, size, tag)
}

// mapReady checks a ready header against the file and the caller's wishes,
// then maps the file.
func mapReady(f *os.File, path string, h header, fileSize int64, size int, tag string) (*Segment, error) {
	switch {
	case uint64(fileSize) < h.totalSize:
		return nil, fmt.Errorf("%w: file is %d bytes, its header says %d", ErrTruncated, fileSize, h.totalSize)
	case uint64(fileSize) > h.totalSize:
		return nil, fmt.Errorf("%w: file is %d bytes, its header says %d", ErrCorrupt, fileSize, h.totalSize)
	case h.tag != tag:
		return nil, fmt.Errorf("%w: segment holds %q, want %q", ErrTypeMismatch, h.tag, tag)
	case size != 0 && h.totalSize-HeaderSize != uint64(size):
		return nil, fmt.Errorf("%w: segment has %d data bytes, want %d; remove it to change its size", ErrSizeMismatch, h.totalSize-HeaderSize, size)
	}
	s, err := mapFile(f, path, tag, int(h.totalSize))
	if err != nil {
		return nil, err
	}
	// Acquire the initializer's stores: the state read by pread above
	// says nothing about memory order on weakly ordered CPUs.
	if st := State(s.stateWord().Load()); st != StateReady {
		s.unmap()
		return nil, fmt.Errorf("%w: state changed to %v while opening", ErrCorrupt, st)
	}
	return s, nil
}

// initialize lays a fresh segment into f: zeros, header, init, ready.
func initialize(f *os.File, path string, size int, tag string, prevInits uint64, init InitFunc) (*Segment, error) {
	total := HeaderSize + size
	if err := reserve(f, int64(total)); err != nil {
		return nil, err
	}
	s, err := mapFile(f, path, tag, total)
	if err != nil {
		return nil, err
	}
	h := header{totalSize: uint64(total), state: StateInitializing, tag: tag, inits: prevInits + 1}
	h.encode(s.mem)
	if init != nil {
		ok := false
		defer func() {
			if !ok {
				s.unmap() // init failed or panicked; the state stays initializing
			}
		}()
		if err := init(s); err != nil {
			return nil, fmt.Errorf("init: %w", err)
		}
		ok = true
	}
	s.stateWord().Store(uint32(StateReady))
	return s, nil
}

func mapFile(f *os.File, path, tag string, total int) (*Segment, error) {
	mem, err := mmap.MapRegion(f, total, mmap.RDWR, 0, 0)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	return &Segment{path: path, tag: tag, f: f, mem: mem, data: mem[HeaderSize:total:total]}, nil
}

// stateWord is the header's state as an atomic. The mapping is page
// aligned and offState is 4-aligned, so the conversion is sound.
func (s *Segment) stateWord() *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&s.mem[offState]))
}

// unmap releases the mapping but leaves f open (the caller owns it).
func (s *Segment) unmap() {
	s.closed.Store(true)
	s.mem.Unmap()
}

// Close unmaps the segment and closes its file, which releases the process
// slots claimed through it. The segment's file stays; Remove deletes it.
// Close after Close returns ErrClosed.
func (s *Segment) Close() error {
	err := fmt.Errorf("%s: %w", s.path, ErrClosed)
	s.closeOnce.Do(func() {
		s.slotMu.Lock()
		hooks := s.onClose
		s.onClose = nil
		s.slotMu.Unlock()
		for i := len(hooks) - 1; i >= 0; i-- {
			hooks[i]()
		}
		s.closed.Store(true)
		err = s.mem.Unmap()
		if cerr := s.f.Close(); err == nil {
			err = cerr
		}
	})
	return err
}

// OnClose registers fn to run when Close is called, before the memory is
// unmapped; hooks run last registered first. Packages that give the kernel
// addresses inside a segment (robust futex lists) use it to take them back.
func (s *Segment) OnClose(fn func()) {
	s.slotMu.Lock()
	defer s.slotMu.Unlock()
	s.onClose = append(s.onClose, fn)
}

// Path is the segment's file.
func (s *Segment) Path() string { return s.path }

// Tag is the segment's type tag.
func (s *Segment) Tag() string { return s.tag }

// Size is the size of the data region in bytes.
func (s *Segment) Size() int { return len(s.data) }

// Data is the data region. Plain reads and writes of it race with other
// processes; use the atomic views or a lock. It must not be used after Close.
func (s *Segment) Data() []byte { return s.data }

// Inits is how many times an initialization of this segment has begun: 1
// unless an initializer died or failed and a later opener redid it.
func (s *Segment) Inits() uint64 {
	return binary.LittleEndian.Uint64(s.mem[offInits:])
}

// File is the segment's open file. It is owned by the Segment: do not close
// it. Packages building on shm use it for byte-range locks.
func (s *Segment) File() *os.File { return s.f }

// Remove deletes the segment's file. Processes that have it open keep their
// mapping; new opens will not find it. Remove refuses anything but a
// regular file (ErrNotRegular) and reports a missing one as fs.ErrNotExist.
func Remove(name string) error {
	path, err := Path(name)
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return &fs.PathError{Op: "remove", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return &fs.PathError{Op: "remove", Path: path, Err: fmt.Errorf("%w: file type %s", ErrNotRegular, fileType(st.Mode))}
	}
	if err := unix.Unlink(path); err != nil {
		return &fs.PathError{Op: "remove", Path: path, Err: err}
	}
	return nil
}

// Populate maps every page of the segment into this process ahead of use
// (madvise MADV_POPULATE_WRITE, Linux 5.14), so that first writes to
// untouched pages do not each take a page fault; it changes no data. A
// benchmark calls it before its clock starts. On an older kernel it
// returns an error and nothing else happens.
func (s *Segment) Populate() error {
	if s.closed.Load() {
		return fmt.Errorf("%s: %w", s.path, ErrClosed)
	}
	if err := unix.Madvise(s.mem, unix.MADV_POPULATE_WRITE); err != nil {
		return fmt.Errorf("%s: %w", s.path, os.NewSyscallError("madvise", err))
	}
	return nil
}
