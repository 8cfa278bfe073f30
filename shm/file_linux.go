//go:build linux

package shm

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Byte-range lock offsets. OFD locks may lie past the end of a file and do
// not change its size, so they never touch the segment's bytes; they live
// far beyond any segment (MaxDataSize is 2^40).
const (
	// initLockOffset guards initialization: OpenOrCreate holds a write lock
	// on this byte from its check of the state word until the state is
	// ready. The kernel drops it if the holder dies.
	initLockOffset = 1 << 62
	// attachLockOffset serialises slot claims: a claimer holds it while
	// it checks the PID namespaces of the live slots and takes its own.
	attachLockOffset = initLockOffset + 1

	// slotLockBase is the byte locked by the process holding slot 0; slot i
	// locks slotLockBase+i.
	slotLockBase = initLockOffset + 4096
)

// errLocked reports that a non-blocking lock attempt found the byte taken.
var errLocked = errors.New("shm: byte lock held by another open file")

// openFile opens path for reading and writing without following a final
// symlink, without blocking on a FIFO and without leaking the descriptor to
// children, and checks that it is a regular file owned by this process's
// effective uid.
func openFile(path string, flags int) (*os.File, error) {
	fd, err := unix.Open(path, flags|unix.O_RDWR|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0o600)
	switch {
	case errors.Is(err, unix.ELOOP):
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: it is a symbolic link; give the link's target instead", ErrNotRegular)}
	case errors.Is(err, unix.EISDIR):
		return nil, &fs.PathError{Op: "open", Path: path, Err: fmt.Errorf("%w: it is a directory", ErrNotRegular)}
	case err != nil:
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	if err := checkFile(fd); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	// O_NONBLOCK only kept open(2) from blocking on a FIFO; a regular file
	// ignores it, but os.NewFile would try to put it in the poller.
	if err := unix.SetNonblock(fd, false); err != nil {
		unix.Close(fd)
		return nil, &fs.PathError{Op: "open", Path: path, Err: os.NewSyscallError("fcntl", err)}
	}
	return os.NewFile(uintptr(fd), path), nil
}

// checkFile refuses anything but a regular file of our own.
func checkFile(fd int) error {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return os.NewSyscallError("fstat", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%w: file type %s", ErrNotRegular, fileType(st.Mode))
	}
	if euid := uint32(os.Geteuid()); st.Uid != euid {
		return fmt.Errorf("%w: owner uid %d, this process runs as %d; remove the file or run as its owner", ErrWrongOwner, st.Uid, euid)
	}
	return nil
}

func fileType(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFDIR:
		return "directory"
	case unix.S_IFIFO:
		return "FIFO"
	case unix.S_IFSOCK:
		return "socket"
	case unix.S_IFCHR:
		return "character device"
	case unix.S_IFBLK:
		return "block device"
	case unix.S_IFLNK:
		return "symbolic link"
	}
	return fmt.Sprintf("mode %#o", mode&unix.S_IFMT)
}

func fileSize(f *os.File) (int64, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return 0, os.NewSyscallError("fstat", err)
	}
	return st.Size, nil
}

// readHeader reads the first min(size, HeaderSize) bytes of f.
func readHeader(f *os.File, size int64) ([]byte, error) {
	buf := make([]byte, min(size, HeaderSize))
	if _, err := f.ReadAt(buf, 0); err != nil {
		return nil, err
	}
	return buf, nil
}

// readParsed reads and parses the header of f, a file of size bytes.
//
// OpenOrCreate writes a new header with one write into the emptied file,
// and a read of the file beside that write may see some of its bytes and
// not others. So a header that fails validation, holds our magic or none yet, and a
// state of empty or initializing is one being written if an initializer
// holds the init lock: ErrNotReady, not ErrCorrupt. A ready header, or
// another program's bytes, fail as they are whoever holds the lock (every
// OpenOrCreate takes it a moment, and a foreign file may be locked with
// lockf). One that fails with the lock free is read once more, for an
// initializer that finished between the read and the look at the lock.
// A file that shrinks under the read (a dead initializer's work being
// redone truncates it) is read again too.
//
// It returns the file's size after the read too: a dead initializer's work
// redone meanwhile (with another size) changes it, and the header read is
// the new one; a ready segment's size no longer changes.
func readParsed(f *os.File, size int64) (buf []byte, h header, now int64, err error) {
	buf, h, err = readParsedAt(f, size)
	if buf == nil {
		return nil, h, 0, err
	}
	now, serr := fileSize(f)
	if serr != nil {
		return nil, h, 0, serr
	}
	return buf, h, now, err
}

// readParsedAt is readParsed, for a file of size bytes as last seen.
func readParsedAt(f *os.File, size int64) ([]byte, header, error) {
	for try := 0; ; try++ {
		buf, err := readHeader(f, size)
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			// Shorter than when its size was read: being redone.
			if try < 3 {
				if size, err = fileSize(f); err != nil {
					return nil, header{}, err
				}
				continue
			}
			return nil, header{}, fmt.Errorf("%w: the file changed size while it was read (being initialized)", ErrNotReady)
		}
		if err != nil {
			return nil, header{}, err
		}
		h, err := parseHeader(buf)
		if err == nil || errors.Is(err, ErrNotReady) {
			return buf, h, err
		}
		if wh, ok := withoutMagic(buf); ok {
			return buf, wh, fmt.Errorf("%w: initializing: the header lacks only its magic (its initializer is storing it, or died first; OpenOrCreate redoes it)", ErrNotReady)
		}
		if beingWritten(buf) {
			if locked, lerr := byteLocked(f, initLockOffset); lerr == nil && locked {
				return buf, h, fmt.Errorf("%w: being initialized (a read of its header found: %v)", ErrNotReady, err)
			}
		}
		if try > 0 {
			return buf, h, err
		}
		if size, err = fileSize(f); err != nil {
			return nil, header{}, err
		}
	}
}

// beingWritten reports whether b could be a header that initialize is
// writing: a full header whose magic is ours or not yet stored (zeros)
// and whose state word is empty or initializing (initialize writes
// initializing; every other byte of a file being made is zero or its
// final value).
func beingWritten(b []byte) bool {
	if len(b) < HeaderSize {
		return false
	}
	magic := b[offMagic : offMagic+len(Magic)]
	if string(magic) != Magic && !isZero(magic) {
		return false
	}
	// Each constant field holds its value or nothing yet, and the
	// reserved bytes nothing: another program's bytes seldom do.
	u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
	for _, f := range []struct {
		off  int
		want uint32
	}{{offVersion, Version}, {offHeaderSize, HeaderSize}, {offSlots, MaxSlots}} {
		if v := u32(f.off); v != 0 && v != f.want {
			return false
		}
	}
	st := State(u32(offState))
	return (st == StateEmpty || st == StateInitializing) && isZero(b[offReserved:HeaderSize])
}

// withoutMagic reports whether b is a whole header of ours but for its
// magic, still zero: what a build that stored the magic last (345c8e2 to
// 523a58d's parent) left when its initializer was killed between the two
// stores; this one writes the header in one write. The checksum, which
// covers the magic, must match with the magic put in: no other program's
// file does that. It returns the header.
func withoutMagic(b []byte) (header, bool) {
	if len(b) < HeaderSize || !isZero(b[offMagic:offMagic+len(Magic)]) {
		return header{}, false
	}
	var c [HeaderSize]byte
	copy(c[:], b)
	copy(c[offMagic:], Magic)
	h, err := parseHeader(c[:])
	return h, err == nil && h.state == StateInitializing
}

// lockByte takes a write lock on one byte with F_OFD_SETLK. It returns
// errLocked if another open file description holds it.
func lockByte(f *os.File, off int64) error { return setLock(f, off, unix.F_WRLCK) }

// lockByteShared takes a read lock on one byte (f may be read-only): it
// excludes write locks (an initializer), not other read locks.
func lockByteShared(f *os.File, off int64) error { return setLock(f, off, unix.F_RDLCK) }

func setLock(f *os.File, off int64, typ int16) error {
	lk := unix.Flock_t{Type: typ, Whence: 0, Start: off, Len: 1}
	err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return errLocked
	}
	if err != nil {
		return os.NewSyscallError("fcntl(F_OFD_SETLK)", err)
	}
	return nil
}

func unlockByte(f *os.File, off int64) error {
	lk := unix.Flock_t{Type: unix.F_UNLCK, Whence: 0, Start: off, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk); err != nil {
		return os.NewSyscallError("fcntl(F_OFD_SETLK)", err)
	}
	return nil
}

// byteLocked reports whether another open file description holds a lock on
// the byte. A lock held through f itself does not count (F_OFD_GETLK reports
// only conflicting locks).
func byteLocked(f *os.File, off int64) (bool, error) {
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: off, Len: 1}
	if err := unix.FcntlFlock(f.Fd(), unix.F_OFD_GETLK, &lk); err != nil {
		return false, os.NewSyscallError("fcntl(F_OFD_GETLK)", err)
	}
	return lk.Type != unix.F_UNLCK, nil
}

// lockByteContext polls lockByte until it succeeds or ctx is done. Polling
// (20µs doubling to 2ms) instead of F_OFD_SETLKW keeps the wait cancellable;
// the lock is held only while a segment is initialized, so waits are short.
func lockByteContext(ctx context.Context, f *os.File, off int64) error {
	return pollLock(ctx, func() error { return lockByte(f, off) })
}

// lockByteSharedContext is lockByteContext for a read lock.
func lockByteSharedContext(ctx context.Context, f *os.File, off int64) error {
	return pollLock(ctx, func() error { return lockByteShared(f, off) })
}

func pollLock(ctx context.Context, lock func() error) error {
	delay := 20 * time.Microsecond
	for {
		err := lock()
		if err != errLocked {
			return err
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		delay = min(2*delay, 2*time.Millisecond)
	}
}

// reserve gives f, whose header initialize just wrote, size bytes backed by
// allocated blocks, zeros after the header.
// fallocate, not a sparse ftruncate alone: on a full tmpfs a store into a
// sparse mapping is a SIGBUS, a failed fallocate is an error here.
func reserve(f *os.File, size int64) error {
	fd := int(f.Fd())
	err := unix.Fallocate(fd, 0, 0, size)
	if errors.Is(err, unix.EOPNOTSUPP) {
		// A file system without fallocate: the file is sparse, which
		// is the best it can do. Documented in doc.go.
		err = unix.Ftruncate(fd, size)
		if err != nil {
			return os.NewSyscallError("ftruncate", err)
		}
		return nil
	}
	if err != nil {
		return os.NewSyscallError("fallocate", err)
	}
	return nil
}

// backFile makes sure an existing file of size bytes has every block
// behind it: a file shmkit did not create itself (a sparse copy, a
// creator in another language that used ftruncate) may have holes, and on
// a full tmpfs the first store into a hole of the mapping is a SIGBUS,
// which kills a Go program. fallocate fills the holes or fails with
// ENOSPC here, and costs little where the blocks are there already. It
// keeps the size (FALLOC_FL_KEEP_SIZE) and changes no byte.
func backFile(f *os.File, size int64) error {
	err := unix.Fallocate(int(f.Fd()), unix.FALLOC_FL_KEEP_SIZE, 0, size)
	if err != nil && !errors.Is(err, unix.EOPNOTSUPP) {
		return os.NewSyscallError("fallocate", err)
	}
	return nil
}
