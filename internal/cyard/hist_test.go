package cyard

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/shmkit/shmkit/internal/gaphist"
)

// format writes h as yard's print_hist does.
func format(h *gaphist.Hist) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d %d %s %d %d", h.Count, h.Sum, fmt.Sprint(h.SumSq), h.Max, h.Over)
	for i, n := range h.Bucket {
		if n != 0 {
			fmt.Fprintf(&b, " %d:%d", i, n)
		}
	}
	return b.String()
}

func TestParseHist(t *testing.T) {
	var h gaphist.Hist
	for _, g := range []uint64{1, 7, 8, 100, 100, 5000, 1 << 40} {
		h.Add(g)
	}
	got, err := ParseHist(strings.Fields(format(&h)))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(h, got, cmp.AllowUnexported(gaphist.Hist{})); d != "" {
		t.Fatalf("round trip (-want +got):\n%s", d)
	}
	for _, bad := range []string{
		"",
		"1 2 3 4",
		"1 2 3 4 5 0:2",       // buckets hold 2, count 1
		"2 2 3 4 5 3:1 3:1",   // an index twice
		"2 2 3 4 5 4:1 3:1",   // out of order
		"1 2 3 4 5 496:1",     // past the last bucket
		"1 2 -3 4 5 0:1",      // a negative square
		"1 2 NaN 4 5 0:1",     // not a number
		"0 2 3 4 5 0:0",       // an empty bucket listed
		"1 2 3 4 5 x:1",       // not an index
		"1 2 3 4 5 0:1 extra", // not a pair
		"18446744073709551615 0 0 0 0 0:18446744073709551615 1:1",
		"1 2 Inf 4 1 0:1", // an infinite square
		"1 2 3 4 5 0:1",   // more over 100 µs than in all
		"x 9 3 4 5",       // a count that is not a number (it read as 0)
		"-1 9 3 4 5",      // a negative count
		"1 y 0 0 0 0:1",   // a sum that is not a number
	} {
		if _, err := ParseHist(strings.Fields(bad)); !errors.Is(err, ErrOutput) {
			t.Errorf("ParseHist(%q): %v, want ErrOutput", bad, err)
		}
	}
}

// FuzzParseHist: any line parses or fails with ErrOutput, and what parses
// prints back to a line that parses the same.
func FuzzParseHist(f *testing.F) {
	f.Add("3 30 300 20 0 0:1 9:2")
	f.Add("1 2 3 4 5 495:1")
	f.Fuzz(func(t *testing.T, line string) {
		h, err := ParseHist(strings.Fields(line))
		if err != nil {
			if !errors.Is(err, ErrOutput) {
				t.Fatalf("%q: %v, not ErrOutput", line, err)
			}
			return
		}
		again, err := ParseHist(strings.Fields(format(&h)))
		if err != nil {
			t.Fatalf("%q parsed, its reprint did not: %v", line, err)
		}
		if d := cmp.Diff(h, again, cmp.AllowUnexported(gaphist.Hist{})); d != "" {
			t.Fatalf("%q: reprint differs (-first +second):\n%s", line, d)
		}
	})
}
