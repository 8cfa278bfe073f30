//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/shmkit/shmkit/internal/gaphist"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/ticketshm/jsonfile"
)

func init() {
	process.Register("buyer", profiled("buyer", buyerEntry))
}

// buyerEntry: args kind, store, control, index, tickets [, gaps]. It
// opens the store, says it is ready, waits at the barrier, sells until
// sold out and stores its results in its control slot, and with a gaps
// segment its histogram of the gaps between its buys there. Opening (a
// process slot, a robust thread, a connection) and faulting in the shared
// pages come before the barrier: they are setup, like spawning, not the
// sale.
func buyerEntry(args []string) error {
	if len(args) != 5 && len(args) != 6 {
		return fmt.Errorf("buyer: want kind, store, control, index, tickets [, gaps]; got %q", args)
	}
	kind, store := args[0], args[1]
	setTurnFromEnv()
	i, err := strconv.Atoi(args[3])
	if err != nil {
		return err
	}
	tickets, err := strconv.ParseInt(args[4], 10, 64)
	if err != nil {
		return err
	}
	ctl, err := openControl(args[2])
	if err != nil {
		return err
	}
	bought, torn, done, broken := ctl.slot(i)
	var h *gaphist.Hist
	var gaps *gapsSegment
	if len(args) == 6 {
		if gaps, err = openGaps(args[5]); err != nil {
			return err
		}
		defer gaps.close()
		h = new(gaphist.Hist)
	}
	sellAll, closeStore, err := openSale(context.Background(), kind, store, tickets, h, ctl)
	if err != nil {
		return err
	}
	ctl.ready().Add(1)
	ctl.waitStart()
	n, t, stopped, err := sellAll()
	if stopped == 0 {
		stopped = monoNow()
	}
	ctl.finished(i).Store(stopped)
	closeStore()
	if gaps != nil {
		gaps.store(i, h)
	}
	bought.Store(n)
	torn.Store(t)
	if errors.Is(err, jsonfile.ErrBroken) {
		broken.Store(1)
		err = nil // the lesson of json-nolock, reported by the harness
	}
	done.Store(1)
	return err
}

// Result is one throughput run: a JSON object of -json and results.json.
type Result struct {
	Backend   string  `json:"backend"`
	Procs     int     `json:"procs"`
	Tickets   int64   `json:"tickets"`
	Seconds   float64 `json:"seconds"`
	OpsPerSec float64 `json:"ops_per_sec"`
	Sold      int64   `json:"sold"`
	Remaining int64   `json:"remaining"`
	Oversold  int64   `json:"oversold"`
	Lost      int64   `json:"lost"`
	Torn      int64   `json:"torn"`
	MinShare  float64 `json:"min_share"`
	MaxShare  float64 `json:"max_share"`
	// SpeedupVsJSONFlock is ops_per_sec over json-flock's at the same
	// procs in the same invocation (0 when json-flock did not run).
	SpeedupVsJSONFlock float64 `json:"speedup_vs_json_flock,omitempty"`
	// Broken: the unlocked JSON store tore its file for good; buyers
	// stopped, and remaining is -1 if the file is still unreadable.
	Broken bool `json:"broken"`
	// BrokenFile is then the start of the torn file (its first 40
	// bytes), as the harness found it after the run.
	BrokenFile string  `json:"broken_file,omitempty"`
	PerBuyer   []int64 `json:"per_buyer"`
	CPUs       int     `json:"cpus"`
	// Rounds: the run was sold in this many rounds, taken in turn with
	// the other backends' at the same procs; RoundOpsPerSec is each
	// round's rate, and OpsPerSec their median. (0 and empty for a
	// single sale, as BenchmarkTickets makes.)
	Rounds         int       `json:"rounds,omitempty"`
	RoundOpsPerSec []float64 `json:"round_ops_per_sec,omitempty"`
}

// sell runs one sale: procs buyer processes, tickets tickets, through
// kind. Spawning happens before the barrier and is not timed.
func sell(ctx context.Context, kind string, procs int, tickets int64) (Result, error) {
	r, _, err := sellGaps(ctx, kind, procs, tickets, false)
	return r, err
}

// sellGaps is sell; with gaps, every buyer also records the gaps between
// its buys, and sellGaps returns their histograms merged.
func sellGaps(ctx context.Context, kind string, procs int, tickets int64, gaps bool) (r Result, hist gaphist.Hist, err error) {
	if procs < 1 || procs > maxBuyers {
		return r, hist, fmt.Errorf("bench: %d buyers: want 1 to %d", procs, maxBuyers)
	}
	dir, err := os.MkdirTemp("", "shmkit-bench-")
	if err != nil {
		return r, hist, err
	}
	defer os.RemoveAll(dir)
	store, err := createStore(ctx, kind, dir, tickets)
	if err != nil {
		return r, hist, err
	}
	defer func() {
		if rerr := removeStore(kind, store); err == nil && rerr != nil {
			err = rerr
		}
	}()
	ctl, err := newControl()
	if err != nil {
		return r, hist, err
	}
	defer ctl.remove()
	var gapSeg *gapsSegment
	if gaps {
		if gapSeg, err = newGaps(procs); err != nil {
			return r, hist, err
		}
		defer gapSeg.remove()
	}

	ps := make([]*process.Process, procs)
	defer func() { // on an early return, no buyer outlives the run
		for _, p := range ps {
			if p != nil && p.IsAlive() {
				p.Kill()
				p.Join(context.Background())
			}
		}
	}()
	for i := range ps {
		ps[i] = &process.Process{
			Entry:  "buyer",
			Args:   []string{kind, store, ctl.name(), strconv.Itoa(i), strconv.FormatInt(tickets, 10)},
			Name:   fmt.Sprintf("buyer-%d", i),
			Daemon: true,
		}
		if gapSeg != nil {
			ps[i].Args = append(ps[i].Args, gapSeg.name())
		}
		if err := ps[i].Start(); err != nil {
			return r, hist, err
		}
	}
	for ctl.ready().Load() < int64(procs) {
		if err := ctx.Err(); err != nil {
			return r, hist, err
		}
		for _, p := range ps {
			if !p.IsAlive() {
				return r, hist, fmt.Errorf("bench: %s buyer %s died before the start: %w", kind, p.Name, p.Join(ctx))
			}
		}
		time.Sleep(100 * time.Microsecond)
	}
	start := monoNow()
	ctl.start().Store(1)
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			return r, hist, fmt.Errorf("bench: %s buyer %s: %w", kind, p.Name, err)
		}
	}
	var end int64
	for i := range procs {
		end = max(end, ctl.finished(i).Load())
	}
	elapsed := time.Duration(max(end-start, 1))

	r = Result{Backend: kind, Procs: procs, Tickets: tickets, Seconds: elapsed.Seconds(), CPUs: runtime.NumCPU()}
	var bought int64
	for i := range procs {
		b, t, done, broken := ctl.slot(i)
		if done.Load() != 1 {
			return r, hist, fmt.Errorf("bench: %s buyer %d exited without its results", kind, i)
		}
		r.Broken = r.Broken || broken.Load() == 1
		r.PerBuyer = append(r.PerBuyer, b.Load())
		bought += b.Load()
		r.Torn += t.Load()
	}
	v, err := verify(ctx, kind, store, tickets, bought)
	if err != nil {
		return r, hist, err
	}
	r.Sold, r.Remaining, r.Oversold, r.Lost = v.sold, v.remaining, v.oversold, v.lost
	r.Broken = r.Broken || v.broken
	r.BrokenFile = v.brokenFile
	r.OpsPerSec = float64(bought) / elapsed.Seconds()
	r.MinShare, r.MaxShare = shares(r.PerBuyer)
	if gapSeg != nil {
		for i := range procs {
			h, err := gapSeg.load(i)
			if err != nil {
				return r, hist, fmt.Errorf("bench: %s buyer %d: %w", kind, i, err)
			}
			hist.Merge(h)
		}
	}
	return r, hist, nil
}

// total is the sum of a sale's per-buyer counts.
func total(ns []int64) (t int64) {
	for _, n := range ns {
		t += n
	}
	return t
}

// shares are the lowest and highest of the buyers' sales over the fair
// share (all sales over the number of buyers); 0, 0 when nothing sold.
func shares(perBuyer []int64) (lo, hi float64) {
	sum := total(perBuyer)
	if sum == 0 {
		return 0, 0
	}
	fair := float64(sum) / float64(len(perBuyer))
	lo, hi = math.Inf(1), 0
	for _, b := range perBuyer {
		lo, hi = min(lo, float64(b)/fair), max(hi, float64(b)/fair)
	}
	return lo, hi
}

// Sizing runs without -tickets.
const (
	targetRun   = time.Second
	probeRun    = 100 * time.Millisecond
	minTickets  = 100
	maxTickets  = 200_000_000 // a shm Counter keeps a byte per ticket
	firstProbe  = 1000
	probeGrowth = 8
)

// calibrate returns how many tickets make a run of kind with procs buyers
// last about targetRun, by probe runs of growing size; guess is a rate
// (tickets/s) to start from, 0 for none. It also returns the measured rate.
func calibrate(ctx context.Context, kind string, procs int, guess float64) (int64, float64, error) {
	n := int64(firstProbe)
	if guess > 0 {
		n = clampTickets(int64(guess * probeRun.Seconds()))
	}
	for {
		r, err := sell(ctx, kind, procs, n)
		if err != nil {
			return 0, 0, err
		}
		rate := r.OpsPerSec
		if r.Seconds >= probeRun.Seconds()/2 || n >= maxTickets || rate <= 0 {
			return clampTickets(int64(rate * targetRun.Seconds())), rate, nil
		}
		// Aim at probeRun next, growing by at most probeGrowth.
		next := int64(rate * probeRun.Seconds())
		n = clampTickets(min(max(next, 2*n), probeGrowth*n))
	}
}

func clampTickets(n int64) int64 { return min(max(n, minTickets), maxTickets) }
