//go:build linux

package jsonfile

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/ticketshm"
)

// jsonLoad reads the db file as the course notes' Python buyers do
// (json.load(f)['count']), or with encoding/json where there is no
// python3 (CI installs it).
func jsonLoad(t *testing.T, path string) int64 {
	t.Helper()
	py, err := exec.LookPath("python3")
	if err != nil {
		if os.Getenv("SHMKIT_REQUIRE_TOOLS") != "" {
			t.Fatal("no python3, and SHMKIT_REQUIRE_TOOLS is set")
		}
		b, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		c, err := parseCount(b)
		if err != nil {
			t.Fatalf("%s holds %q: %v", path, b, err)
		}
		return c.n
	}
	out, err := exec.Command(py, "-c", "import json, sys; print(json.load(open(sys.argv[1]))['count'])", path).CombinedOutput()
	if err != nil {
		b, _ := os.ReadFile(path)
		t.Fatalf("python's json.load of %q: %v: %s", b, err, out)
	}
	n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64)
	if err != nil {
		t.Fatalf("python printed %q", out)
	}
	return n
}

func inode(t *testing.T, path string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// strace runs entry under strace, failing every call of syscall with
// errno, and returns what the entry reported.
func strace(t *testing.T, syscall, errno, entry string, args ...string) string {
	t.Helper()
	tool := testproc.NeedTool(t, "strace")
	wrapper := []string{tool, "-f", "--seccomp-bpf", "-qq", "-o", "/dev/null", "-e", "trace=" + syscall, "-e", "inject=" + syscall + ":error=" + errno}
	return strings.TrimSpace(testproc.RunUnder(t, wrapper, entry, args...))
}

// TestFailedWriteKeepsCount (issue 16, item 1): a buy whose write fails
// (a full disk, EIO, a quota) leaves the old count, whole, readable by
// Python's json.load, with the file's other keys; so does a reset whose
// write or reservation fails. The faults are injected into a real child
// by strace. Before the fix, a buy truncated the file first: the failed
// write left it empty, and the sale was gone.
func TestFailedWriteKeepsCount(t *testing.T) {
	const content = `{"show": "Hamlet", "count": 100, "seats": [1, 2]}`
	for errno := range errnos {
		t.Run(errno, func(t *testing.T) {
			path := dbFile(t, content)
			if got := strace(t, "pwrite64", errno, "buy", path); got != "err "+errno {
				t.Fatalf("buy with %s injected into its write reported %q", errno, got)
			}
			if b, _ := os.ReadFile(path); string(b) != content {
				t.Fatalf("after a failed buy the file holds %q, want %q", b, content)
			}
			if n := jsonLoad(t, path); n != 100 {
				t.Fatalf("json.load reads %d, want 100", n)
			}
			if got := strace(t, "pwrite64", errno, "create", path, "7"); got != "err "+errno {
				t.Fatalf("Reset with %s injected into its write reported %q", errno, got)
			}
			if b, _ := os.ReadFile(path); string(b) != content {
				t.Fatalf("after a failed reset the file holds %q, want %q", b, content)
			}
			// A reset to a longer count reserves its blocks first.
			short := dbFile(t, `{"count": 5}`)
			if got := strace(t, "fallocate", errno, "create", short, "1000000000000"); got != "err "+errno {
				t.Fatalf("Reset with %s injected into fallocate reported %q", errno, got)
			}
			if n := jsonLoad(t, short); n != 5 {
				t.Fatalf("after a failed reset json.load reads %d, want 5", n)
			}
			// And without the fault, the same child sells.
			if got := strace(t, "getpid", errno, "buy", path); got != "ok 100" {
				t.Fatalf("buy without a fault reported %q", got)
			}
			if n := jsonLoad(t, path); n != 99 {
				t.Fatalf("json.load reads %d after a buy, want 99", n)
			}
		})
	}
}

// TestResetTrimFails (a fault review): a reset whose last step, trimming
// the padding off the new count, fails has reset the file all the same:
// it reports success, and Python reads the new count. Before, it
// reported the error, for a file holding the new count.
func TestResetTrimFails(t *testing.T) {
	path := dbFile(t, `{"count": 1000000}`)
	if got := strace(t, "ftruncate", "EIO", "create", path, "7"); got != "ok 7" {
		t.Fatalf("Reset with EIO injected into its ftruncate reported %q, want ok 7", got)
	}
	if n := jsonLoad(t, path); n != 7 {
		t.Fatalf("json.load reads %d, want 7", n)
	}
}

// TestFullTmpfs: on a file system with no free block, buys and resets of
// an existing db file still work (they write inside the file's blocks),
// and creating a new one fails with ENOSPC, leaving no file behind.
func TestFullTmpfs(t *testing.T) {
	dir := testproc.TinyTmpfs(t, 64<<10)
	path := filepath.Join(dir, "db.txt")
	if err := Reset(path, 300); err != nil {
		t.Fatal(err)
	}
	testproc.Fill(t, dir)
	s, err := OpenFlock(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for want := int64(300); want > 0; want-- {
		if n, err := s.Buy(ctx); n != want || err != nil {
			t.Fatalf("Buy on a full tmpfs = %d, %v; want %d", n, err, want)
		}
	}
	if err := Reset(path, 42); err != nil {
		t.Fatalf("reset on a full tmpfs: %v", err)
	}
	if n := jsonLoad(t, path); n != 42 {
		t.Fatalf("json.load reads %d after the reset, want 42", n)
	}
	other := filepath.Join(dir, "other.txt")
	if err := Reset(other, 5); !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("Reset of a new file on a full tmpfs: %v, want ENOSPC", err)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "db.txt" && e.Name() != "filler" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// TestResetWhileOpen (issue 16, item 3): Reset on an existing file resets
// it in place (same inode, mode kept), so open stores sell from the new
// count; a file renamed over the name by another program is followed; a
// removed name is fs.ErrNotExist. Before the fix, an open store kept
// selling from the unlinked old file: 99, 98, 97 after Reset(db, 5).
func TestResetWhileOpen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.txt")
	if err := Reset(path, 100); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(path, 0o640); err != nil {
		t.Fatal(err)
	}
	ino := inode(t, path)
	s, err := OpenFlock(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	u, err := OpenUnlocked(path)
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	ctx := context.Background()
	if n, err := s.Buy(ctx); n != 100 || err != nil {
		t.Fatalf("Buy = %d, %v", n, err)
	}
	if err := Reset(path, 5); err != nil {
		t.Fatal(err)
	}
	if got := inode(t, path); got != ino {
		t.Errorf("Reset replaced the file (inode %d, was %d)", got, ino)
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o640 {
		t.Errorf("Reset changed the mode to %v", fi.Mode().Perm())
	}
	if n, err := s.Buy(ctx); n != 5 || err != nil {
		t.Fatalf("after Reset(5) the open store sold %d, %v; want 5", n, err)
	}
	if n, err := u.Buy(ctx); n != 4 || err != nil {
		t.Fatalf("after Reset(5) the open unlocked store sold %d, %v; want 4", n, err)
	}

	// Another program writes a new file and renames it over the name.
	tmp := filepath.Join(filepath.Dir(path), "new.txt")
	os.WriteFile(tmp, []byte(`{"count": 50}`), 0o600)
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
	if n, err := s.Buy(ctx); n != 50 || err != nil {
		t.Fatalf("after a rename over the name the store sold %d, %v; want 50", n, err)
	}
	if n, err := u.Remaining(ctx); n != 49 || err != nil {
		t.Fatalf("after a rename over the name the unlocked store sees %d, %v; want 49", n, err)
	}
	os.Remove(path)
	if _, err := s.Buy(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Buy after the name was removed: %v, want fs.ErrNotExist", err)
	}
	if _, err := u.Buy(ctx); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("unlocked Buy after the name was removed: %v, want fs.ErrNotExist", err)
	}
}

// TestConcurrentBuys (issue 17): one FlockStore shared by goroutines sells
// every ticket once. flock alone would not keep them apart: it locks per
// open file, and they share one.
func TestConcurrentBuys(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.txt")
	const tickets = 2000
	if err := Reset(path, tickets); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFlock(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var (
		mu   sync.Mutex
		seen = make(map[int64]bool)
		wg   sync.WaitGroup
	)
	for range 8 {
		wg.Go(func() {
			for {
				n, err := s.Buy(context.Background())
				if errors.Is(err, ticketshm.ErrSoldOut) {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				if seen[n] {
					t.Errorf("ticket %d sold twice", n)
				}
				seen[n] = true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(seen) != tickets {
		t.Fatalf("sold %d tickets, want %d", len(seen), tickets)
	}
}

// TestUseAfterClose (issue 16, item 7): every call on a closed store, and
// a second Close, returns ErrClosed; a Close racing calls waits for them.
func TestUseAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.txt")
	if err := Reset(path, 1_000_000); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, open := range []func(string) (ticketshm.Store, error){
		func(p string) (ticketshm.Store, error) { return OpenFlock(p) },
		func(p string) (ticketshm.Store, error) { return OpenUnlocked(p) },
	} {
		s, err := open(path)
		if err != nil {
			t.Fatal(err)
		}
		var (
			wg     sync.WaitGroup
			bought = make(chan struct{}, 100)
		)
		for range 4 {
			wg.Go(func() {
				for {
					_, err := s.Buy(ctx)
					if err == nil {
						select {
						case bought <- struct{}{}:
						default:
						}
					}
					if errors.Is(err, ticketshm.ErrClosed) {
						return
					}
					if err != nil && !errors.Is(err, ErrTorn) {
						t.Error(err)
						return
					}
				}
			})
		}
		for range cap(bought) {
			<-bought // Close while the goroutines are buying
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		for name, err := range map[string]error{
			"Buy":   func() error { _, err := s.Buy(ctx); return err }(),
			"Close": s.Close(),
			"Remaining": func() error {
				_, err := s.Remaining(ctx)
				return err
			}(),
		} {
			if !errors.Is(err, ticketshm.ErrClosed) {
				t.Errorf("%T.%s after Close: %v, want ErrClosed", s, name, err)
			}
		}
	}
	if n := jsonLoad(t, path); n <= 0 || n >= 1_000_000 {
		t.Fatalf("json.load reads %d", n)
	}
}
