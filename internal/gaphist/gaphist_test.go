package gaphist

import (
	"math"
	"testing"
)

// TestBuckets: every gap falls in the bucket whose bounds hold it, and the
// buckets tile the line without gaps or overlaps.
func TestBuckets(t *testing.T) {
	for i := range Buckets - 1 {
		if Upper(i) != Lower(i+1) {
			t.Fatalf("bucket %d ends at %d, bucket %d starts at %d", i, Upper(i), i+1, Lower(i+1))
		}
	}
	for _, g := range []uint64{0, 1, 7, 8, 9, 15, 16, 17, 100, 1000, 99_999, 100_001, 1 << 40, math.MaxUint64} {
		i := Index(g)
		if i < 0 || i >= Buckets || g < Lower(i) || (i < Buckets-1 && g >= Upper(i)) {
			t.Fatalf("gap %d in bucket %d [%d, %d)", g, i, Lower(i), Upper(i))
		}
		if i >= 8 && float64(Upper(i)-Lower(i)) > float64(Lower(i))/8+1 {
			t.Fatalf("bucket %d [%d, %d) wider than 12.5%%", i, Lower(i), Upper(i))
		}
	}
}

// TestStats: a buyer that buys every 10 ns for 1 ms and then waits 1 ms:
// per buy the gaps are tiny, per unit of time half of it is one long gap.
func TestStats(t *testing.T) {
	var h Hist
	for range 100_000 {
		h.Add(10)
	}
	h.Add(1_000_000)
	if q := h.Quantile(0.99); q > 12 {
		t.Errorf("p99 %d, want about 10", q)
	}
	if q := h.TimeQuantile(0.99); q < 900_000 {
		t.Errorf("time-weighted p99 %d, want about 1 ms", q)
	}
	if s := h.ShareOver(); math.Abs(s-0.5) > 0.01 {
		t.Errorf("share of time in long gaps %.3f, want 0.5", s)
	}
	// A random arrival lands in the long gap half the time and waits
	// 0.5 ms on average there: 0.25 ms in all.
	if w := h.MeanWait(); math.Abs(w-250_000) > 1000 {
		t.Errorf("mean wait %.0f ns, want about 250 000", w)
	}
	// All of it is the long gap's: from the buckets of 0.9 ms up (the
	// gap's bucket starts at 983 040 ns; its middle is within 6%),
	// nothing from 2 ms, and every gap from 0.
	if w := h.MeanWaitFrom(900_000); math.Abs(w-250_000) > 0.07*250_000 {
		t.Errorf("mean wait from gaps of 0.9 ms up %.0f ns, want about 250 000", w)
	}
	if w := h.MeanWaitFrom(2_000_000); w != 0 {
		t.Errorf("mean wait from gaps of 2 ms up %.0f ns, want 0", w)
	}
	if w := h.MeanWaitFrom(0); math.Abs(w-h.MeanWait()) > 0.07*h.MeanWait() {
		t.Errorf("mean wait from every gap %.0f ns, MeanWait %.0f", w, h.MeanWait())
	}
	if h.Max != 1_000_000 || !h.Valid() {
		t.Errorf("max %d, valid %v", h.Max, h.Valid())
	}
	var m Hist
	m.Merge(&h)
	m.Merge(&h)
	if m.Count != 2*h.Count || m.MeanWait() != h.MeanWait() || !m.Valid() {
		t.Errorf("merged %d gaps, mean wait %.0f; want %d, %.0f", m.Count, m.MeanWait(), 2*h.Count, h.MeanWait())
	}
}
