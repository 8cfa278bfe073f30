//go:build linux

package shm

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
)

// OpenPrivate maps a ready segment of any type privately, for tools that
// look at a segment without disturbing it (cmd/shmctl): reads see what
// the segment holds, as it changes, until this process writes a page;
// its writes go to a private copy of that page and never reach the file
// or another process (MAP_PRIVATE). A look can so run a package's own
// repair logic on the copy to tell what a repair would find.
//
// The handle claims no slot (Slot and Populate fail with ErrPrivate) and
// takes no lock; Alive, Slots, views, Data, Check and Guard work as on
// any handle, Alive asking the kernel about the real file's locks. The
// file is opened read-only, so read permission is enough, and files of
// other users are looked at too. It does not wait for an initializer:
// a segment that is not ready is ErrNotReady. Each call makes a mapping
// of its own, shared with no other handle.
func OpenPrivate(name string) (*Segment, error) {
	path, err := Path(name)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*Segment, error) {
		return nil, &fs.PathError{Op: "open private", Path: path, Err: err}
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ELOOP) {
		return fail(fmt.Errorf("%w: it is a symbolic link", ErrNotRegular))
	}
	if err != nil {
		return fail(err)
	}
	f := os.NewFile(uintptr(fd), path)
	m, err := func() (*mapping, error) {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			return nil, os.NewSyscallError("fstat", err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return nil, fmt.Errorf("%w: file type %s", ErrNotRegular, fileType(st.Mode))
		}
		_, h, now, err := readParsed(f, st.Size)
		if err != nil {
			return nil, err
		}
		st.Size = now
		switch {
		case h.state != StateReady:
			return nil, fmt.Errorf("%w: state %v", ErrNotReady, h.state)
		case uint64(st.Size) < h.totalSize:
			return nil, fmt.Errorf("%w: file is %d bytes, its header says %d", ErrTruncated, st.Size, h.totalSize)
		case uint64(st.Size) > h.totalSize:
			return nil, fmt.Errorf("%w: file is %d bytes, its header says %d", ErrCorrupt, st.Size, h.totalSize)
		}
		mem, err := mmap.MapRegion(f, int(h.totalSize), mmap.COPY, 0, 0)
		if err != nil {
			return nil, os.NewSyscallError("mmap", err)
		}
		return &mapping{
			key: fileKey{dev: st.Dev, ino: st.Ino}, tag: h.tag, f: f, mem: mem,
			data: mem[DataOffset:h.totalSize:h.totalSize], refs: 1, private: true,
		}, nil
	}()
	if err != nil {
		f.Close()
		return fail(err)
	}
	return &Segment{m: m, path: path}, nil
}

// Private reports whether s was made by OpenPrivate.
func (s *Segment) Private() bool { return s.m != nil && s.m.private }

// closePrivate is Close for a private mapping: no registry, no slot, and
// nobody to race (it is this handle's alone), so it is unmapped.
func (s *Segment) closePrivate() error {
	m := s.m
	m.mu.Lock()
	hooks := m.hooks
	m.hooks = nil
	m.mu.Unlock()
	for i := len(hooks) - 1; i >= 0; i-- {
		hooks[i]()
	}
	err := m.retire()
	if cerr := m.f.Close(); err == nil {
		err = cerr
	}
	return err
}
