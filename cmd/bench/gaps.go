//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"text/tabwriter"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/gaphist"
	"github.com/shmkit/shmkit/internal/human"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

// A gaps segment carries each buyer's histogram of the gaps between its
// buys (internal/gaphist's layout) back to the harness: buyer i's at
// gapStride*i, written once, after its last buy, before it reports done.
const (
	gapsTag   = "bench.Gaps/1"
	gapStride = (int(unsafe.Sizeof(gaphist.Hist{})) + 63) &^ 63
)

type gapsSegment struct {
	seg   *shm.Segment
	procs int
}

var gapsSeq atomic.Int64

func newGaps(procs int) (*gapsSegment, error) {
	name := fmt.Sprintf("bench.%d.gaps.%d", os.Getpid(), gapsSeq.Add(1))
	seg, err := shm.Create(name, gapStride*procs, gapsTag, nil)
	if err != nil {
		return nil, err
	}
	return &gapsSegment{seg, procs}, nil
}

func openGaps(name string) (*gapsSegment, error) {
	seg, err := shm.Open(name, gapsTag)
	if err != nil {
		return nil, err
	}
	if seg.Size()%gapStride != 0 {
		seg.Close()
		return nil, fmt.Errorf("%s: %w: %d bytes is no whole number of histograms", name, shm.ErrSizeMismatch, seg.Size())
	}
	return &gapsSegment{seg, seg.Size() / gapStride}, nil
}

// hist is buyer i's histogram in the segment: gapStride bytes at a
// 64-aligned offset of the data region, inside the shared mapping, never
// moved by Go; Hist holds only fixed-size numbers.
func (g *gapsSegment) hist(i int) (*gaphist.Hist, error) {
	if i < 0 || i >= g.procs {
		return nil, fmt.Errorf("bench: histogram %d of %d", i, g.procs)
	}
	return (*gaphist.Hist)(unsafe.Pointer(&g.seg.Data()[gapStride*i])), nil
}

func (g *gapsSegment) store(i int, h *gaphist.Hist) {
	if p, err := g.hist(i); err == nil {
		*p = *h
	}
}

// load reads buyer i's histogram, which must be one a buyer could have
// recorded.
func (g *gapsSegment) load(i int) (*gaphist.Hist, error) {
	p, err := g.hist(i)
	if err != nil {
		return nil, err
	}
	h := *p
	if !h.Valid() {
		return nil, fmt.Errorf("bench: buyer %d left an impossible gap histogram", i)
	}
	return &h, nil
}

func (g *gapsSegment) name() string { return g.seg.Path() }
func (g *gapsSegment) close()       { g.seg.Close() }

func (g *gapsSegment) remove() {
	path := g.seg.Path()
	g.seg.Close()
	shm.Remove(path)
}

// GapResult is one row of bench latency: what the buyers of one backend
// felt, as gaps between their consecutive buys, next to the throughput
// of the same sale without the clock reads.
type GapResult struct {
	Backend string  `json:"backend"`
	Procs   int     `json:"procs"`
	TurnUs  float64 `json:"turn_us"` // the shm locks' turn (semaphore.SetTurn)
	// Rounds is how many sales were pooled; Tickets each one's size.
	Rounds  int     `json:"rounds"`
	Tickets int64   `json:"tickets"`
	Seconds float64 `json:"seconds"` // the timed sales' total
	// GapP50ns ... GapMaxns: the gaps between a buyer's consecutive
	// buys, all buyers together: quantiles by count (the upper bound of
	// the histogram bucket, within 12.5%) and the longest.
	Gaps      uint64 `json:"gaps"` // how many: one per timed buy
	GapP50ns  uint64 `json:"gap_p50_ns"`
	GapP99ns  uint64 `json:"gap_p99_ns"`
	GapP999ns uint64 `json:"gap_p999_ns"`
	GapMaxns  uint64 `json:"gap_max_ns"`
	// MeanWaitUs is how long a buyer arriving at a random moment waits
	// for its next buy, on average: ΣG²/2ΣG.
	MeanWaitUs float64 `json:"mean_wait_us"`
	// MeanWaitOver1msUs is the part of MeanWaitUs that gaps longer than
	// a millisecond make, from the histogram (each gap taken at its
	// bucket's middle, its square within 13%: Hist.MeanWaitFrom):
	// stalls of the machine, which c-cas
	// (no lock at all) has too, or of a lock holder.
	MeanWaitOver1msUs float64 `json:"mean_wait_over_1ms_us"`
	// TimeP99us is the gap below which 99% of the buyers' time falls.
	TimeP99us float64 `json:"time_p99_us"`
	// ShareOver100us is the share of the buyers' time spent in gaps
	// longer than 100 µs.
	ShareOver100us float64 `json:"share_over_100us"`
	// TimedOpsPerSec is the timed sale's rate; OpsPerSec the same sale's
	// without clock reads, run just before it.
	TimedOpsPerSec float64 `json:"timed_ops_per_sec"`
	OpsPerSec      float64 `json:"ops_per_sec"`
	// ClockNs is the cost of the clock read each timed buy adds (Go's
	// monotonic clock, or C's clock_gettime): part of every gap.
	ClockNs  float64 `json:"clock_ns"`
	Oversold int64   `json:"oversold"`
	Lost     int64   `json:"lost"`
	// Hist is the histogram the figures above come from: its non-empty
	// buckets, shortest gaps first.
	Hist []GapBucket `json:"hist"`
}

// GapBucket is a bucket of GapResult.Hist: Count gaps from LoNs
// (included) to HiNs (excluded).
type GapBucket struct {
	LoNs  uint64 `json:"lo_ns"`
	HiNs  uint64 `json:"hi_ns"`
	Count uint64 `json:"count"`
}

// buckets lists h's non-empty buckets.
func buckets(h *gaphist.Hist) []GapBucket {
	var bs []GapBucket
	for i, n := range h.Bucket {
		if n != 0 {
			bs = append(bs, GapBucket{gaphist.Lower(i), gaphist.Upper(i), n})
		}
	}
	return bs
}

func runLatencyGaps(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench latency", "bench latency [-backends LIST] [-procs LIST] [-tickets N] [-rounds R] [-turn D] [-json]", stderr)
	list := fs.String("backends", strings.Join(latencyBackends(), ","), "backends to run, comma-separated")
	procsFlag := fs.String("procs", "1,2,4,8", "buyer processes per run, comma-separated")
	tickets := fs.Int64("tickets", 0, "tickets per sale; 0: sized to last about a second")
	rounds := fs.Int("rounds", 1, "sales per backend and process count, taken in turn with the others'; their gaps are pooled")
	turnFlag := fs.Duration("turn", semaphore.DefaultTurn, "the shm locks' turn (semaphore.SetTurn) in every buyer")
	asJSON := fs.Bool("json", false, "one JSON object per run on stdout, nothing else")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *turnFlag < time.Microsecond || *turnFlag > 10*time.Millisecond {
		return usageError(fs, "-turn %v: want 1µs to 10ms", *turnFlag)
	}
	// The buyers are this binary, re-executed: they read it from the
	// environment (turnEnv).
	os.Setenv(turnEnv, turnFlag.String())
	kinds, err := parseBackends(fs, *list)
	if err != nil {
		return err
	}
	if kinds, err = prepareC(ctx, kinds, isSet(fs, "backends"), stderr); err != nil {
		return err
	}
	procs, err := parseProcs(fs, *procsFlag)
	if err != nil {
		return err
	}
	if *tickets < 0 || *tickets > maxTickets {
		return usageError(fs, "-tickets %d: want 0 (auto) to %d", *tickets, maxTickets)
	}
	if *rounds < 1 || *rounds > 100 {
		return usageError(fs, "-rounds %d: want 1 to 100", *rounds)
	}
	bar := newProgress(stderr, len(kinds)*len(procs)**rounds, "measuring")
	var rs []GapResult
	for _, p := range procs {
		// Interleaved: every backend at one count, round by round,
		// then the next count; a backend's rounds are pooled, so that
		// a stall of the machine (a vCPU taken away for milliseconds)
		// weighs on each backend's figures at its rate over the whole
		// run rather than on whichever single sale it fell in.
		pools := make([]gapPool, len(kinds))
		for range *rounds {
			for i, kind := range kinds {
				if err := pools[i].measure(ctx, kind, p, *tickets); err != nil {
					return err
				}
				bar.Add(1)
			}
		}
		for i, kind := range kinds {
			r := pools[i].result(kind, p)
			rs = append(rs, r)
			if *asJSON {
				if err := json.NewEncoder(stdout).Encode(r); err != nil {
					return err
				}
			}
		}
	}
	bar.Finish()
	if !*asJSON {
		printGaps(stdout, rs)
	}
	for _, r := range rs {
		if r.Oversold != 0 || r.Lost != 0 {
			return fmt.Errorf("bench latency: %s with %d buyers: oversold %d, lost %d", r.Backend, r.Procs, r.Oversold, r.Lost)
		}
	}
	return nil
}

// turnEnv carries bench latency's -turn to its buyer processes.
const turnEnv = "SHMKIT_BENCH_TURN"

// setTurnFromEnv applies a -turn passed down by bench latency, in a buyer.
func setTurnFromEnv() {
	if d, err := time.ParseDuration(os.Getenv(turnEnv)); err == nil {
		semaphore.SetTurn(d)
	}
}

// latencyBackends are bench latency's defaults: the locks and their
// yardsticks (the JSON stores' gaps are their file system's).
func latencyBackends() []string {
	out := []string{"shm-mutex", "shm-lockfree"}
	if haveC() {
		out = append(out, cBackends...)
	}
	return out
}

// gapPool gathers one backend's rounds at one process count.
type gapPool struct {
	rounds         int
	tickets        int64 // per sale: calibrated in the first round
	hist           gaphist.Hist
	seconds        float64 // the timed sales'
	untimedSec     float64
	sold, untimedN int64
	oversold, lost int64
}

// measure sells with kind and procs buyers twice, untimed then timing
// every buy, and adds both to p.
func (p *gapPool) measure(ctx context.Context, kind string, procs int, tickets int64) error {
	if tickets == 0 {
		tickets = p.tickets
	}
	if tickets == 0 {
		n, _, err := calibrate(ctx, kind, procs, 0)
		if err != nil {
			return err
		}
		tickets, p.tickets = n, n
	}
	untimed, err := sell(ctx, kind, procs, tickets)
	if err != nil {
		return err
	}
	r, h, err := sellGaps(ctx, kind, procs, tickets, true)
	if err != nil {
		return err
	}
	p.rounds++
	p.tickets = tickets
	p.hist.Merge(&h)
	p.seconds += r.Seconds
	p.sold += total(r.PerBuyer)
	p.untimedSec += untimed.Seconds
	p.untimedN += total(untimed.PerBuyer)
	p.oversold += r.Oversold + untimed.Oversold
	p.lost += r.Lost + untimed.Lost
	return nil
}

// result is p's row: the pooled gaps, and the rates over all its sales.
func (p *gapPool) result(kind string, procs int) GapResult {
	turn, _ := time.ParseDuration(os.Getenv(turnEnv))
	if turn == 0 {
		turn = semaphore.DefaultTurn
	}
	h := &p.hist
	g := GapResult{
		Backend:        kind,
		Procs:          procs,
		TurnUs:         float64(turn) / 1e3,
		Rounds:         p.rounds,
		Tickets:        p.tickets,
		Seconds:        p.seconds,
		Gaps:           h.Count,
		GapP50ns:       h.Quantile(0.5),
		GapP99ns:       h.Quantile(0.99),
		GapP999ns:      h.Quantile(0.999),
		GapMaxns:       h.Max,
		MeanWaitUs:     h.MeanWait() / 1e3,
		TimeP99us:      float64(h.TimeQuantile(0.99)) / 1e3,
		ShareOver100us: h.ShareOver(),
		TimedOpsPerSec: rate(p.sold, p.seconds),
		OpsPerSec:      rate(p.untimedN, p.untimedSec),
		ClockNs:        goClockCost(),
		Oversold:       p.oversold,
		Lost:           p.lost,
		Hist:           buckets(h),
	}
	g.MeanWaitOver1msUs = h.MeanWaitFrom(uint64(time.Millisecond)) / 1e3
	if isC(kind) {
		g.ClockNs = cClockCost()
	}
	return g
}

func rate(n int64, s float64) float64 {
	if s <= 0 {
		return 0
	}
	return float64(n) / s
}

// goClockCost is the cost of the clock read a Go buyer adds per buy.
func goClockCost() float64 {
	const n = 1_000_000
	base := time.Now()
	start := time.Since(base)
	var x time.Duration
	for range n {
		x = time.Since(base)
	}
	return float64(x-start) / n
}

func printGaps(w io.Writer, rs []GapResult) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\tprocs\tgap p50\tp99\tp99.9\tmax\tmean wait\ttime p99\t>100µs\tops/s\ttimed\tclock\t")
	for _, r := range rs {
		fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%.1f%%\t%s\t%s\t%.0fns\t\n",
			r.Backend, r.Procs, dur(float64(r.GapP50ns)), dur(float64(r.GapP99ns)), dur(float64(r.GapP999ns)), dur(float64(r.GapMaxns)),
			dur(r.MeanWaitUs*1e3), dur(r.TimeP99us*1e3), 100*r.ShareOver100us, human.String(r.OpsPerSec), human.String(r.TimedOpsPerSec), r.ClockNs)
	}
	tw.Flush()
}

// dur prints ns as ns, µs or ms, three digits.
func dur(ns float64) string {
	switch {
	case ns < 1e3:
		return fmt.Sprintf("%.0fns", ns)
	case ns < 1e6:
		return fmt.Sprintf("%.3gµs", ns/1e3)
	default:
		return fmt.Sprintf("%.3gms", ns/1e6)
	}
}
