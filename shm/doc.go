// Package shm maps shared-memory segments: files in /dev/shm (or anywhere)
// that start with a self-validating header and that many processes map at
// once.
//
// # Basics
//
// A segment has a name and a type tag. A bare name such as "tickets" is the
// file /dev/shm/shmkit.tickets; a name with a slash is a path used as given.
// The tag (e.g. "ticketshm.Counter/1") says what the data region holds, so a
// program never mistakes one kind of segment for another.
//
//	s, err := shm.OpenOrCreate(ctx, "tickets", 4096, "ticketshm.Counter/1", initFn)
//	remaining, err := s.Int64(0) // *atomic.Int64 in shared memory
//
// Create makes a segment and publishes it only once initialized (an unnamed
// O_TMPFILE file, linked into place). Open maps an existing, ready segment.
// OpenOrCreate does either: of many processes that call it at once exactly
// one runs init, under an OFD byte-range lock; the others wait for it. If
// the initializer is killed midway, the kernel drops its lock and the next
// caller truncates the file to zeros and runs init again (Segment.Inits
// counts the attempts). Remove deletes the file; Stat and List describe
// headers without mapping them.
//
// The data region is offered as bytes (Data) and as atomic views (Uint32,
// Int32, Uint64, Int64) at offsets checked for bounds and alignment, so that
// callers never do pointer arithmetic. Process slots (ClaimSlot, SlotAlive)
// tell which processes using a segment are alive; package semaphore builds
// on them.
//
// # Layout
//
// A segment file is a 128-byte header followed by the data region; the file
// is exactly 128+Size bytes. All integers are little-endian.
//
//	offset size field
//	     0    8 magic, the ASCII bytes "SHMKITSG"
//	     8    4 layout version, uint32, currently 1
//	    12    4 header size, uint32, 128
//	    16    8 total file size in bytes, uint64 (128 + data size)
//	    24    4 state, uint32: 0 empty, 1 initializing, 2 ready
//	    28    4 checksum: CRC-32C (Castagnoli) of bytes [0,24) and [32,96)
//	    32   64 type tag, UTF-8, NUL-padded, 1-64 bytes
//	    96    8 initializations begun, uint64 (not checksummed)
//	   104   24 reserved, zero
//	   128    - data region (64-byte aligned), Size bytes
//
// The state, the checksum and the init counter are outside the checksum
// because they change; every other header byte is fixed once written. A
// reader in another language checks magic, version, header size, checksum,
// that the file is as long as recorded, and waits for state 2 (read it with
// acquire ordering, as the initializer stores it with release ordering).
//
// Byte-range locks (OFD, fcntl F_OFD_SETLK) lie past the end of the file,
// where they do not change its size: byte 2^62 is the init lock, held while
// a segment is initialized; byte 2^62+4096+i is process slot i, held for as
// long as the process that claimed it keeps the segment open.
//
// # Errors
//
// Every malformed file gets a wrapped sentinel error naming the file, never
// a panic: ErrBadMagic (not a segment), ErrVersion (another layout),
// ErrCorrupt (inconsistent header), ErrTruncated (shorter than recorded),
// ErrTypeMismatch, ErrSizeMismatch, ErrNotReady, ErrNotRegular (symlink,
// directory, FIFO, device), ErrWrongOwner (another uid), ErrInvalidName,
// ErrInvalidSize, ErrInvalidTag. A malformed file is never changed: only a
// file of zeros (a creator died before writing the header) or one whose
// header says initializing, with the same tag, is re-initialized.
//
// # Caveats
//
// Linux only: on other systems every function returns an error wrapping
// errors.ErrUnsupported.
//
// Files are created 0600 and opened O_NOFOLLOW|O_CLOEXEC; a file owned by
// another uid is refused. A segment is for the processes of one user.
//
// Space is reserved with fallocate, so a full tmpfs fails the create with
// ENOSPC instead of raising SIGBUS at a later store. On a file system
// without fallocate the file is sparse and that protection is gone.
//
// A file truncated by someone else after it was mapped cannot be made safe
// by a check on open: touching the lost pages raises SIGBUS, which kills a
// Go program. Segment.Check detects the truncation; Segment.Guard runs a
// function with faults turned into ErrTruncated (debug.SetPanicOnFault), for
// callers that share segments with untrusted processes of the same uid.
//
// Views and Data must not be used after Close: the memory is unmapped and
// touching it faults.
package shm
