//go:build linux

package jsonfile

import (
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
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
	if err := Reset(path, 3); err != nil {
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
	if err := Reset(path, 12); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(path); string(b) != `{"count": 12}` {
		t.Fatalf("after Reset, file holds %q, want what json.dump writes", b)
	}
}

// TestBadFiles: a file that is not {"count": N} is an error with a
// sentinel. Under flock it is ErrFormat, permanent, whatever the damage:
// no writer holds the lock half way, so waiting cannot heal it, and a
// buyer that retried ErrTorn would spin forever. Without the lock, a file
// that is not one JSON value may be a writer half way: ErrTorn.
func TestBadFiles(t *testing.T) {
	for _, tc := range []struct {
		content        string
		flock, unlockd error
	}{
		{`{"count": 5}`, nil, nil},
		{"{\n  \"count\": 5\n}\n", nil, nil},
		{`{"other": 1, "count": 5}`, nil, nil},
		{`{"count": 3, "count": 5}`, nil, nil}, // the last wins, as in json.load
		{`{"inner": {"count": 3}, "count": 5}`, nil, nil},
		{``, ErrFormat, ErrTorn},
		{`{"count": 5`, ErrFormat, ErrTorn},
		{`{"count": 5}}`, ErrFormat, ErrTorn},
		{`05`, ErrFormat, ErrTorn},
		{"\ufeff{\"count\": 5}", ErrFormat, ErrTorn}, // a UTF-8 BOM
		{`{"count": 05}`, ErrFormat, ErrTorn},
		{`not json`, ErrFormat, ErrTorn},
		{`{"count": -1}`, ErrFormat, ErrFormat},
		{`{"count": -0}`, ErrFormat, ErrFormat},
		{`{"count": 1.5}`, ErrFormat, ErrFormat},
		{`{"count": 5e0}`, ErrFormat, ErrFormat},
		{`{"count": "5"}`, ErrFormat, ErrFormat},
		{`{"count": 99999999999999999999}`, ErrFormat, ErrFormat},
		{`{"tickets": 5}`, ErrFormat, ErrFormat},
		{`{"inner": {"count": 5}}`, ErrFormat, ErrFormat},
		{`[5]`, ErrFormat, ErrFormat},
	} {
		for _, o := range []struct {
			name string
			open func(string) (ticketshm.Store, error)
			want error
		}{
			{"flock", func(p string) (ticketshm.Store, error) { return OpenFlock(p) }, tc.flock},
			{"unlocked", func(p string) (ticketshm.Store, error) { return OpenUnlocked(p) }, tc.unlockd},
		} {
			path := dbFile(t, tc.content)
			s, err := o.open(path)
			if err != nil {
				t.Fatal(err)
			}
			n, err := s.Remaining(context.Background())
			if !errors.Is(err, o.want) || (o.want == ErrFormat && errors.Is(err, ErrTorn)) {
				t.Errorf("%s %q: Remaining = %d, %v; want %v", o.name, tc.content, n, err, o.want)
			}
			if o.want == nil && n != 5 {
				t.Errorf("%s %q: Remaining = %d, want 5", o.name, tc.content, n)
			}
			if o.name == "flock" {
				_, err := s.Buy(context.Background())
				if !errors.Is(err, o.want) || errors.Is(err, ErrTorn) {
					t.Errorf("%s %q: Buy: %v; want %v", o.name, tc.content, err, o.want)
				}
				if o.want != nil {
					if b, _ := os.ReadFile(path); string(b) != tc.content {
						t.Errorf("%s %q: a failed Buy changed the file to %q", o.name, tc.content, b)
					}
				}
			}
			s.Close()
		}
	}
	if _, err := OpenFlock(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: %v, want fs.ErrNotExist", err)
	}
	if err := Reset(filepath.Join(t.TempDir(), "x"), -1); err == nil {
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

// TestFlockBuyAllocs: the flock store's buy allocates once when warm: the
// NUL-terminated path stat(2) needs to see whether the name still names
// the open file. Parsing and formatting allocate nothing.
func TestFlockBuyAllocs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.txt")
	Reset(path, 1_000_000)
	s, err := OpenFlock(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if n := testing.AllocsPerRun(100, func() { s.Buy(ctx) }); n != 1 {
		t.Fatalf("%v allocations per Buy, want 1", n)
	}
}

// FuzzParseCount: any file content gives a count or ErrTorn/ErrFormat,
// never a panic; an accepted count is what the file says, its span holds
// exactly its digits, and a decrement written over the span leaves a file
// that parses to one less, at the same place.
func FuzzParseCount(f *testing.F) {
	for _, s := range []string{`{"count": 5}`, `{"count":0}`, ``, `{"count": -1}`, `{"count": 1e3}`, ` { "count" : 12 } `,
		`{"a": [1, {"count": 2}], "count": 10, "z": "count"}`, `{"count": 1, "count": 20}`, "\ufeff{\"count\": 5}", `{"c\u006funt": 7}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := parseCount(b)
		if err != nil {
			if !errors.Is(err, ErrTorn) && !errors.Is(err, ErrFormat) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		if c.n < 0 {
			t.Fatalf("negative count %d accepted", c.n)
		}
		if got := string(b[c.start:c.end]); got != strconv.FormatInt(c.n, 10) {
			t.Fatalf("span %d:%d holds %q, count is %d", c.start, c.end, got, c.n)
		}
		// As Python's json.load and dic['count'] read it: the key
		// exactly "count" (a struct field would also match "counT"),
		// the last of duplicates.
		var doc map[string]json.RawMessage
		err = json.Unmarshal(b, &doc)
		var n int64
		if err == nil {
			err = json.Unmarshal(doc["count"], &n)
		}
		if err != nil || n != c.n {
			t.Fatalf("encoding/json reads %d, %v; parseCount %d", n, err, c.n)
		}
		if again, err := parseCount(appendCount(nil, c.n)); err != nil || again.n != c.n {
			t.Fatalf("round trip of %d: %d, %v", c.n, again.n, err)
		}
		if c.n == 0 {
			return
		}
		next := append([]byte(nil), b...)
		copy(next[c.start:c.end], appendPadded(nil, c.n-1, c.end-c.start))
		d, err := parseCount(next)
		if err != nil || d.n != c.n-1 || d.end != c.end {
			t.Fatalf("after the in-place decrement of %q: %q parses to %+v, %v", b, next, d, err)
		}
	})
}
