package cyard

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/shmkit/shmkit/internal/gaphist"
)

// ParseHist parses the fields of a "hist" line (after the word): count,
// sum, sum of squares, max and over, then index:count for each bucket
// that is not empty, in increasing order. The bucket counts must add up
// to count, and the sums must be ones a recording could make (Valid).
func ParseHist(f []string) (gaphist.Hist, error) {
	var h gaphist.Hist
	if len(f) < 5 {
		return h, fmt.Errorf("%w: hist: %d fields, want at least 5", ErrOutput, len(f))
	}
	var err error
	u := func(s string) uint64 {
		v, e := strconv.ParseUint(s, 10, 64)
		if e != nil && err == nil {
			err = fmt.Errorf("%w: hist: %q: %v", ErrOutput, s, e)
		}
		return v
	}
	h.Count, h.Sum = u(f[0]), u(f[1])
	// Not err: that would forget a count or sum u could not parse.
	sumSq, ferr := strconv.ParseFloat(f[2], 64)
	if ferr != nil || sumSq < 0 {
		return h, fmt.Errorf("%w: hist: sum of squares %q", ErrOutput, f[2])
	}
	h.SumSq = sumSq
	h.Max, h.Over = u(f[3]), u(f[4])
	last, total := -1, uint64(0)
	for _, p := range f[5:] {
		is, ns, ok := strings.Cut(p, ":")
		i, e := strconv.Atoi(is)
		if !ok || e != nil || i <= last || i >= gaphist.Buckets {
			return h, fmt.Errorf("%w: hist: bucket %q", ErrOutput, p)
		}
		n := u(ns)
		if n == 0 || total+n < total {
			return h, fmt.Errorf("%w: hist: bucket %q", ErrOutput, p)
		}
		h.Bucket[i], last, total = n, i, total+n
	}
	if err != nil {
		return h, err
	}
	if total != h.Count {
		return h, fmt.Errorf("%w: hist: buckets hold %d gaps, count says %d", ErrOutput, total, h.Count)
	}
	if !h.Valid() {
		return h, fmt.Errorf("%w: hist: not a histogram a buyer could record (sum of squares %v, over %d of %d ns)", ErrOutput, h.SumSq, h.Over, h.Sum)
	}
	return h, nil
}
