//go:build linux

package jsonfile

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/ticketshm"
	"golang.org/x/sys/unix"
)

// Create writes a db file holding {"count": count}, replacing any old one
// atomically (a temporary file renamed into place).
func Create(path string, count int64) error {
	if count < 0 {
		return fmt.Errorf("jsonfile: create %s: negative count %d", path, count)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".db-*")
	if err != nil {
		return err
	}
	_, err = tmp.Write(appendCount(nil, count))
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp.Name(), path)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("jsonfile: create %s: %w", path, err)
	}
	return nil
}

// file is what both stores share: the open db file and a buffer.
type file struct {
	path string
	f    *os.File
	buf  []byte // reused for every read and write: no allocation per buy
}

func open(path string) (file, error) {
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return file{}, fmt.Errorf("jsonfile: %w", err)
	}
	return file{path: path, f: f, buf: make([]byte, 0, 64)}, nil
}

// read returns the count in the file.
func (s *file) read() (int64, error) {
	s.buf = s.buf[:cap(s.buf)]
	for {
		n, err := s.f.ReadAt(s.buf, 0)
		if err == io.EOF || (err == nil && n < len(s.buf)) {
			v, perr := parseCount(s.buf[:n])
			if perr != nil {
				return 0, fmt.Errorf("%s: %w", s.path, perr)
			}
			return v, nil
		}
		if err != nil {
			return 0, fmt.Errorf("jsonfile: %w", err)
		}
		if len(s.buf) >= 1<<20 {
			return 0, fmt.Errorf("%s: %w: file larger than 1 MiB", s.path, ErrFormat)
		}
		s.buf = make([]byte, 2*len(s.buf)) // file longer than the buffer
	}
}

// write replaces the file's content with {"count": n}, as Python's
// open('wt') + json.dump do: truncate, then write. Between the two a
// reader without a lock sees an empty file.
func (s *file) write(n int64) error {
	s.buf = appendCount(s.buf[:0], n)
	if err := s.f.Truncate(0); err != nil {
		return fmt.Errorf("jsonfile: %w", err)
	}
	if _, err := s.f.WriteAt(s.buf, 0); err != nil {
		return fmt.Errorf("jsonfile: %w", err)
	}
	return nil
}

// sell is the second half of the notes' get, after the read of n: sold
// out at 0, else write n-1 back and sell ticket n.
func (s *file) sell(n int64, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, fmt.Errorf("%s: %w", s.path, ticketshm.ErrSoldOut)
	}
	if err := s.write(n - 1); err != nil {
		return 0, err
	}
	return n, nil
}

func (s *file) Close() error { return s.f.Close() }

// FlockStore is the course notes' store with its lock: flock(LOCK_EX)
// around the read-modify-write of the db file. It is a ticketshm.Store; use
// one per goroutine.
type FlockStore struct{ file }

var _ ticketshm.Store = (*FlockStore)(nil)

// OpenFlock opens the db file at path, which Create made.
func OpenFlock(path string) (*FlockStore, error) {
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	return &FlockStore{f}, nil
}

func (s *FlockStore) flock(how int) error {
	for {
		err := unix.Flock(int(s.f.Fd()), how)
		if err != unix.EINTR {
			if err != nil {
				return os.NewSyscallError("flock", err)
			}
			return nil
		}
	}
}

// Remaining reads the count under a shared lock: readers run in parallel,
// and never see a buyer's half-written file. ctx is checked first; the
// flock itself cannot be interrupted.
func (s *FlockStore) Remaining(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := s.flock(unix.LOCK_SH); err != nil {
		return 0, err
	}
	defer s.flock(unix.LOCK_UN)
	return s.read()
}

// Buy reads the count, decrements it and writes it back, all under an
// exclusive lock. It returns the count it saw as the ticket number, or
// ticketshm.ErrSoldOut.
func (s *FlockStore) Buy(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if err := s.flock(unix.LOCK_EX); err != nil {
		return 0, err
	}
	defer s.flock(unix.LOCK_UN)
	return s.sell(s.read())
}

// UnlockedStore is the course notes' store without a lock: wrong on
// purpose, to be watched. It is a ticketshm.Store.
type UnlockedStore struct {
	file
	torn atomic.Int64

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

// OpenUnlocked opens the db file at path, which Create made.
func OpenUnlocked(path string) (*UnlockedStore, error) {
	f, err := open(path)
	if err != nil {
		return nil, err
	}
	return &UnlockedStore{file: f}, nil
}

// Remaining reads the count with no lock. A file torn by a concurrent
// writer gives an error wrapping ErrTorn, and is counted; one torn for
// good, ErrBroken.
func (s *UnlockedStore) Remaining(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return s.count(s.read())
}

// Buy reads, decrements and writes back with no lock: two buyers can read
// the same count and both sell that ticket (oversold), and a torn read
// gives an error wrapping ErrTorn (counted; the buyer may retry) until the
// file has stayed torn long enough to be broken: then ErrBroken.
func (s *UnlockedStore) Buy(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	return s.sell(s.count(s.read()))
}

func (s *UnlockedStore) count(n int64, err error) (int64, error) {
	if !errors.Is(err, ErrTorn) {
		s.tornInARow = 0
		return n, err
	}
	s.torn.Add(1)
	if s.tornInARow == 0 {
		s.tornSince = time.Now()
	}
	if s.tornInARow++; s.tornInARow >= brokenReads && time.Since(s.tornSince) >= brokenAfter {
		return 0, fmt.Errorf("%s: %w after %d torn reads in %v (%v)", s.path, ErrBroken, s.tornInARow, time.Since(s.tornSince).Round(time.Millisecond), err)
	}
	return n, err
}

// Torn is how many reads found the file torn or empty.
func (s *UnlockedStore) Torn() int64 { return s.torn.Load() }
