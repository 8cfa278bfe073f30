//go:build linux

package jsonfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/ticketshm"
	"golang.org/x/sys/unix"
)

// maxReopens bounds how many times in a row a store follows its path to a
// new file before it gives up: a name renamed over again and again, faster
// than a buy, is someone else's loop, not a sale.
const maxReopens = 100

// Reset makes the db file at path hold {"count": count}, whether it exists
// or not (the notes' json.dump(dic, open("db.txt", "w"))).
//
// An existing file is reset in place, under its flock(LOCK_EX): the same
// inode, so stores that have it open sell from the new count; its mode and
// owner are kept; space for a longer count is reserved first, so a full
// disk fails the reset (ENOSPC) and leaves the old count. A missing file
// is written to a temporary name and renamed into place (mode 0666 less
// the umask, as Python's open), so no reader ever sees it half written.
func Reset(path string, count int64) error {
	if count < 0 {
		return fmt.Errorf("jsonfile: create %s: negative count %d", path, count)
	}
	for range maxReopens {
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if errors.Is(err, fs.ErrNotExist) {
			err = createNew(path, count)
			if err != nil {
				return fmt.Errorf("jsonfile: create %s: %w", path, err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("jsonfile: create %s: %w", path, err)
		}
		again, err := reset(f, path, count)
		f.Close()
		if err != nil {
			return fmt.Errorf("jsonfile: create %s: %w", path, err)
		}
		if !again {
			return nil
		}
	}
	return fmt.Errorf("jsonfile: create %s: the name was replaced %d times while resetting it", path, maxReopens)
}

// createNew writes a new db file under a temporary name and renames it to
// path.
func createNew(path string, count int64) error {
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+"."+strconv.Itoa(os.Getpid())+"."+strconv.FormatInt(time.Now().UnixNano(), 36)+".tmp")
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o666)
	if err != nil {
		return err
	}
	_, err = f.Write(appendCount(nil, count))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// reset rewrites f, which path named when it was opened, to hold count. It
// reports again when path names another file by the time f is locked.
func reset(f *os.File, path string, count int64) (again bool, err error) {
	fd := int(f.Fd())
	if err := flock(fd, unix.LOCK_EX); err != nil {
		return false, err
	}
	defer flock(fd, unix.LOCK_UN)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false, os.NewSyscallError("fstat", err)
	}
	if same, err := names(path, &st); err != nil || !same {
		return err == nil, err
	}
	content := appendCount(nil, count)
	size := int(st.Size)
	if len(content) > size {
		// Reserve the longer file's blocks before writing a byte: if
		// the disk is full, the old count stays.
		if err := fallocate(fd, int64(len(content))); err != nil {
			return false, err
		}
	}
	// One write of the new object padded with spaces to the old length:
	// at every moment the file is the old object or the new one (for a
	// file of up to a page: the kernel copies a page at a time).
	for len(content) < size {
		content = append(content, ' ')
	}
	if _, err := f.WriteAt(content, 0); err != nil {
		return false, err
	}
	// The reset is done: the padded file is the new count, valid JSON.
	// Trimming the padding is tidiness, and its failure (EIO, a fault
	// injected) must not report a reset that happened as failed.
	_ = f.Truncate(int64(len(appendCount(nil, count))))
	return false, nil
}

// fallocate reserves the file's blocks up to size without changing its
// size.
func fallocate(fd int, size int64) error {
	for {
		err := unix.Fallocate(fd, unix.FALLOC_FL_KEEP_SIZE, 0, size)
		if err != unix.EINTR {
			if err != nil {
				return os.NewSyscallError("fallocate", err)
			}
			return nil
		}
	}
}

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if err != unix.EINTR {
			if err != nil {
				return os.NewSyscallError("flock", err)
			}
			return nil
		}
	}
}

// names reports whether path names the file st describes.
func names(path string, st *unix.Stat_t) (bool, error) {
	var now unix.Stat_t
	if err := unix.Stat(path, &now); err != nil {
		return false, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	return now.Dev == st.Dev && now.Ino == st.Ino, nil
}

// file is what both stores share: the open db file, its identity, a
// buffer, and the mutex that makes a store safe for concurrent use.
type file struct {
	path string

	mu   sync.Mutex
	f    *os.File // nil once closed
	st   unix.Stat_t
	buf  []byte // reused for every read and write: no allocation per buy
	torn atomic.Int64
}

func (s *file) open(path string) error {
	s.path, s.buf = path, make([]byte, 0, 64)
	return s.openFile()
}

func (s *file) openFile() error {
	f, err := os.OpenFile(s.path, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("jsonfile: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		f.Close()
		return fmt.Errorf("jsonfile: %s: %w", s.path, os.NewSyscallError("fstat", err))
	}
	s.f, s.st = f, st
	return nil
}

func (s *file) fd() int { return int(s.f.Fd()) }

// begin locks the store for one call: it fails once the store is closed.
func (s *file) begin(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.Lock()
	if s.f == nil {
		s.mu.Unlock()
		return fmt.Errorf("jsonfile: %s: %w", s.path, ticketshm.ErrClosed)
	}
	return nil
}

// follow makes s.f the file s.path names now: a db file renamed over (an
// editor's save, a reset by another program) is reopened, so the sale
// goes on in the file everyone else sees. For the FlockStore (how is
// LOCK_SH or LOCK_EX) the check is made under the flock, which follow
// leaves held: the name cannot then move to a file whose writers that lock
// excludes. For the UnlockedStore how is 0: no lock.
func (s *file) follow(how int) error {
	for range maxReopens {
		if how != 0 {
			if err := flock(s.fd(), how); err != nil {
				return err
			}
		}
		same, err := names(s.path, &s.st)
		if same && err == nil {
			return nil
		}
		if how != 0 {
			flock(s.fd(), unix.LOCK_UN)
		}
		if err != nil {
			return fmt.Errorf("jsonfile: %w", err)
		}
		old := s.f
		if err := s.openFile(); err != nil {
			return err
		}
		old.Close()
	}
	return fmt.Errorf("jsonfile: %s: the name was replaced %d times in a row", s.path, maxReopens)
}

// read returns the count in the file.
func (s *file) read() (count, error) {
	s.buf = s.buf[:cap(s.buf)]
	for {
		n, err := s.f.ReadAt(s.buf, 0)
		if err == io.EOF || (err == nil && n < len(s.buf)) {
			s.buf = s.buf[:n]
			c, perr := parseCount(s.buf)
			if perr != nil {
				return count{}, fmt.Errorf("%s: %w", s.path, perr)
			}
			return c, nil
		}
		if err != nil {
			return count{}, fmt.Errorf("jsonfile: %w", err)
		}
		if len(s.buf) >= 1<<20 {
			return count{}, fmt.Errorf("%s: %w: file larger than 1 MiB", s.path, ErrFormat)
		}
		s.buf = make([]byte, 2*len(s.buf)) // file longer than the buffer
	}
}

func (s *file) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.f == nil {
		return fmt.Errorf("jsonfile: %s: %w", s.path, ticketshm.ErrClosed)
	}
	err := s.f.Close()
	s.f = nil
	return err
}

// FlockStore is the course notes' store with its lock: flock(LOCK_EX)
// around the read-modify-write of the db file. It is a ticketshm.Store,
// safe for concurrent use (calls from one store take turns; flock alone
// would not separate them, as it locks per open file).
//
// Where the notes' open('w') truncates the file and writes it again, a
// buy overwrites only the count's digits, in place: the file is never
// empty, never needs a new block, and a failed write (a full disk, EIO)
// leaves the old count. Every other key of the object stays as it was.
type FlockStore struct{ file }

var _ ticketshm.Store = (*FlockStore)(nil)

// OpenFlock opens the db file at path, which Reset made. It fails with an error
// matching fs.ErrNotExist if there is none.
func OpenFlock(path string) (*FlockStore, error) {
	s := new(FlockStore)
	if err := s.open(path); err != nil {
		return nil, err
	}
	return s, nil
}

func (s *FlockStore) unlock() error { return flock(s.fd(), unix.LOCK_UN) }

// formatError makes a parse failure under the lock what it is: permanent.
// No writer holds the lock half way through, so a file that does not parse
// now never will by waiting (ErrTorn would invite a retry forever).
func formatError(err error) error {
	if errors.Is(err, ErrTorn) {
		return fmt.Errorf("%w (under flock, so no writer is half way: %v)", ErrFormat, err)
	}
	return err
}

// Remaining reads the count under a shared lock: readers run in parallel,
// and never see a buyer's half-written file. ctx is checked first; the
// flock itself cannot be interrupted.
func (s *FlockStore) Remaining(ctx context.Context) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if err := s.follow(unix.LOCK_SH); err != nil {
		return 0, err
	}
	defer s.unlock()
	c, err := s.read()
	return c.n, formatError(err)
}

// Buy reads the count, decrements it in place and returns the count it saw
// as the ticket number, or ticketshm.ErrSoldOut, all under an exclusive
// lock. A file that does not hold {"count": N} is ErrFormat.
func (s *FlockStore) Buy(ctx context.Context) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if err := s.follow(unix.LOCK_EX); err != nil {
		return 0, err
	}
	defer s.unlock()
	c, err := s.read()
	if err != nil {
		return 0, formatError(err)
	}
	if c.n == 0 {
		return 0, fmt.Errorf("%s: %w", s.path, ticketshm.ErrSoldOut)
	}
	// n-1 in the place of n's digits, right-aligned: one pwrite of a few
	// bytes inside the file's existing blocks.
	s.buf = appendPadded(s.buf[:0], c.n-1, c.end-c.start)
	if _, err := s.f.WriteAt(s.buf, int64(c.start)); err != nil {
		return 0, fmt.Errorf("jsonfile: %w", err)
	}
	return c.n, nil
}

// Close closes the file; later calls return an error wrapping
// ticketshm.ErrClosed.
func (s *FlockStore) Close() error { return s.close() }

// UnlockedStore is the course notes' store without a lock: wrong on
// purpose, to be watched. It writes as the notes' open('w') + json.dump
// do: truncate, then write, so a reader in between finds an empty file.
// It is a ticketshm.Store, safe for concurrent use (calls from one store
// take turns; stores race each other, which is the point).
type UnlockedStore struct {
	file

	tornInARow int       // torn reads since the last good one
	tornSince  time.Time // when that run of torn reads began
}

// A file torn for this many reads in a row, for at least this long, is
// broken (ErrBroken), not being written: a writer between its truncate and
// its write takes microseconds.
const (
	brokenReads = 1000
	brokenAfter = 50 * time.Millisecond
)

var _ ticketshm.Store = (*UnlockedStore)(nil)

// OpenUnlocked opens the db file at path, which Reset made. It fails with an error
// matching fs.ErrNotExist if there is none.
func OpenUnlocked(path string) (*UnlockedStore, error) {
	s := new(UnlockedStore)
	if err := s.open(path); err != nil {
		return nil, err
	}
	return s, nil
}

// Remaining reads the count with no lock. A file torn by a concurrent
// writer gives an error wrapping ErrTorn, and is counted; one torn for
// good, ErrBroken.
func (s *UnlockedStore) Remaining(ctx context.Context) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if err := s.follow(0); err != nil {
		return 0, err
	}
	c, err := s.count(s.read())
	return c.n, err
}

// Buy reads, decrements and writes back with no lock: two buyers can read
// the same count and both sell that ticket (oversold), and a torn read
// gives an error wrapping ErrTorn (counted; the buyer may retry) until the
// file has stayed torn long enough to be broken: then ErrBroken.
func (s *UnlockedStore) Buy(ctx context.Context) (int64, error) {
	if err := s.begin(ctx); err != nil {
		return 0, err
	}
	defer s.mu.Unlock()
	if err := s.follow(0); err != nil {
		return 0, err
	}
	c, err := s.count(s.read())
	if err != nil {
		return 0, err
	}
	if c.n == 0 {
		return 0, fmt.Errorf("%s: %w", s.path, ticketshm.ErrSoldOut)
	}
	s.buf = appendCount(s.buf[:0], c.n-1)
	if err := s.f.Truncate(0); err != nil {
		return 0, fmt.Errorf("jsonfile: %w", err)
	}
	if _, err := s.f.WriteAt(s.buf, 0); err != nil {
		return 0, fmt.Errorf("jsonfile: %w", err)
	}
	return c.n, nil
}

// Close closes the file; later calls return an error wrapping
// ticketshm.ErrClosed.
func (s *UnlockedStore) Close() error { return s.close() }

func (s *UnlockedStore) count(c count, err error) (count, error) {
	if !errors.Is(err, ErrTorn) {
		s.tornInARow = 0
		return c, err
	}
	s.torn.Add(1)
	if s.tornInARow == 0 {
		s.tornSince = time.Now()
	}
	if s.tornInARow++; s.tornInARow >= brokenReads && time.Since(s.tornSince) >= brokenAfter {
		return count{}, fmt.Errorf("%s: %w after %d torn reads in %v (%v)", s.path, ErrBroken, s.tornInARow, time.Since(s.tornSince).Round(time.Millisecond), err)
	}
	return c, err
}

// Torn is how many reads found the file torn or empty.
func (s *UnlockedStore) Torn() int64 { return s.torn.Load() }
