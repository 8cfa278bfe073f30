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
	"path/filepath"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/edsrzf/mmap-go"
	"golang.org/x/sys/unix"
)

// InitFunc fills a new segment's data region, which it finds all zeros. It
// runs before any other process can use the segment. If it returns an error
// the segment stays uninitialized and the next OpenOrCreate runs an init
// again.
type InitFunc func(s *Segment) error

// Segment is a handle on a mapped shared-memory segment: a validated
// header, the process-slot table and a data region of Size bytes.
//
// A process maps each segment file once: every Open, OpenOrCreate or
// Create of the same file in one process returns a new handle on the same
// mapping, the same open file and the same process slot, and the mapping
// goes away when the last handle is closed. So a process is one user of a
// segment (one slot, one owner id for package semaphore) however many
// times it opens it.
//
// A Segment is safe for use by many goroutines; the data it maps is shared
// with every process that opened the same file, so access to it must go
// through atomic views or a lock (package semaphore). Views and slices
// obtained from a handle are not to be used after its Close; one that
// races the segment's last Close in this process (or comes after it)
// reads zeros and writes to memory no one shares, and never faults: the
// last Close retires the range rather than unmapping it (see Close).
type Segment struct {
	m      *mapping
	path   string // the name this handle was opened by
	closed atomic.Bool
	pinned bool // Pinned's handle: closed with the mapping, not by Close
}

// mapping is this process's one open file and mapping of a segment file,
// shared by every Segment handle on it.
type mapping struct {
	key  fileKey
	tag  string
	f    *os.File  // kept open: it carries the OFD lock of the process slot
	mem  mmap.MMap // the whole file, header and slot table included; page aligned
	data []byte    // mem[DataOffset:]
	refs int       // open handles; guarded by registry.mu
	// private: made by OpenPrivate, in no registry, claims no slot
	private bool

	mu      sync.Mutex // guards the fields below
	slot    Slot       // this process's slot, once claimed
	claimed bool
	hooks   []func() // run by the last Close before unmapping, last first
	pinned  *Segment // Pinned's handle, once asked for
	closing bool     // the last Close has begun: no more hooks or pins

	// fmu orders the file's users (the slot locks' fcntl calls) before
	// the last Close closes it: a call racing the Close must not reach
	// a descriptor number that another open has been given since.
	fmu     sync.RWMutex
	fclosed bool
}

// withFile runs fn on the open file, or fails with ErrClosed once the
// last Close closed it.
func (m *mapping) withFile(fn func(*os.File) error) error {
	m.fmu.RLock()
	defer m.fmu.RUnlock()
	if m.fclosed {
		return ErrClosed
	}
	return fn(m.f)
}

// closeFile closes the file once its users are done.
func (m *mapping) closeFile() error {
	m.fmu.Lock()
	defer m.fmu.Unlock()
	m.fclosed = true
	return m.f.Close()
}

// fileKey names a file on this host.
type fileKey struct{ dev, ino uint64 }

// registry holds the mappings of this process, one per file.
var registry struct {
	mu sync.Mutex
	m  map[fileKey]*mapping
}

// lookup returns a new handle on the mapping of key, if this process has
// the file mapped, after checking it against what the caller wants and
// against f, the caller's fresh open of the file: a file truncated under
// the mapping is ErrTruncated here as in Check.
func lookup(f *os.File, key fileKey, path, tag string, size int) (*Segment, bool, error) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	m := registry.m[key]
	if m == nil {
		return nil, false, nil
	}
	if err := m.check(tag, size); err != nil {
		return nil, true, err
	}
	if n, err := fileSize(f); err != nil {
		return nil, true, err
	} else if n < int64(len(m.mem)) {
		return nil, true, fmt.Errorf("%w: file is %d bytes, this process maps %d; recreate the segment", ErrTruncated, n, len(m.mem))
	}
	m.refs++
	return &Segment{m: m, path: path}, true, nil
}

// register makes m the mapping of its file in this process and returns a
// handle on it; if another goroutine mapped the file meanwhile, m is
// unmapped and the handle is on that mapping.
func register(m *mapping, path, tag string, size int) (*Segment, error) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if old := registry.m[m.key]; old != nil {
		m.unmap()
		m.f.Close()
		if err := old.check(tag, size); err != nil {
			return nil, err
		}
		old.refs++
		return &Segment{m: old, path: path}, nil
	}
	if registry.m == nil {
		registry.m = make(map[fileKey]*mapping)
	}
	registry.m[m.key] = m
	m.refs = 1
	return &Segment{m: m, path: path}, nil
}

// check compares a mapped segment with what an opener asks for.
func (m *mapping) check(tag string, size int) error {
	switch {
	case m.tag != tag:
		return fmt.Errorf("%w: segment holds %q, want %q", ErrTypeMismatch, m.tag, tag)
	case size != 0 && len(m.data) != size:
		return fmt.Errorf("%w: segment has %d data bytes, want %d; remove it to change its size", ErrSizeMismatch, len(m.data), size)
	}
	return nil
}

func keyOf(f *os.File) (fileKey, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileKey{}, os.NewSyscallError("fstat", err)
	}
	return fileKey{dev: st.Dev, ino: st.Ino}, nil
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
	registered := false
	defer func() {
		// On every failure, and on a panic of init, which goes on: the
		// unnamed file goes with its descriptor.
		if !registered {
			f.Close()
		}
	}()
	m, err := initialize(f, path, size, tag, 0, init)
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	proc := "/proc/self/fd/" + strconv.Itoa(fd)
	if err := unix.Linkat(unix.AT_FDCWD, proc, unix.AT_FDCWD, path, unix.AT_SYMLINK_FOLLOW); err != nil {
		m.unmap()
		return nil, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	registered = true // register owns f from here
	s, err := register(m, path, tag, size)
	if err != nil {
		return nil, &fs.PathError{Op: "create", Path: path, Err: err}
	}
	return s, nil
}

// Open maps an existing, initialized segment whose type tag is tag. It
// validates the header (ErrBadMagic, ErrVersion, ErrCorrupt, ErrTruncated,
// ErrTypeMismatch) and fails with ErrNotReady if the segment's initializer
// has not finished or died before it did; OpenOrCreate waits for, or redoes,
// such an initialization. A segment this process has open already is not
// read again: the new handle shares its mapping.
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
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
	return s, nil
}

// OpenOrCreate opens the segment, creating and initializing it if needed.
// init runs under the segment's init lock: it must not open or remove the
// segment it initializes (an OpenOrCreate of it waits for the lock, until
// its ctx is done; a Remove fails with ErrBusy after a second).
// Of many processes that call it at once, exactly one runs init and the
// others wait until the segment is ready. If an initializer died, the next
// caller truncates the segment to zeros and runs its own init. An
// initialization that fails (init returns an error or panics, no room,
// no memory to map it) removes the file it was making: a segment never
// ready holds nothing anyone could lose, and the callers waiting for it
// find the name gone and start over.
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
			continue // the file was removed or replaced while we waited
		}
		if err != nil {
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

// openOrInit runs under the init lock; it owns f, which it closes unless a
// handle keeps it. replaced reports that path no longer names the file f,
// so the caller must start over.
func openOrInit(ctx context.Context, f *os.File, path string, size int, tag string, init InitFunc) (s *Segment, replaced bool, err error) {
	key, err := keyOf(f)
	if err != nil {
		f.Close()
		return nil, false, err
	}
	if s, ok, err := lookup(f, key, path, tag, size); ok {
		f.Close() // mapped already: ready, and checked when it was mapped
		return s, false, err
	}
	if err := lockByteContext(ctx, f, initLockOffset); err != nil {
		f.Close()
		return nil, false, err
	}
	var m *mapping
	var ready header // a ready segment's, for the map after the lock
	finished := false
	defer func() {
		if !finished {
			// init panicked, or called runtime.Goexit (a t.Fatal in a
			// test's init): both go on once this returns. Remove the
			// file it was making, as a failed init does.
			unlinkNeverReady(f, path)
			unlockByte(f, initLockOffset)
			f.Close()
			return
		}
		uerr := unlockByte(f, initLockOffset)
		if uerr != nil && err == nil {
			err = uerr
		}
		if err == nil && !replaced && m == nil {
			// Ready: mapped after the lock, which only initializers
			// need. Backing a big file's blocks (mapReady's fallocate)
			// takes seconds for gigabytes, and held a Remove up.
			if readyMapHook != nil {
				readyMapHook()
			}
			var n int64
			if n, err = fileSize(f); err == nil {
				m, err = mapReady(f, key, ready, n, size, tag)
			}
		}
		if err != nil || replaced {
			if m != nil {
				m.unmap()
			}
			f.Close()
			return
		}
		s, err = register(m, path, tag, size)
	}()
	m, ready, replaced, err = initOrMap(f, path, size, tag, init)
	finished = true
	return nil, replaced, err
}

// initOrMap is openOrInit's work under the init lock: it returns the
// header of a ready segment, for openOrInit to map, or initializes the
// segment if it never was or its initializer died. An initialization
// that fails removes the file (unlinkNeverReady).
func initOrMap(f *os.File, path string, size int, tag string, init InitFunc) (m *mapping, ready header, replaced bool, err error) {
	var st, pst unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return nil, header{}, false, os.NewSyscallError("fstat", err)
	}
	if err := unix.Lstat(path, &pst); err != nil || pst.Ino != st.Ino || pst.Dev != st.Dev {
		return nil, header{}, true, nil
	}
	buf, err := readHeader(f, st.Size)
	if err != nil {
		return nil, header{}, false, err
	}
	h, err := parseHeader(buf)
	if wh, ok := withoutMagic(buf); err != nil && ok {
		// Its initializer (of a build that stored the magic last) died
		// before the magic: a header being made, to redo.
		h, err = wh, nil
	}
	prevInits := uint64(0)
	switch {
	case errors.Is(err, ErrNotReady):
		// Nothing, or zeros: created, never initialized (the creator
		// died first; an older shmkit reserved the space before it
		// wrote the header). A header of zeros in front of data is
		// another program's file: not ours to overwrite.
		if zero, zerr := allZero(f, st.Size); zerr != nil || !zero {
			if zerr != nil {
				return nil, header{}, false, zerr
			}
			return nil, header{}, false, fmt.Errorf("%w: its first %d bytes are zero and it holds data after them: another program's file", ErrBadMagic, HeaderSize)
		}
	case err != nil:
		return nil, header{}, false, err
	case h.tag != tag:
		return nil, header{}, false, fmt.Errorf("%w: segment holds %q, want %q", ErrTypeMismatch, h.tag, tag)
	case h.state == StateInitializing:
		// The init lock is ours, so the initializer that wrote this
		// state is gone: redo its work from zeros.
		prevInits = h.inits
	default:
		return nil, h, false, nil
	}
	if m, err = initialize(f, path, size, tag, prevInits, init); err != nil {
		unlinkNeverReady(f, path)
	}
	return m, header{}, false, err
}

// allZero reports whether the file f, of size bytes, holds only zeros:
// it stops at the first byte that is not.
func allZero(f *os.File, size int64) (bool, error) {
	buf := make([]byte, min(size, 1<<20))
	for off := int64(0); off < size; off += int64(len(buf)) {
		n, err := f.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if !isZero(buf[:n]) {
			return false, nil
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				return true, nil // shorter now: its zeros are all read
			}
			return false, err
		}
	}
	return true, nil
}

// unlinkNeverReady removes the file f at path, if path still names it,
// after initializing it failed: its space could not be reserved (ENOSPC,
// EDQUOT), it could not be mapped (ENOMEM), or init returned an error,
// panicked or called runtime.Goexit. A segment that was never ready holds
// nothing to keep, and a full /dev/shm must not be left fuller. It runs
// under f's init lock, so no other initializer works on f and no process
// has mapped it ready; an opener waiting for the lock finds the name gone
// and starts over with a new file.
//
// Between its look at the name and the unlink, the name must not come to
// name another file: a Remove of f and an OpenOrCreate that makes a new
// file there would have this unlink remove a segment other processes
// use, and split them from the next ones. Remove takes f's init lock
// before it unlinks f, and we hold it: Remove waits, or fails with
// ErrBusy. (A remover outside shmkit, rm(1), takes no lock: against it
// the window is the few instructions between the Lstat and the unlink.)
func unlinkNeverReady(f *os.File, path string) {
	var st, pst unix.Stat_t
	if unix.Fstat(int(f.Fd()), &st) == nil && st.Nlink > 0 &&
		unix.Lstat(path, &pst) == nil && st.Ino == pst.Ino && st.Dev == pst.Dev {
		if unlinkHook != nil {
			unlinkHook()
		}
		unix.Unlink(path)
	}
}

// readyMapHook, when set (tests only), runs in openOrInit before it maps
// a ready segment, the init lock released.
var readyMapHook func()

// unlinkHook, when set (tests only), runs in unlinkNeverReady between
// its look at the name and the unlink.
var unlinkHook func()

// openReady validates the header of an already opened file and maps it,
// or shares this process's mapping of it. It owns f.
func openReady(f *os.File, path string, size int, tag string) (*Segment, error) {
	key, err := keyOf(f)
	if err != nil {
		f.Close()
		return nil, err
	}
	if s, ok, err := lookup(f, key, path, tag, size); ok {
		f.Close()
		return s, err
	}
	m, err := func() (*mapping, error) {
		n, err := fileSize(f)
		if err != nil {
			return nil, err
		}
		_, h, n, err := readParsed(f, n)
		if err != nil {
			return nil, err
		}
		if h.state != StateReady {
			return nil, fmt.Errorf("%w: state %v: its initializer is running or died; OpenOrCreate waits for it or redoes it", ErrNotReady, h.state)
		}
		return mapReady(f, key, h, n, size, tag)
	}()
	if err != nil {
		f.Close()
		return nil, err
	}
	return register(m, path, tag, size)
}

// mapReady checks a ready header against the file and the caller's wishes,
// then maps the file.
func mapReady(f *os.File, key fileKey, h header, fileSize int64, size int, tag string) (*mapping, error) {
	switch {
	case uint64(fileSize) < h.totalSize:
		return nil, fmt.Errorf("%w: file is %d bytes, its header says %d", ErrTruncated, fileSize, h.totalSize)
	case uint64(fileSize) > h.totalSize:
		return nil, fmt.Errorf("%w: file is %d bytes, its header says %d", ErrCorrupt, fileSize, h.totalSize)
	case h.tag != tag:
		return nil, fmt.Errorf("%w: segment holds %q, want %q", ErrTypeMismatch, h.tag, tag)
	case size != 0 && h.dataSize() != uint64(size):
		return nil, fmt.Errorf("%w: segment has %d data bytes, want %d; remove it to change its size", ErrSizeMismatch, h.dataSize(), size)
	}
	if err := backFile(f, int64(h.totalSize)); err != nil {
		return nil, err
	}
	m, err := mapFile(f, key, tag, int(h.totalSize))
	if err != nil {
		return nil, err
	}
	// Acquire the initializer's stores: the state read by pread above
	// says nothing about memory order on weakly ordered CPUs.
	if st := State(m.stateWord().Load()); st != StateReady {
		m.unmap()
		return nil, fmt.Errorf("%w: state changed to %v while opening", ErrCorrupt, st)
	}
	return m, nil
}

// initialize lays a fresh segment into f: zeros, header, init, ready. The
// mapping it returns is not registered yet; f stays the caller's.
func initialize(f *os.File, path string, size int, tag string, prevInits uint64, init InitFunc) (*mapping, error) {
	total := DataOffset + size
	// The header first, into an empty file, in one write: a process
	// killed at any instruction leaves nothing, or the whole header
	// (state initializing, which the next OpenOrCreate redoes), never a
	// part of it; and no file of shmkit's has a header of zeros and data
	// after it. Then the rest of the file's space, reserved behind it. An
	// Open that reads the header while it is written (pread runs beside
	// the write) finds the init lock held (readParsed).
	h := header{totalSize: uint64(total), state: StateInitializing, tag: tag, inits: prevInits + 1}
	var hb [HeaderSize]byte
	h.encode(hb[:])
	if err := unix.Ftruncate(int(f.Fd()), 0); err != nil {
		return nil, os.NewSyscallError("ftruncate", err)
	}
	if _, err := f.WriteAt(hb[:], 0); err != nil {
		return nil, err
	}
	if err := reserve(f, int64(total)); err != nil {
		return nil, err
	}
	key, err := keyOf(f)
	if err != nil {
		return nil, err
	}
	m, err := mapFile(f, key, tag, total)
	if err != nil {
		return nil, err
	}
	if init != nil {
		// The init function gets a handle of its own on the mapping,
		// closed (not unmapping anything) when it returns.
		s := &Segment{m: m, path: path}
		err := func() (err error) {
			returned := false
			defer func() {
				s.closed.Store(true)
				if !returned {
					// init panicked or called runtime.Goexit, which
					// go on: the caller removes the file
					// (unlinkNeverReady), or drops it (Create).
					m.unmap()
				}
			}()
			err = init(s)
			returned = true
			return err
		}()
		if err != nil {
			m.unmap()
			return nil, fmt.Errorf("init: %w", err)
		}
	}
	m.stateWord().Store(uint32(StateReady))
	return m, nil
}

func mapFile(f *os.File, key fileKey, tag string, total int) (*mapping, error) {
	mem, err := mmap.MapRegion(f, total, mmap.RDWR, 0, 0)
	if err != nil {
		return nil, os.NewSyscallError("mmap", err)
	}
	// A fork without exec (C through cgo, daemon(3)) shares this
	// process's open file, so its slot lock, but not the mapping: once
	// this process is reaped, Alive calls the slot dead (its pid is
	// gone), and the fork must not be able to write as it.
	if err := unix.Madvise(mem, unix.MADV_DONTFORK); err != nil {
		mem.Unmap()
		return nil, os.NewSyscallError("madvise(MADV_DONTFORK)", err)
	}
	return &mapping{key: key, tag: tag, f: f, mem: mem, data: mem[DataOffset:total:total]}, nil
}

// stateWord is the header's state as an atomic. The mapping is page
// aligned and offState is 4-aligned, so the conversion is sound.
func (m *mapping) stateWord() *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&m.mem[offState]))
}

// unmap releases the mapping but leaves f open (the caller owns it).
// Only for a mapping no handle has been given yet.
func (m *mapping) unmap() { m.mem.Unmap() }

// retire ends a mapping handles were given: it maps anonymous zero pages
// over the file's, at the same addresses, instead of unmapping them.
//
// Why not munmap: a method on another handle (a Mutex, a Semaphore, a
// view) may have passed its closed check just before the last Close and
// still be about to touch the memory. Unmapped, that touch is a SIGSEGV,
// which kills a Go program; retired, it reads zeros and writes into
// memory nobody reads, and its caller gets ErrClosed at its next check
// (a waiter at its next wake-up). Guarding every call instead would cost
// an atomic read-modify-write on a lock whose fast path is 4-8 ns.
//
// How long: until no handle can be in a call on it. A call in flight
// holds its handle (a Segment, or a Mutex, Semaphore, Queue or Counter
// holding one), and every handle holds the mapping; so once the mapping
// is unreachable, no call can touch the range, and a cleanup
// (runtime.AddCleanup) unmaps it. Meanwhile the range is reserved in this
// process and backed by nothing until a racing write touches a page.
// A process that closes many segments whose handles it keeps would pile
// ranges up; past retiredNudge of them (or of their bytes) retire asks
// the garbage collector to run, so that those no longer held go.
func (m *mapping) retire() error {
	// Sound: &m.mem[0] and len(m.mem) are exactly a mapping this package
	// made (MapRegion), which holds no Go objects; MAP_FIXED replaces that
	// range and nothing else, atomically for any thread touching it.
	addr, n := unsafe.Pointer(&m.mem[0]), uintptr(len(m.mem))
	_, err := unix.MmapPtr(-1, 0, addr, n, unix.PROT_READ|unix.PROT_WRITE,
		unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED|unix.MAP_NORESERVE)
	if err != nil {
		// Out of mappings (ENOMEM): unmap as before the retirement
		// existed; a call racing the Close (a misuse) can then fault.
		return m.mem.Unmap()
	}
	r := retiredRange{addr: uintptr(addr), n: n}
	runtime.AddCleanup(m, unmapRetired, r)
	if c, b := retired.count.Add(1), retired.bytes.Add(int64(n)); c > retiredNudge || b > retiredNudgeBytes {
		runtime.GC()
	}
	return nil
}

// retiredRange is a retired mapping's address range, as numbers: the
// cleanup must not hold the mapping it waits for.
type retiredRange struct{ addr, n uintptr }

// retired counts the ranges retired and not yet unmapped.
var retired struct{ count, bytes atomic.Int64 }

const (
	retiredNudge      = 1024
	retiredNudgeBytes = 1 << 36 // 64 GiB of address space
)

func unmapRetired(r retiredRange) {
	// Sound: r is a range retire mapped; its mapping, the only way to
	// reach it, is unreachable, so no Go code can touch it again.
	unix.Syscall(unix.SYS_MUNMAP, r.addr, r.n, 0)
	retired.count.Add(-1)
	retired.bytes.Add(-int64(r.n))
}

// dead reports whether s is closed or a zero Segment: either way there is
// no memory behind it for this handle.
func (s *Segment) dead() bool { return s.m == nil || s.closed.Load() }

// errClosed is the error of a call on a closed (or zero) handle.
func (s *Segment) errClosed() error {
	if s.m == nil {
		return fmt.Errorf("shm: a zero Segment (make one with Open, OpenOrCreate or Create): %w", ErrClosed)
	}
	return fmt.Errorf("%s: %w", s.path, ErrClosed)
}

// Close closes this handle. When it is the last open handle on its
// segment in this process, the registered OnClose hooks run, the segment
// is unmapped (retired: zero pages take its place, so that calls racing
// the Close never fault) and its file closed, which releases this
// process's slot.
// The segment's file stays; Remove deletes it. Close after Close returns
// ErrClosed.
func (s *Segment) Close() error {
	if s.pinned {
		return fmt.Errorf("%s: shm: Close of a Pinned handle: it closes with the segment's last handle", s.path)
	}
	if s.m == nil || !s.closed.CompareAndSwap(false, true) {
		return s.errClosed()
	}
	m := s.m
	if m.private {
		return s.closePrivate()
	}
	registry.mu.Lock()
	m.refs--
	last := m.refs == 0
	if last {
		delete(registry.m, m.key)
	}
	registry.mu.Unlock()
	if !last {
		return nil
	}
	m.mu.Lock()
	m.closing = true
	hooks := m.hooks
	m.hooks = nil
	if m.claimed {
		m.slotEntry(m.slot.Index).closed.Store(1) // a clean exit, for the tools
	}
	pinned := m.pinned
	m.mu.Unlock()
	for i := len(hooks) - 1; i >= 0; i-- {
		hooks[i]()
	}
	if pinned != nil {
		pinned.closed.Store(true)
	}
	err := m.retire()
	if cerr := m.closeFile(); err == nil {
		err = cerr
	}
	return err
}

// OnClose registers fn to run when the last handle on this segment in this
// process is closed, before the memory is unmapped; hooks run last
// registered first. Packages that give the kernel addresses inside a
// segment (robust futex lists) use it to take them back. It fails with
// ErrClosed, registering nothing, once that Close has begun: fn would
// never run.
func (s *Segment) OnClose(fn func()) error {
	if s.m == nil {
		return s.errClosed()
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.closing {
		return s.errClosed()
	}
	s.m.hooks = append(s.m.hooks, fn)
	return nil
}

// Pinned returns a handle on this process's mapping of the segment that
// stays open as long as the mapping does, without keeping it open: it is
// closed right after the OnClose hooks run, and its own Close is an error.
// Packages that keep state per mapping (package semaphore's process slot
// and robust list) hold it, and drop it in an OnClose hook.
func (s *Segment) Pinned() *Segment {
	if s.m == nil {
		return s
	}
	s.m.mu.Lock()
	defer s.m.mu.Unlock()
	if s.m.pinned == nil {
		s.m.pinned = &Segment{m: s.m, path: s.path, pinned: true}
		// Asked for during the last Close: born closed, as it would
		// have been closed by it.
		s.m.pinned.closed.Store(s.m.closing)
	}
	return s.m.pinned
}

// Path is the segment's file, as this handle named it.
func (s *Segment) Path() string { return s.path }

// Tag is the segment's type tag.
func (s *Segment) Tag() string {
	if s.m == nil {
		return ""
	}
	return s.m.tag
}

// Size is the size of the data region in bytes.
func (s *Segment) Size() int {
	if s.m == nil {
		return 0
	}
	return len(s.m.data)
}

// Data is the data region, nil once s is closed. Plain reads and writes of
// it race with other processes; use the atomic views or a lock. A slice
// (or view) taken before Close is not to be used after: once the
// segment's last handle in this process is closed it holds zeros that no
// other process sees (retired, not unmapped, so that it never faults).
func (s *Segment) Data() []byte {
	if s.dead() {
		return nil
	}
	return s.m.data
}

// Inits is how many times an initialization of this segment has begun: 1
// unless an initializer died or failed and a later opener redid it. 0 on
// a closed handle.
func (s *Segment) Inits() uint64 {
	if s.dead() {
		return 0
	}
	return binary.LittleEndian.Uint64(s.m.mem[offInits:])
}

// File is the segment's open file, shared by every handle on the segment
// in this process. It is owned by the Segment: do not close it, do not
// take or release byte-range locks through it at or above 2^62 (the init,
// attach and slot locks live there), and do not hand a copy of it to
// another process (dup into a child, SCM_RIGHTS): the copy holds this
// process's slot lock for as long as it is open.
func (s *Segment) File() *os.File {
	if s.dead() {
		return nil
	}
	return s.m.f
}

// Remove deletes the segment's file. Processes that have it open keep their
// mapping; new opens will not find it. Remove refuses anything but a
// regular file (ErrNotRegular) and reports a missing one as fs.ErrNotExist.
//
// It takes the file's init lock (shared) before it unlinks it, waiting up
// to removeWait for an initialization in progress, and fails with ErrBusy
// after that: an initializer whose init failed removes the file it was
// making, and must not find the name taken by a new segment in between
// (unlinkNeverReady). A file this process cannot open (another uid's) is
// unlinked without the lock, if the directory lets it.
func Remove(name string) error {
	path, err := Path(name)
	if err != nil {
		return err
	}
	fail := func(err error) error { return &fs.PathError{Op: "remove", Path: path, Err: err} }
	for range 10 {
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			return fail(err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFREG {
			return fail(fmt.Errorf("%w: file type %s", ErrNotRegular, fileType(st.Mode)))
		}
		done, err := removeLocked(path, st)
		if done {
			if err != nil {
				return fail(err)
			}
			return nil
		}
	}
	// The name named another file at each look: someone makes and
	// removes it in a loop.
	return fail(fmt.Errorf("%w: it named another file at each of 10 looks", ErrBusy))
}

// removeWait bounds how long Remove waits for an initialization in
// progress: one stopped (SIGSTOP) must not hold a Remove for ever.
const removeWait = time.Second

// removeLocked unlinks path, which Lstat found as st, under the file's
// init lock. done is false if path came to name another file meanwhile:
// look again.
func removeLocked(path string, st unix.Stat_t) (done bool, err error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return false, nil
	case errors.Is(err, unix.ELOOP):
		return false, nil // a symbolic link now: Lstat refuses it
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		// Not ours to read; perhaps ours to unlink (the directory
		// says). No lock to take: no initializer of ours works on a
		// file we cannot open.
		return true, unix.Unlink(path)
	case err != nil:
		return true, os.NewSyscallError("open", err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	ctx, cancel := context.WithTimeout(context.Background(), removeWait)
	defer cancel()
	if err := lockByteSharedContext(ctx, f, initLockOffset); err != nil {
		if ctx.Err() != nil {
			return true, fmt.Errorf("%w: its init lock is held after %v (a process inside OpenOrCreate, stopped or slow)", ErrBusy, removeWait)
		}
		return true, err
	}
	defer unlockByte(f, initLockOffset)
	var fst, pst unix.Stat_t
	if unix.Fstat(fd, &fst) != nil || fst.Ino != st.Ino || fst.Dev != st.Dev ||
		unix.Lstat(path, &pst) != nil || pst.Ino != st.Ino || pst.Dev != st.Dev {
		return false, nil
	}
	return true, unix.Unlink(path)
}

// Populate maps every page of the segment into this process ahead of use
// (madvise MADV_POPULATE_WRITE, Linux 5.14), so that first writes to
// untouched pages do not each take a page fault; it changes no data. A
// benchmark calls it before its clock starts. On an older kernel it
// returns an error and nothing else happens.
func (s *Segment) Populate() error {
	if s.dead() {
		return s.errClosed()
	}
	if s.m.private {
		return fmt.Errorf("%s: %w", s.path, ErrPrivate) // it would copy every page
	}
	if err := unix.Madvise(s.m.mem, unix.MADV_POPULATE_WRITE); err != nil {
		return fmt.Errorf("%s: %w", s.path, os.NewSyscallError("madvise", err))
	}
	return nil
}
