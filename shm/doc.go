// Package shm maps shared-memory segments: files in /dev/shm (or anywhere)
// that start with a self-validating header and that many processes map at
// once.
//
// # Basics
//
// A segment has a name and a type tag. A bare name such as "tickets" is the
// file /dev/shm/shmkit.tickets; a name with a slash is a path used as given.
// The tag (e.g. "myapp.Tickets/1": the package, the type and its layout
// version) says what the data region holds, so a program never mistakes one
// kind of segment for another.
//
//	s, err := shm.OpenOrCreate(ctx, "tickets", 4096, "myapp.Tickets/1", initFn)
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
// callers never do pointer arithmetic.
//
// A process maps a segment file once: every Open, OpenOrCreate or Create
// of a file this process has mapped returns a new handle on the same
// mapping, and the mapping goes with the last handle's Close.
//
// # Process slots
//
// Every segment has a table of MaxSlots process slots. A process that uses
// a segment claims one (Segment.Slot: the same one for every handle it
// opens) and keeps it until its last handle is closed or it dies, however
// it dies. Package semaphore builds its robust locks on them.
//
// A slot is an OFD write lock on one byte of the file, past its end: the
// kernel drops it with the last reference to the process's open file,
// which is after every thread of a dying process has stopped running. So
// a slot found free belongs to a process that will never write again.
// The reverse does not hold: another task can hold that reference a while
// longer (a reader of /proc/PID/maps holds a dead process's mappings, and
// their files, for milliseconds after its reaping), so Alive also asks
// whether the claimer's pid still names a process. A fork without exec
// (C through cgo, daemon(3)) shares the open file, and so the lock, but
// not the mapping, which is MADV_DONTFORK: it cannot write as the slot
// once Alive has called its parent dead. Children started by exec do not
// even share the file (it is opened O_CLOEXEC).
//
// A slot's index is reused; a Slot is not. Each claim stores the slot's
// generation plus one, and a Slot is the pair (index, generation), so a
// shared word that names a process by Slot can tell it from a later
// process in the same slot (Alive). Identity in shmkit is never a pid or a
// thread id alone: those are reused too, and mean something else in
// another PID namespace.
//
// PID namespaces: processes of two PID namespaces (two containers sharing
// /dev/shm) never hold slots of one segment at once; a claim while a
// process of another namespace holds one fails with ErrNamespace (after
// 100 ms: a pid of another namespace tells nothing, so a dead process's
// lingering lock is waited for). Claims
// take the attach lock (another byte lock), so two claimers in two
// namespaces cannot both pass the check.
//
// # Layout
//
// A segment file is a 128-byte header, a 4096-byte slot table and the data
// region; the file is exactly DataOffset (4224) + Size bytes. All integers
// are little-endian.
//
//	offset size field
//	     0    8 magic, the ASCII bytes "SHMKITSG"
//	     8    4 layout version, uint32, currently 2 (1 had no slot table)
//	    12    4 header size, uint32, 128
//	    16    8 total file size in bytes, uint64 (4224 + data size)
//	    24    4 state, uint32: 0 empty, 1 initializing, 2 ready
//	    28    4 checksum: CRC-32C (Castagnoli) of bytes [0,24), [32,96)
//	            and [104,128)
//	    32   64 type tag, UTF-8, NUL-padded, 1-64 bytes
//	    96    8 initializations begun, uint64 (not checksummed)
//	   104    4 slots in the table, uint32, 128
//	   108   20 reserved, zero
//	   128 4096 slot table: 128 entries of 32 bytes, entry i at 128+32i
//	            (not checksummed; written by claimers):
//	              +0  generation, uint64: claims of slot i so far (0 never)
//	              +8  pid of the last claimer, int32, in its PID namespace
//	              +12 1 once that claimer closed the segment, uint32
//	              +16 its PID namespace: inode of /proc/PID/ns/pid, uint64
//	              +24 when it claimed, CLOCK_REALTIME ns, int64
//	  4224    - data region (64-byte aligned), Size bytes
//
// The state, the checksum, the init counter and the slot table are outside
// the checksum because they change; every other header byte is fixed once
// written. A reader in another language checks magic, version, header
// size, slot count, checksum, that the file is as long as recorded, and
// waits for state 2 (read it with acquire ordering, as the initializer
// stores it with release ordering).
//
// Byte-range locks (OFD, fcntl F_OFD_SETLK) lie past the end of the file,
// where they do not change its size: byte 2^62 is the init lock, held while
// a segment is initialized; byte 2^62+1 the attach lock, held while a slot
// is claimed; byte 2^62+4096+i is process slot i. A claimer takes slot i's
// lock, writes entry i and stores the generation last.
//
// # Errors
//
// Every malformed file gets a wrapped sentinel error naming the file, never
// a panic: ErrBadMagic (not a segment), ErrVersion (another layout),
// ErrCorrupt (inconsistent header), ErrTruncated (shorter than recorded),
// ErrNoSlot, ErrNamespace,
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
// Views and Data are not to be used after their handle's Close, but a
// use that races the segment's last Close in the process never faults:
// that Close does not unmap the range, it maps anonymous zero pages over
// it (MAP_FIXED), so a call still in flight reads zeros, writes where no
// one reads, and gets ErrClosed at its next check. The range stays
// reserved, backed by nothing, until no handle on the segment is
// reachable; a cleanup unmaps it then (mapping.retire says why, and why
// not a guard per call). A view or a Data slice does not keep its handle
// reachable: keep the handle as long as you use them.
package shm
