//go:build linux

package jsonfile

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shmkit/shmkit/ticketshm"
)

func dbFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "db.txt")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestSeedFormat(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.txt")
	if err := Create(path, 3); err != nil {
		t.Fatal(err)
	}
	s, err := OpenFlock(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for want := int64(3); want > 0; want-- {
		n, err := s.Buy(ctx)
		if err != nil || n != want {
			t.Fatalf("Buy = %d, %v; want ticket %d", n, err, want)
		}
	}
	b, _ := os.ReadFile(path)
	if string(b) != `{"count": 0}` {
		t.Fatalf("file holds %q, want what json.dump writes", b)
	}
	if _, err := s.Buy(ctx); !errors.Is(err, ticketshm.ErrSoldOut) {
		t.Fatalf("Buy when empty: %v", err)
	}
}

func TestBadFiles(t *testing.T) {
	for _, tc := range []struct {
		content string
		want    error
	}{
		{`{"count": 5}`, nil},
		{"{\n  \"count\": 5\n}\n", nil},
		{`{"other": 1, "count": 5}`, nil},
		{``, ErrTorn},
		{`{"count": 5`, ErrTorn},
		{`{"count": 5}}`, ErrTorn},
		{`not json`, ErrTorn},
		{`{"count": -1}`, ErrFormat},
		{`{"count": 1.5}`, ErrFormat},
		{`{"count": "5"}`, ErrFormat},
		{`{"count": 99999999999999999999}`, ErrFormat},
		{`{"tickets": 5}`, ErrFormat},
		{`[5]`, ErrFormat},
	} {
		path := dbFile(t, tc.content)
		for _, open := range []func(string) (ticketshm.Store, error){
			func(p string) (ticketshm.Store, error) { return OpenFlock(p) },
			func(p string) (ticketshm.Store, error) { return OpenUnlocked(p) },
		} {
			s, err := open(path)
			if err != nil {
				t.Fatal(err)
			}
			n, err := s.Remaining(context.Background())
			if !errors.Is(err, tc.want) {
				t.Errorf("%q: Remaining = %d, %v; want %v", tc.content, n, err, tc.want)
			}
			if tc.want == nil && n != 5 {
				t.Errorf("%q: Remaining = %d, want 5", tc.content, n)
			}
			s.Close()
		}
	}
	if _, err := OpenFlock(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if err := Create(filepath.Join(t.TempDir(), "x"), -1); err == nil {
		t.Error("Create with a negative count succeeded")
	}
}

// TestTornCounted: a reader that finds the file as a writer leaves it
// between truncate and write reports ErrTorn and counts it.
func TestTornCounted(t *testing.T) {
	path := dbFile(t, `{"count": 5}`)
	s, err := OpenUnlocked(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	os.Truncate(path, 0) // a writer in the middle of open('wt') + dump
	if _, err := s.Buy(context.Background()); !errors.Is(err, ErrTorn) {
		t.Fatalf("Buy on an empty file: %v, want ErrTorn", err)
	}
	os.WriteFile(path, []byte(`{"cou`), 0o600)
	if _, err := s.Remaining(context.Background()); !errors.Is(err, ErrTorn) {
		t.Fatalf("Remaining on a half file: %v, want ErrTorn", err)
	}
	if s.Torn() != 2 {
		t.Fatalf("Torn() = %d, want 2", s.Torn())
	}
}

// TestTornForGood: a file that stays torn becomes ErrBroken (not ErrTorn,
// so a retrying buyer stops), and a good read in between starts over.
func TestTornForGood(t *testing.T) {
	path := dbFile(t, `{"count": 958}}`)
	s, err := OpenUnlocked(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for range brokenReads - 1 {
		if _, err := s.Buy(ctx); !errors.Is(err, ErrTorn) {
			t.Fatalf("Buy on a torn file: %v, want ErrTorn", err)
		}
	}
	os.WriteFile(path, []byte(`{"count": 5}`), 0o600)
	if n, err := s.Remaining(ctx); n != 5 || err != nil {
		t.Fatalf("Remaining = %d, %v", n, err)
	}
	os.WriteFile(path, []byte(`{"count": 958}}`), 0o600)
	start := time.Now()
	reads := 0
	for {
		_, err = s.Buy(ctx)
		reads++
		if errors.Is(err, ErrBroken) {
			break
		}
		if !errors.Is(err, ErrTorn) {
			t.Fatalf("Buy on a torn file: %v", err)
		}
	}
	if errors.Is(err, ErrTorn) {
		t.Fatal("ErrBroken wraps ErrTorn: a retrying buyer would not stop")
	}
	if reads < brokenReads || time.Since(start) < brokenAfter {
		t.Fatalf("broken after %d reads in %v: before the bound", reads, time.Since(start))
	}
	if s.Torn() != int64(brokenReads-1+reads) {
		t.Fatalf("Torn() = %d, want %d", s.Torn(), brokenReads-1+reads)
	}
}

// TestFlockBuyAllocs: the flock store's buy allocates nothing once warm.
func TestFlockBuyAllocs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.txt")
	Create(path, 1_000_000)
	s, err := OpenFlock(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { s.Buy(ctx) }); n != 0 {
		t.Fatalf("%v allocations per Buy, want 0", n)
	}
}

// FuzzParseCount: any file content gives a count or ErrTorn/ErrFormat,
// never a panic; an accepted count is what the file says.
func FuzzParseCount(f *testing.F) {
	for _, s := range []string{`{"count": 5}`, `{"count":0}`, ``, `{"count": -1}`, `{"count": 1e3}`, ` { "count" : 12 } `} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		n, err := parseCount(b)
		if err != nil {
			if !errors.Is(err, ErrTorn) && !errors.Is(err, ErrFormat) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if n < 0 {
			t.Fatalf("negative count %d accepted", n)
		}
		if again, err := parseCount(appendCount(nil, n)); err != nil || again != n {
			t.Fatalf("round trip of %d: %d, %v", n, again, err)
		}
	})
}
