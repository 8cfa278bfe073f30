//go:build linux

package shm

import (
	"bytes"
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/shmkit/shmkit/internal/testproc"
)

func TestPath(t *testing.T) {
	for _, tc := range []struct {
		name, want string
		err        error
	}{
		{"tickets", "/dev/shm/shmkit.tickets", nil},
		{"/tmp/x/seg", "/tmp/x/seg", nil},
		{"./seg", "seg", nil},
		{"", "", ErrInvalidName},
		{"..", "", ErrInvalidName},
		{".", "", ErrInvalidName},
		{"a\x00b", "", ErrInvalidName},
		{"/tmp/../etc/passwd", "", ErrInvalidName},
		{"../seg", "", ErrInvalidName},
		{"/tmp/dir/", "", ErrInvalidName},
		{strings.Repeat("n", 201), "", ErrInvalidName},
	} {
		got, err := Path(tc.name)
		if !errors.Is(err, tc.err) || got != tc.want {
			t.Errorf("Path(%q) = %q, %v; want %q, %v", tc.name, got, err, tc.want, tc.err)
		}
	}
}

func TestCreateOpenShareMemory(t *testing.T) {
	name := tempName(t)
	a, err := Create(name, 100, testTag, func(s *Segment) error {
		v, err := s.Uint32(4)
		if err != nil {
			return err
		}
		v.Store(7)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Size() != 100 || a.Tag() != testTag || a.Inits() != 1 {
		t.Fatalf("Size, Tag, Inits = %d, %q, %d", a.Size(), a.Tag(), a.Inits())
	}
	fi, err := os.Stat(a.Path())
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != DataOffset+100 {
		t.Fatalf("file mode %v size %d; want 0600 and %d", fi.Mode(), fi.Size(), DataOffset+100)
	}

	b, err := Open(name, testTag)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	va, _ := a.Uint32(4)
	vb, _ := b.Uint32(4)
	if vb.Load() != 7 {
		t.Fatalf("init's store not visible: %d", vb.Load())
	}
	va.Add(5)
	if vb.Load() != 12 {
		t.Fatalf("second mapping sees %d, want 12", vb.Load())
	}

	if _, err := Create(name, 100, testTag, nil); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("Create over an existing segment: %v, want fs.ErrExist", err)
	}
	if _, err := Open(name, "other/1"); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("Open with another tag: %v, want ErrTypeMismatch", err)
	}
	if _, err := OpenOrCreate(context.Background(), name, 50, testTag, nil); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("OpenOrCreate with another size: %v, want ErrSizeMismatch", err)
	}
	info, err := Stat(name)
	if err != nil {
		t.Fatal(err)
	}
	if info.Uid != uint32(os.Geteuid()) || time.Since(info.ModTime) > time.Hour || info.ModTime.After(time.Now()) {
		t.Errorf("Stat: uid %d, modified %v; want ours, just now", info.Uid, info.ModTime)
	}
	want := Info{Path: a.Path(), FileSize: DataOffset + 100, Version: Version, Tag: testTag, State: StateReady, Size: 100, Inits: 1,
		Uid: info.Uid, ModTime: info.ModTime}
	if diff := cmp.Diff(want, info); diff != "" {
		t.Fatalf("Stat mismatch (-want +got):\n%s", diff)
	}
	infos, err := List()
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, in := range infos {
		found = found || in.Path == a.Path()
	}
	if !found {
		t.Fatalf("List does not show %s", a.Path())
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("second Close: %v, want ErrClosed", err)
	}
	if _, err := a.Uint32(0); !errors.Is(err, ErrClosed) {
		t.Fatalf("view after Close: %v, want ErrClosed", err)
	}
}

func TestCreateFailedInitLeavesNothing(t *testing.T) {
	name := tempName(t)
	boom := errors.New("boom")
	if _, err := Create(name, 8, testTag, func(*Segment) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("Create: %v, want boom", err)
	}
	if _, err := Stat(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed Create left a file: %v", err)
	}
}

func TestViews(t *testing.T) {
	s, err := Create(tempName(t), 64, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, tc := range []struct {
		name string
		view func() error
		want error
	}{
		{"u32 last", func() error { _, err := s.Uint32(60); return err }, nil},
		{"u32 past end", func() error { _, err := s.Uint32(64); return err }, ErrOutOfRange},
		{"u32 negative", func() error { _, err := s.Uint32(-4); return err }, ErrOutOfRange},
		{"u32 misaligned", func() error { _, err := s.Uint32(2); return err }, ErrMisaligned},
		{"i32 ok", func() error { _, err := s.Int32(8); return err }, nil},
		{"u64 last", func() error { _, err := s.Uint64(56); return err }, nil},
		{"u64 straddles end", func() error { _, err := s.Uint64(60); return err }, ErrOutOfRange},
		{"i64 misaligned", func() error { _, err := s.Int64(4); return err }, ErrMisaligned},
		{"i64 huge", func() error { _, err := s.Int64(1 << 60); return err }, ErrOutOfRange},
	} {
		if err := tc.view(); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
}

// TestViewsAcrossProcesses: 4 processes add 10000 each to one atomic word.
func TestViewsAcrossProcesses(t *testing.T) {
	name := tempName(t)
	s, err := Create(name, 8, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var procs []*testproc.Proc
	for range 4 {
		procs = append(procs, testproc.Start(t, "add-counter", name, "10000"))
	}
	for _, p := range procs {
		p.MustExit()
	}
	c, _ := s.Uint64(0)
	if got := c.Load(); got != 40000 {
		t.Fatalf("counter = %d, want 40000", got)
	}
}

// TestOpenOrCreateRace: 16 processes race OpenOrCreate on a new name;
// exactly one runs init and all see the same memory.
func TestOpenOrCreateRace(t *testing.T) {
	name := tempName(t)
	barrier := filepath.Join(t.TempDir(), "go")
	const n = 16
	var procs []*testproc.Proc
	for range n {
		p := testproc.Start(t, "race-open", name, barrier)
		p.Expect("ready")
		procs = append(procs, p)
	}
	if err := os.WriteFile(barrier, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	inits := 0
	for _, p := range procs {
		p.MustExit()
		inits += strings.Count(p.Output(), "init")
	}
	if inits != 1 {
		t.Fatalf("%d processes ran init, want exactly 1", inits)
	}
	s, err := Open(name, testTag)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	pid, _ := s.Int64(0)
	count, _ := s.Int64(8)
	if count.Load() != n || pid.Load() == 0 || s.Inits() != 1 {
		t.Fatalf("counter %d (want %d), initializer pid %d, inits %d (want 1)", count.Load(), n, pid.Load(), s.Inits())
	}
}

// TestInitializerKilled: an initializer SIGKILLed inside init leaves the
// segment initializing; Open says ErrNotReady, a waiting OpenOrCreate keeps
// waiting while it lives, and the next OpenOrCreate redoes init on zeros.
func TestInitializerKilled(t *testing.T) {
	name := tempName(t)
	p := stuckInitializer(t, name)

	if _, err := Open(name, testTag); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Open during init: %v, want ErrNotReady", err)
	}
	info, err := Stat(name)
	if err != nil || info.State != StateInitializing {
		t.Fatalf("Stat during init: %+v, %v", info, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := OpenOrCreate(ctx, name, 64, testTag, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("OpenOrCreate while the initializer lives: %v, want DeadlineExceeded", err)
	}

	p.Kill()
	if code := p.Wait(); code != -9 {
		t.Fatalf("initializer exit %d, want -9", code)
	}
	ran := false
	s, err := OpenOrCreate(context.Background(), name, 64, testTag, func(s *Segment) error {
		ran = true
		for i, b := range s.Data() {
			if b != 0 {
				t.Errorf("redone init sees byte %d = %#x, want zeros", i, b)
				break
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if !ran || s.Inits() != 2 {
		t.Fatalf("init ran %v, inits %d; want true, 2", ran, s.Inits())
	}
}

// stuckInitializer starts a process that is inside init of the segment
// name, the init lock held, until it is killed.
func stuckInitializer(t *testing.T, name string) *testproc.Proc {
	t.Helper()
	p := testproc.Start(t, "stuck-init", name)
	p.Expect("in-init")
	return p
}

// deadInitializer leaves the segment name initializing: its initializer
// killed inside init.
func deadInitializer(t *testing.T, name string) {
	t.Helper()
	p := stuckInitializer(t, name)
	p.Kill()
	p.Wait()
}

// TestFailedInitLeavesNothing (a new user's trial, and a fault review):
// an init that returns an error or panics leaves no file behind (before,
// OpenOrCreate left it initializing for good, as if an initializer were
// still at work), no descriptor open (a panicking init leaked two from
// OpenOrCreate and three from Create, each holding a reserved unnamed
// file), and the panic is the init's own (before, OpenOrCreate's cleanup
// replaced it with a nil dereference).
func TestFailedInitLeavesNothing(t *testing.T) {
	name := tempName(t)
	path, _ := Path(name)
	boom := errors.New("boom")
	_, err := OpenOrCreate(context.Background(), name, 8, testTag, func(*Segment) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("OpenOrCreate: %v, want boom", err)
	}
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed init left %s (%v)", path, err)
	}
	fds := openFDs(t)
	for i := range 3 {
		for _, how := range []string{"OpenOrCreate", "Create"} {
			got := func() (r any) {
				defer func() { r = recover() }()
				panicky := func(*Segment) error { panic("my init failed") }
				if how == "Create" {
					Create(name, 8, testTag, panicky)
				} else {
					OpenOrCreate(context.Background(), name, 8, testTag, panicky)
				}
				return nil
			}()
			if got != "my init failed" {
				t.Fatalf("%s #%d with a panicking init: recovered %v, want the init's panic", how, i, got)
			}
			if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
				t.Fatalf("%s with a panicking init left %s (%v)", how, path, err)
			}
		}
	}
	if now := openFDs(t); now != fds {
		t.Fatalf("%d descriptors open after six panicking inits, %d before", now, fds)
	}
	s, err := OpenOrCreate(context.Background(), name, 8, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.Inits() != 1 {
		t.Fatalf("inits %d, want 1: a new file", s.Inits())
	}
	if _, err := OpenOrCreate(context.Background(), name, 8, "other/1", nil); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("OpenOrCreate with another tag: %v, want ErrTypeMismatch", err)
	}
}

func openFDs(t *testing.T) int {
	t.Helper()
	es, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(es)
}

// TestMapFailureLeavesNothing (a fault review): OpenOrCreate whose
// mapping fails (ENOMEM, here from an address-space limit) after it
// reserved the file's space removes the file. Before, a full-size file of
// zeros stayed in /dev/shm, which shmctl listed as corrupt.
func TestMapFailureLeavesNothing(t *testing.T) {
	name := tempName(t)
	path, _ := Path(name)
	p := testproc.Start(t, "map-nomem", path)
	if got := p.ExpectPrefix(""); !strings.HasPrefix(got, "error ") || !strings.Contains(got, "cannot allocate memory") {
		t.Fatalf("OpenOrCreate beyond the address-space limit: %q, want an ENOMEM error", got)
	}
	p.MustExit()
	if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a failed mapping left %s (%v)", path, err)
	}
}

// TestOpenDuringInit (a fault review): Open and Stat of a segment whose
// header OpenOrCreate is writing in place (another process making and
// removing it in a loop) say ErrNotReady or fs.ErrNotExist, never
// ErrCorrupt. Before, about one Open in a hundred that found the file
// read a header with its magic and without its checksum: "corrupt".
func TestOpenDuringInit(t *testing.T) {
	name := tempName(t)
	p := testproc.Start(t, "init-loop", name)
	p.Expect("looping")
	var ok, notReady int
	for deadline := time.Now().Add(500 * time.Millisecond); time.Now().Before(deadline); {
		s, err := Open(name, testTag)
		switch {
		case err == nil:
			ok++
			s.Close()
		case errors.Is(err, ErrNotReady):
			notReady++
		case errors.Is(err, fs.ErrNotExist):
		default:
			t.Fatalf("Open while another process makes the segment: %v (after %d opened, %d not ready)", err, ok, notReady)
		}
		if _, err := Stat(name); err != nil && !errors.Is(err, ErrNotReady) && !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("Stat while another process makes the segment: %v", err)
		}
	}
	p.Kill()
	p.Wait()
	t.Logf("%d opened, %d not ready", ok, notReady)
}

// TestTornHeaderWhileInitializing: a header that fails validation while
// an initializer holds the init lock is one being written: ErrNotReady.
// Once the initializer is gone, the same bytes are corrupt.
func TestTornHeaderWhileInitializing(t *testing.T) {
	name := tempName(t)
	path, _ := Path(name)
	p := stuckInitializer(t, name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0xde, 0xad, 0xbe, 0xef}, offChecksum); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(name, testTag); !errors.Is(err, ErrNotReady) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a bad header under a live initializer: %v, want ErrNotReady", err)
	}
	if _, err := Stat(name); !errors.Is(err, ErrNotReady) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Stat of a bad header under a live initializer: %v, want ErrNotReady", err)
	}
	p.Kill()
	p.Wait()
	if _, err := Open(name, testTag); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open of a bad header, its initializer dead: %v, want ErrCorrupt", err)
	}
}

// TestTruncatedUnderMapping: someone truncates the file after it was
// mapped. Check reports it; Guard turns the SIGBUS into ErrTruncated.
func TestTruncatedUnderMapping(t *testing.T) {
	name := tempName(t)
	s, err := Create(name, 3*os.Getpagesize(), testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(s.Path(), 0); err != nil {
		t.Fatal(err)
	}
	if err := s.Check(); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Check: %v, want ErrTruncated", err)
	}
	v, err := s.Uint64(2 * os.Getpagesize())
	if err != nil {
		t.Fatal(err)
	}
	err = s.Guard(func() { v.Add(1) })
	if !errors.Is(err, ErrTruncated) {
		t.Fatalf("Guard: %v, want ErrTruncated", err)
	}
	if _, err := Open(name, testTag); !errors.Is(err, ErrTruncated) {
		t.Fatalf("Open of the emptied file this process maps: %v, want ErrTruncated", err)
	}
	// Other panics pass through Guard.
	defer func() {
		if r := recover(); r != "other" {
			t.Fatalf("recovered %v, want the original panic", r)
		}
	}()
	s.Guard(func() { panic("other") })
}

// writeSparse writes a valid, ready segment file of size data bytes at path
// the way a creator that used ftruncate would: a header and a hole.
func writeSparse(t *testing.T, path string, size int) {
	t.Helper()
	b := make([]byte, HeaderSize)
	h := header{totalSize: uint64(DataOffset + size), state: StateReady, tag: testTag, inits: 1}
	h.encode(b)
	f, err := os.OpenFile(path, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := f.Truncate(int64(DataOffset + size)); err != nil {
		t.Fatal(err)
	}
}

// TestSparseFileOnFullTmpfs: a segment file with holes (made by someone
// else, with ftruncate), on a full tmpfs: Open fails with ENOSPC instead of
// handing out a mapping whose first store into a hole raises SIGBUS
// (before, the child below died of SIGBUS). A sparse file that was backed
// by an earlier Open, when there was room, opens on the full tmpfs.
func TestSparseFileOnFullTmpfs(t *testing.T) {
	dir := testproc.TinyTmpfs(t, 1<<20)
	small, big := filepath.Join(dir, "small"), filepath.Join(dir, "big")
	writeSparse(t, small, 64<<10)
	writeSparse(t, big, 2<<20) // more than the tmpfs holds
	first := testproc.Start(t, "open-touch", small)
	first.Expect("touched")
	first.MustExit()
	testproc.Fill(t, dir)
	p := testproc.Start(t, "open-touch", big)
	if got := p.ExpectPrefix(""); !strings.HasPrefix(got, "error ") || !strings.Contains(got, "no space left on device") {
		t.Fatalf("opening a sparse segment on a full tmpfs: %q, want an ENOSPC error", got)
	}
	p.MustExit()
	again := testproc.Start(t, "open-touch", small)
	again.Expect("touched")
	again.MustExit()
}

// TestNoSpaceLeavesNothing: OpenOrCreate and Create on a full tmpfs fail
// with ENOSPC and leave no file behind. (Before, OpenOrCreate left an empty
// file.)
func TestNoSpaceLeavesNothing(t *testing.T) {
	dir := testproc.TinyTmpfs(t, 1<<20)
	testproc.Fill(t, dir)
	for _, how := range []string{"OpenOrCreate", "Create"} {
		path := filepath.Join(dir, "seg."+how)
		var err error
		if how == "Create" {
			_, err = Create(path, 1<<20, testTag, nil)
		} else {
			_, err = OpenOrCreate(context.Background(), path, 1<<20, testTag, nil)
		}
		if !errors.Is(err, syscall.ENOSPC) {
			t.Fatalf("%s on a full tmpfs: %v, want ENOSPC", how, err)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s on a full tmpfs left %s behind (%v)", how, path, err)
		}
	}
}

// TestCheckReplaced: Check reports a segment whose name was removed or
// renamed over by another file; the process keeps its own mapping.
func TestCheckReplaced(t *testing.T) {
	dir := t.TempDir()
	a, err := Create(dir+"/a", 8, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Check(); err != nil {
		t.Fatal(err)
	}
	b, err := Create(dir+"/b", 8, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := os.Rename(dir+"/b", dir+"/a"); err != nil {
		t.Fatal(err)
	}
	if err := a.Check(); !errors.Is(err, ErrReplaced) {
		t.Fatalf("Check after another file was renamed over it: %v, want ErrReplaced", err)
	}
	if err := b.Check(); !errors.Is(err, ErrReplaced) {
		t.Fatalf("Check of the renamed file by its old name: %v, want ErrReplaced", err)
	}
	if err := os.Remove(dir + "/a"); err != nil {
		t.Fatal(err)
	}
	if err := a.Check(); !errors.Is(err, ErrReplaced) {
		t.Fatalf("Check after removal: %v, want ErrReplaced", err)
	}
	v, _ := a.Uint64(0)
	v.Add(1) // its mapping is still its own
}

// TestZeroAndClosed (issue 16, item 7): a zero Segment and a closed one
// answer every method with ErrClosed or a zero value, never a fault: Data
// is nil once closed, so a slice taken after Close cannot reach unmapped
// memory.
func TestZeroAndClosed(t *testing.T) {
	name := filepath.Join(t.TempDir(), "seg")
	open, err := OpenOrCreate(context.Background(), name, 64, "t/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	open.Close()
	for what, s := range map[string]*Segment{"zero": {}, "closed": open} {
		if s.Data() != nil || s.File() != nil || s.Inits() != 0 || s.SlotGen(0) != 0 {
			t.Errorf("%s: Data %v, File %v, Inits %d, SlotGen %d; want nothing", what, s.Data(), s.File(), s.Inits(), s.SlotGen(0))
		}
		_, slot := s.Slot(context.Background())
		_, alive := s.Alive(Slot{})
		_, slots := s.Slots()
		_, view := s.Uint64(0)
		for call, err := range map[string]error{
			"Close": s.Close(), "Check": s.Check(), "Populate": s.Populate(), "Guard": s.Guard(func() {}),
			"Slot": slot, "Alive": alive, "Slots": slots, "Uint64": view,
		} {
			if !errors.Is(err, ErrClosed) {
				t.Errorf("%s Segment: %s: %v, want ErrClosed", what, call, err)
			}
		}
	}
	var z Segment
	if err := z.OnClose(func() {}); !errors.Is(err, ErrClosed) {
		t.Errorf("zero Segment: OnClose: %v", err)
	}
	if z.Tag() != "" || z.Size() != 0 || z.Pinned() == nil {
		t.Error("zero Segment: Tag, Size or Pinned")
	}
}

// TestRemoveWaitsForFailingInit (review, rounds 3 and 4): an initializer
// whose init failed removes the file it was making, by name. A Remove of
// that file and a new segment made under the name, landing between its
// look at the name and its unlink, had it remove the new segment: two
// processes held the name ready, each with a file of its own. Remove now
// takes the file's init lock, which the failing initializer holds, and
// after waiting a second fails with ErrBusy rather than unlink (round 4:
// it unlinked, and an initializer stalled past the second still removed
// the new segment).
func TestRemoveWaitsForFailingInit(t *testing.T) {
	name := tempName(t)
	path, _ := Path(name)
	var made *Segment
	var removed, madeErr error
	done := make(chan struct{})
	unlinkHook = func() {
		unlinkHook = nil
		removed = Remove(name) // the init lock is ours: ErrBusy, after removeWait
		go func() {
			defer close(done)
			// Waits for our init lock, then finds the name gone and
			// makes a new file.
			made, madeErr = OpenOrCreate(context.Background(), name, 8, testTag, nil)
		}()
		time.Sleep(10 * time.Millisecond) // let it start waiting
	}
	defer func() { unlinkHook = nil }()
	boom := errors.New("boom")
	if _, err := OpenOrCreate(context.Background(), name, 8, testTag, func(*Segment) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("OpenOrCreate with a failing init: %v", err)
	}
	<-done
	if !errors.Is(removed, ErrBusy) {
		t.Fatalf("Remove while an initializer holds the init lock: %v, want ErrBusy", removed)
	}
	if madeErr != nil {
		t.Fatal(madeErr)
	}
	defer made.Close()
	var st, fst syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil {
		t.Fatalf("the segment made after the failed init is gone: %v", err)
	}
	if err := syscall.Fstat(int(made.File().Fd()), &fst); err != nil || st.Ino != fst.Ino {
		t.Fatalf("%s names inode %d, the segment made after the failed init is %d", path, st.Ino, fst.Ino)
	}
	if made.Inits() != 1 {
		t.Fatalf("the new segment: inits %d, want 1 (a new file)", made.Inits())
	}
}

// TestHeaderWithoutMagic (review, round 4): the builds that stored the
// magic last left, when their initializer was killed between the two
// stores, a header whole but for the magic: Open and Stat say not ready
// (initializing), and the next OpenOrCreate redoes it. (This build writes
// the header in one write: a kill leaves all of it or none.)
func TestHeaderWithoutMagic(t *testing.T) {
	name := tempName(t)
	path, _ := Path(name)
	deadInitializer(t, name)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt(make([]byte, len(Magic)), offMagic); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(name, testTag); !errors.Is(err, ErrNotReady) {
		t.Fatalf("Open of a header without its magic: %v, want ErrNotReady", err)
	}
	if info, err := Stat(name); !errors.Is(err, ErrNotReady) || info.State != StateInitializing {
		t.Fatalf("Stat of a header without its magic: %v, state %v; want ErrNotReady, initializing", err, info.State)
	}
	s, err := OpenOrCreate(context.Background(), name, 64, testTag, nil)
	if err != nil {
		t.Fatalf("OpenOrCreate of a header without its magic: %v, want it redone", err)
	}
	defer s.Close()
	if s.Inits() != 2 {
		t.Fatalf("inits %d, want 2: the dead initializer's, then ours", s.Inits())
	}
}

// TestRemoveBusy (review, round 4): a Remove of a segment whose
// initializer is stopped inside init (it holds the init lock) fails with
// ErrBusy after a second and leaves the file; once the initializer is
// gone, Remove removes it.
func TestRemoveBusy(t *testing.T) {
	name := tempName(t)
	path, _ := Path(name)
	p := stuckInitializer(t, name)
	if err := Remove(name); !errors.Is(err, ErrBusy) {
		t.Fatalf("Remove under a live initializer: %v, want ErrBusy", err)
	}
	if _, err := os.Lstat(path); err != nil {
		t.Fatalf("a refused Remove removed the file: %v", err)
	}
	p.Kill()
	p.Wait()
	if err := Remove(name); err != nil {
		t.Fatalf("Remove once the initializer is dead: %v", err)
	}
}

// TestCorruptUnderInitLock (review, round 3): a lock on the init byte
// makes only a header that could be being written "not ready". A ready
// header that fails its checksum is corrupt, and another program's file
// is no segment, whoever holds the lock: every OpenOrCreate takes it a
// moment, and a foreign file may be locked whole with lockf. Before, both
// read as ErrNotReady while the lock was held (and shmctl listed the
// corrupt one as ready, the foreign one as a segment it could remove).
func TestCorruptUnderInitLock(t *testing.T) {
	name := tempName(t)
	path, _ := Path(name)
	s, err := Create(name, 8, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.WriteAt([]byte{0xde, 0xad, 0xbe, 0xef}, offChecksum); err != nil {
		t.Fatal(err)
	}
	if err := lockByte(f, initLockOffset); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(name, testTag); !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotReady) {
		t.Fatalf("Open of a ready segment with a bad checksum, init lock held: %v, want ErrCorrupt", err)
	}
	if _, err := Stat(name); !errors.Is(err, ErrCorrupt) || errors.Is(err, ErrNotReady) {
		t.Fatalf("Stat of a ready segment with a bad checksum, init lock held: %v, want ErrCorrupt", err)
	}
	foreign := filepath.Join(t.TempDir(), "PostgreSQL.1234")
	if err := os.WriteFile(foreign, append([]byte("PGSHMEM\x00"), make([]byte, 4088)...), 0o600); err != nil {
		t.Fatal(err)
	}
	g, err := os.OpenFile(foreign, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	lk := syscall.Flock_t{Type: syscall.F_WRLCK} // the whole file, as lockf does
	if err := syscall.FcntlFlock(g.Fd(), syscall.F_SETLK, &lk); err != nil {
		t.Fatal(err)
	}
	if _, err := Stat(foreign); !errors.Is(err, ErrBadMagic) || errors.Is(err, ErrNotReady) {
		t.Fatalf("Stat of another program's locked file: %v, want ErrBadMagic", err)
	}
}

// TestHeaderShrinksUnderRead (review, round 3): a file read at a size it
// no longer has (a dead initializer's work being redone truncates it) is
// read again; it was a bare EOF, which shmctl showed as unreadable.
func TestHeaderShrinksUnderRead(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "shrunk"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, _, err := readParsed(f, 4096); !errors.Is(err, ErrNotReady) {
		t.Fatalf("a header read at a size the file no longer has: %v, want ErrNotReady", err)
	}
}

// TestInitGoexit (review, round 3): an init that calls runtime.Goexit (a
// t.Fatal in a test's init) ends as a failed init: the file removed, no
// descriptor left, no panic of shm's own. Before, the redo path panicked
// with a nil dereference and left the file initializing.
func TestInitGoexit(t *testing.T) {
	name := tempName(t)
	path, _ := Path(name)
	deadInitializer(t, name)
	fds := openFDs(t)
	for _, how := range []string{"redo", "fresh"} {
		done := make(chan any)
		go func() {
			defer func() { done <- recover() }()
			OpenOrCreate(context.Background(), name, 64, testTag, func(*Segment) error {
				runtime.Goexit()
				return nil
			})
		}()
		if r := <-done; r != nil {
			t.Fatalf("%s: an init that calls Goexit: panic %v", how, r)
		}
		if _, err := os.Lstat(path); !errors.Is(err, fs.ErrNotExist) {
			t.Fatalf("%s: an init that called Goexit left %s (%v)", how, path, err)
		}
	}
	if now := openFDs(t); now != fds {
		t.Fatalf("%d descriptors open after two inits that called Goexit, %d before", now, fds)
	}
}

// TestReadyMappedOutsideInitLock (review, round 5): OpenOrCreate maps a
// ready segment after it releases the init lock. Backing a big file's
// blocks takes seconds for gigabytes, and a Remove meanwhile failed with
// ErrBusy (4 GiB: the opener held the lock 4.6 s).
func TestReadyMappedOutsideInitLock(t *testing.T) {
	name := tempName(t)
	path, _ := Path(name)
	s, err := Create(name, 64, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	var locked bool
	var lerr, removed error
	readyMapHook = func() {
		readyMapHook = nil
		f, err := os.Open(path)
		if err != nil {
			lerr = err
			return
		}
		defer f.Close()
		locked, lerr = byteLocked(f, initLockOffset)
		removed = Remove(name)
	}
	defer func() { readyMapHook = nil }()
	s, err = OpenOrCreate(context.Background(), name, 64, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if lerr != nil || locked {
		t.Fatalf("the init lock while a ready segment is mapped: held %v (%v), want free", locked, lerr)
	}
	if removed != nil {
		t.Fatalf("Remove while OpenOrCreate maps a ready segment: %v", removed)
	}
}

// TestZeroHeadedFileIsNotRedone (review, round 5): a file whose first
// bytes are zero and which holds data after them is another program's:
// OpenOrCreate on its path refuses it (ErrBadMagic) and leaves it as it
// was. Before, it truncated and overwrote it, or removed it when init
// failed. A file of zeros only (what an older shmkit left when its
// creator died) is still made a segment.
func TestZeroHeadedFileIsNotRedone(t *testing.T) {
	dir := t.TempDir()
	foreign := filepath.Join(dir, "theirs")
	content := append(make([]byte, HeaderSize), []byte("their data")...)
	if err := os.WriteFile(foreign, content, 0o600); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	for _, init := range []InitFunc{nil, func(*Segment) error { return boom }} {
		if _, err := OpenOrCreate(context.Background(), foreign, 64, testTag, init); !errors.Is(err, ErrBadMagic) {
			t.Fatalf("OpenOrCreate of a zero-headed file with data: %v, want ErrBadMagic", err)
		}
		if b, err := os.ReadFile(foreign); err != nil || !bytes.Equal(b, content) {
			t.Fatalf("OpenOrCreate changed another program's file: %q, %v", b, err)
		}
	}
	zeros := filepath.Join(dir, "zeros")
	if err := os.WriteFile(zeros, make([]byte, 8192), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := OpenOrCreate(context.Background(), zeros, 64, testTag, nil)
	if err != nil {
		t.Fatalf("OpenOrCreate of a file of zeros: %v, want it made", err)
	}
	s.Close()
}
