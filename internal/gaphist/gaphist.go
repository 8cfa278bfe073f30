// Package gaphist records the gaps between consecutive events (a buyer's
// successful buys) in a log-linear histogram: eight buckets per power of
// two, so any gap is placed within 12.5%. It answers what a throughput
// figure hides: how long a process that arrives at a random moment waits
// for the next event (MeanWait: the sum of squared gaps over twice their
// sum, because a random moment falls in a long gap in proportion to its
// length), and how much of the time goes in long gaps.
//
// The layout of Hist is shared with C (internal/cyard's yard.h fills one
// from its timed loops, and yard prints it for ParseHist): six 8-byte
// fields, then Buckets counts, little-endian.
package gaphist

import (
	"math"
	"math/bits"
)

// Buckets is the number of buckets: gaps 0-7 ns get one each, then eight
// per power of two up to 2^64.
const Buckets = 8 + 61*8

// OverThreshold is the gap length above which time counts in Over: the
// ~100 µs a waiting process is meant to get the lock within.
const OverThreshold = 100_000 // ns

// Hist is a histogram of gaps in nanoseconds.
type Hist struct {
	Count  uint64  // gaps recorded
	Sum    uint64  // their total, ns
	SumSq  float64 // the sum of their squares, ns²
	Max    uint64  // the longest, ns
	Over   uint64  // the total of the gaps longer than OverThreshold, ns
	_      uint64  // reserved, zero (keeps the C struct's layout)
	Bucket [Buckets]uint64
}

// Index is the bucket of a gap of g ns.
func Index(g uint64) int {
	if g < 8 {
		return int(g)
	}
	e := 63 - bits.LeadingZeros64(g) // g >= 2^e, e >= 3
	return 8 + (e-3)*8 + int(g>>(e-3)&7)
}

// Lower and Upper bound the gaps of bucket i: Lower(i) <= g < Upper(i).
func Lower(i int) uint64 {
	if i < 8 {
		return uint64(i)
	}
	e, sub := (i-8)/8+3, uint64((i-8)%8)
	return (8 + sub) << (e - 3)
}

// Upper is the first gap past bucket i.
func Upper(i int) uint64 {
	if i < 8 {
		return uint64(i + 1)
	}
	e := (i-8)/8 + 3
	return Lower(i) + 1<<(e-3)
}

// Add records a gap of g ns.
func (h *Hist) Add(g uint64) {
	h.Count++
	h.Sum += g
	h.SumSq += float64(g) * float64(g)
	h.Max = max(h.Max, g)
	if g > OverThreshold {
		h.Over += g
	}
	h.Bucket[Index(g)]++
}

// Merge adds o's gaps to h.
func (h *Hist) Merge(o *Hist) {
	h.Count += o.Count
	h.Sum += o.Sum
	h.SumSq += o.SumSq
	h.Max = max(h.Max, o.Max)
	h.Over += o.Over
	for i := range h.Bucket {
		h.Bucket[i] += o.Bucket[i]
	}
}

// Quantile is the gap below which a fraction q of the gaps fall: the
// upper bound of the bucket that holds it (Max for the last one).
func (h *Hist) Quantile(q float64) uint64 {
	return h.quantile(q, func(i int) float64 { return float64(h.Bucket[i]) })
}

// TimeQuantile is the gap below which a fraction q of the time falls:
// gaps weighted by their length (a bucket's by its middle), so that
// TimeQuantile(0.99) is what a process arriving at a random moment waits
// at most, 99 times in 100.
func (h *Hist) TimeQuantile(q float64) uint64 {
	return h.quantile(q, func(i int) float64 {
		return float64(h.Bucket[i]) * float64(Lower(i)+Upper(i)) / 2
	})
}

func (h *Hist) quantile(q float64, weight func(int) float64) uint64 {
	var total float64
	for i := range h.Bucket {
		total += weight(i)
	}
	if total == 0 {
		return 0
	}
	var acc float64
	for i := range h.Bucket {
		if acc += weight(i); acc >= q*total {
			return min(Upper(i), h.Max)
		}
	}
	return h.Max
}

// MeanWait is how long a process arriving at a random moment waits, on
// average, for the next event: ΣG²/2ΣG ns.
func (h *Hist) MeanWait() float64 {
	if h.Sum == 0 {
		return 0
	}
	return h.SumSq / (2 * float64(h.Sum))
}

// MeanWaitFrom is the part of MeanWait that the gaps of the buckets whose
// lower bound is min or more make (ns): how much of the wait long gaps
// make, say the machine's stalls. Each gap is taken at its bucket's
// middle, within 6.25% of it (a bucket is at most an eighth of its lower
// bound wide), so its square within 13%: with a few long gaps making
// most of the wait, the part can read up to 13% above the whole.
func (h *Hist) MeanWaitFrom(min uint64) float64 {
	if h.Sum == 0 {
		return 0
	}
	var sq float64
	for i, n := range h.Bucket {
		if n != 0 && Lower(i) >= min {
			mid := float64(Lower(i)+Upper(i)) / 2
			sq += float64(n) * mid * mid
		}
	}
	return sq / (2 * float64(h.Sum))
}

// ShareOver is the share of the time spent in gaps longer than
// OverThreshold.
func (h *Hist) ShareOver() float64 {
	if h.Sum == 0 {
		return 0
	}
	return float64(h.Over) / float64(h.Sum)
}

// Valid reports whether h could have been recorded: its counts add up and
// its sums are finite. The harness reads histograms back from buyer
// processes' shared memory.
func (h *Hist) Valid() bool {
	var n uint64
	for _, c := range h.Bucket {
		n += c
	}
	return n == h.Count && !math.IsNaN(h.SumSq) && !math.IsInf(h.SumSq, 0) && h.Over <= h.Sum
}
