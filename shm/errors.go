package shm

import "errors"

// Errors returned by this package. Every error it returns wraps one of these
// (or an *fs.PathError / *os.SyscallError from the kernel) and names the
// segment's path, so callers test them with errors.Is.
var (
	// ErrInvalidName is returned when a segment name is empty, holds a NUL
	// byte, is "." or "..", or is a path with a ".." component.
	ErrInvalidName = errors.New("shm: invalid segment name")

	// ErrInvalidSize is returned when a requested data size is zero,
	// negative or larger than MaxDataSize.
	ErrInvalidSize = errors.New("shm: invalid segment size")

	// ErrInvalidTag is returned when a type tag is empty, longer than
	// MaxTagLen bytes, not UTF-8 or holds a NUL byte.
	ErrInvalidTag = errors.New("shm: invalid type tag")

	// ErrNotRegular is returned when the path names a directory, a symbolic
	// link, a FIFO, a device or anything else that is not a regular file.
	ErrNotRegular = errors.New("shm: not a regular file")

	// ErrWrongOwner is returned when the file belongs to another user. A
	// segment is shared between processes of one uid; remove or chown it.
	ErrWrongOwner = errors.New("shm: file owned by another user")

	// ErrTruncated is returned when the file is shorter than its header, or
	// shorter than the size its header records, or when a mapped segment
	// was truncated by someone else after it was opened.
	ErrTruncated = errors.New("shm: segment truncated")

	// ErrBadMagic is returned when the file does not start with Magic: it is
	// not a shmkit segment.
	ErrBadMagic = errors.New("shm: bad magic, not a shmkit segment")

	// ErrVersion is returned when the header's layout version is not one
	// this package reads (a newer shmkit wrote it, or it is garbage).
	ErrVersion = errors.New("shm: unsupported layout version")

	// ErrCorrupt is returned when the header is inconsistent: checksum
	// mismatch, unknown state, non-zero reserved bytes, impossible sizes.
	ErrCorrupt = errors.New("shm: corrupt segment header")

	// ErrTypeMismatch is returned when the segment's type tag is not the
	// one the caller asked for.
	ErrTypeMismatch = errors.New("shm: segment type mismatch")

	// ErrSizeMismatch is returned by OpenOrCreate when the existing segment's
	// data size differs from the requested one.
	ErrSizeMismatch = errors.New("shm: segment size mismatch")

	// ErrNotReady is returned by Open when the segment's initializer has not
	// finished (or died before it did). OpenOrCreate waits, or redoes the
	// initialization of a dead initializer.
	ErrNotReady = errors.New("shm: segment not initialized")

	// ErrOutOfRange is returned when a view's offset lies outside the data
	// region.
	ErrOutOfRange = errors.New("shm: offset out of range")

	// ErrMisaligned is returned when a view's offset is not a multiple of
	// the view's size.
	ErrMisaligned = errors.New("shm: misaligned offset")

	// ErrReplaced is returned by Segment.Check when the segment's name no
	// longer names the file this process mapped: it was removed, or
	// another file was renamed over it.
	ErrReplaced = errors.New("shm: segment name now names another file")

	// ErrBusy is returned by Remove when an initializer has held the
	// segment's init lock for longer than Remove waits (a second): a
	// process inside OpenOrCreate, stopped or slow. Remove again once it
	// is done, or gone; unlinking under it could remove a segment made
	// after this one.
	ErrBusy = errors.New("shm: an initializer holds the segment")

	// ErrPrivate is returned by Segment.Slot and Segment.Populate on a
	// handle of OpenPrivate: a private look claims nothing.
	ErrPrivate = errors.New("shm: a private look at a segment claims no slot")

	// ErrClosed is returned by operations on a closed Segment.
	ErrClosed = errors.New("shm: segment closed")

	// ErrNoSlot is returned by Segment.Slot when every process slot is
	// held by a live process.
	ErrNoSlot = errors.New("shm: no free process slot")

	// ErrNamespace is returned by Segment.Slot when a live process of
	// another PID namespace (another container) holds a slot of the
	// segment: process and thread ids, which the kernel's robust futexes
	// compare, mean something else there, so processes of two namespaces
	// never use one segment at once. Share the segment within one
	// namespace, or wait until the other namespace's processes closed it.
	ErrNamespace = errors.New("shm: segment in use by another PID namespace")
)
