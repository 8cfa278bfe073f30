//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/shmkit/shmkit/internal/backend"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/process"
)

func TestMain(m *testing.M) {
	process.Main(func() error {
		code := m.Run()
		if left := testproc.Children(); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "bench: children left behind: %s\n", strings.Join(left, "; "))
			code = 1
		}
		if built.bin != "" {
			os.RemoveAll(filepath.Dir(built.bin))
		}
		if left, _ := filepath.Glob(fmt.Sprintf("/dev/shm/shmkit.bench.%d.*", os.Getpid())); len(left) > 0 {
			fmt.Fprintf(os.Stderr, "bench: segments left behind: %v\n", left)
			code = 1
		}
		return process.Exit(code)
	})
}

// runArgs runs the command and returns stdout, stderr and the error.
func runArgs(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(context.Background(), args, &stdout, &stderr)
	return stdout.String(), stderr.String(), err
}

func TestBadFlags(t *testing.T) {
	file := filepath.Join(t.TempDir(), "a-file")
	os.WriteFile(file, nil, 0o600)
	for _, args := range [][]string{
		{"-backends", "shm-mutex,redis-on-mars"},
		{"-procs", "0"},
		{"-backends", "redis", "-redis", "bad address"},
		{"-procs", "1,-2"},
		{"-procs", "two"},
		{"-tickets", "0"},
		{"-tickets", "-5"},
		{"-rounds", "0"},
		{"-rounds", "101"},
		{"-out", filepath.Join(file, "sub")}, // under a regular file: unwritable
		{"-nosuchflag"},
		{"extra-argument"},
		{"chaos", "-kills", "0"},
		{"chaos", "-backend", "json-flock"},
		{"chaos", "-procs", "0"},
		{"recover", "-n", "0"},
		{"spawn", "-n", "-1"},
		{"spawn", "-exec", "/nonexistent-program"},
		{"spawn", "-exec", "true", "-warm", "1"},
		{"replot"},
		{"replot", "/nonexistent-dir"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			stdout, stderr, err := runArgs(t, args...)
			if !errors.Is(err, errUsage) {
				t.Fatalf("err = %v, want errUsage", err)
			}
			if stdout != "" {
				t.Errorf("stdout not empty: %q", stdout)
			}
			if !strings.Contains(stderr, "usage: bench") {
				t.Errorf("no usage on stderr: %q", stderr)
			}
		})
	}
}

// TestThroughputJSON: -json prints one object per run, with the contract's
// fields, and nothing else; -out writes results.json and throughput.svg.
func TestThroughputJSON(t *testing.T) {
	out := filepath.Join(t.TempDir(), "charts")
	all := defaultBackends("")
	if os.Getenv("SHMKIT_REQUIRE_REDIS") != "" && !slices.Contains(all, "redis") {
		t.Fatal("SHMKIT_REQUIRE_REDIS is set and redis-server is not installed")
	}
	kinds := strings.Join(all, ",")
	stdout, _, err := runArgs(t, "-json", "-backends", kinds, "-procs", "1,3", "-tickets", "3000", "-rounds", "2", "-out", out)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2*len(all) {
		t.Fatalf("%d lines of JSON, want %d:\n%s", len(lines), 2*len(all), stdout)
	}
	fields := []string{"backend", "procs", "tickets", "seconds", "ops_per_sec", "sold", "remaining", "oversold", "lost", "torn", "min_share", "max_share"}
	for _, line := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("not JSON: %q: %v", line, err)
		}
		for _, f := range fields {
			if _, ok := obj[f]; !ok {
				t.Errorf("%s: no field %q", line, f)
			}
		}
		var r Result
		json.Unmarshal([]byte(line), &r)
		if r.Rounds != 2 || len(r.RoundOpsPerSec) != 2 || r.OpsPerSec != (r.RoundOpsPerSec[0]+r.RoundOpsPerSec[1])/2 {
			t.Errorf("%s with %d buyers: rounds %d, ops/s %v of %v; want 2 rounds and their median", r.Backend, r.Procs, r.Rounds, r.OpsPerSec, r.RoundOpsPerSec)
		}
		if r.Backend == "json-nolock" {
			continue // it may oversell: that is its lesson
		}
		if r.Sold != 3000 || r.Remaining != 0 || r.Oversold != 0 || r.Lost != 0 || r.Torn != 0 {
			t.Errorf("%s with %d buyers: %+v", r.Backend, r.Procs, r)
		}
	}
	var saved []Result
	js, err := os.ReadFile(filepath.Join(out, "results.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(js, &saved); err != nil || len(saved) != len(lines) {
		t.Fatalf("results.json: %d results, %v", len(saved), err)
	}
	svg, err := os.ReadFile(filepath.Join(out, "throughput.svg"))
	if err != nil || !bytes.Contains(svg, []byte("<svg")) || !bytes.Contains(svg, []byte("shm-mutex")) {
		t.Fatalf("throughput.svg: %v, %.200q", err, svg)
	}
	// replot draws the same chart again from results.json alone.
	os.Remove(filepath.Join(out, "throughput.svg"))
	if _, _, err := runArgs(t, "replot", out); err != nil {
		t.Fatal(err)
	}
	if again, err := os.ReadFile(filepath.Join(out, "throughput.svg")); err != nil || !bytes.Equal(again, svg) {
		t.Errorf("replot did not redraw the same chart: %v", err)
	}
	entries, _ := os.ReadDir(out)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if diff := cmp.Diff([]string{"results.json", "throughput.svg"}, names); diff != "" {
		t.Errorf("files in -out (-want +got):\n%s", diff)
	}
}

func TestThroughputTable(t *testing.T) {
	stdout, stderr, err := runArgs(t, "-backends", "shm-lockfree,json-flock", "-procs", "2", "-tickets", "500")
	if err != nil {
		t.Fatal(err)
	}
	if stderr != "" {
		t.Errorf("stderr is not a terminal, yet: %q", stderr)
	}
	for _, want := range []string{"ops/s", "× json-flock", "min share", "shm-lockfree", "json-flock"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table lacks %q:\n%s", want, stdout)
		}
	}
}

// TestCalibrate: without -tickets a run is sized from a probe.
func TestCalibrate(t *testing.T) {
	n, rate, err := calibrate(t.Context(), "json-flock", 1, 0)
	if err != nil {
		t.Fatal(err)
	}
	if n < minTickets || n > maxTickets || rate <= 0 {
		t.Fatalf("calibrate = %d tickets at %.0f/s", n, rate)
	}
}

func TestChaos(t *testing.T) {
	for _, kind := range []string{"shm-mutex", "shm-lockfree"} {
		t.Run(kind, func(t *testing.T) {
			stdout, _, err := runArgs(t, "chaos", "-json", "-backend", kind, "-kills", "40", "-procs", "3", "-tickets", "5000000")
			if err != nil {
				t.Fatal(err)
			}
			var res ChaosResult
			if err := json.Unmarshal([]byte(stdout), &res); err != nil {
				t.Fatalf("%q: %v", stdout, err)
			}
			var obj map[string]any
			json.Unmarshal([]byte(stdout), &obj)
			for _, f := range []string{"kills", "buys", "oversold", "lost", "in_flight", "double_sold", "not_recoverable", "slot_claims", "foreign", "foreign_refused"} {
				if _, ok := obj[f]; !ok {
					t.Errorf("no field %q in %s", f, stdout)
				}
			}
			if res.Kills != 40 || res.Buys == 0 || res.Oversold != 0 || res.Lost != 0 || res.InFlight != 0 || res.DoubleSold != 0 || res.NotRecoverable != 0 || res.BuyerErrors != 0 {
				t.Fatalf("%+v", res)
			}
			// The hopper and the squatter churn the slots: far more
			// claims than one per buyer started.
			if res.SlotClaims <= uint64(res.Kills+3) {
				t.Fatalf("%d slot claims for %d kills: no churn", res.SlotClaims, res.Kills)
			}
			if os.Geteuid() == 0 && (res.Foreign != 4 || res.ForeignRefused != res.Foreign) {
				t.Fatalf("foreign buyers %d, refused %d: want 4 (one per 10 kills), all refused", res.Foreign, res.ForeignRefused)
			}
		})
	}
}

// TestSpawnExecFails: a program that fails under spawn -exec is an error
// that says so, not an exit code process.Main would pass on in silence.
func TestSpawnExecFails(t *testing.T) {
	_, _, err := runArgs(t, "spawn", "-n", "2", "-exec", "false")
	var ec interface{ ExitCode() int }
	if err == nil || errors.As(err, &ec) || !strings.Contains(err.Error(), "exit status 1") {
		t.Fatalf("spawn -exec false: %v; want an error saying exit status 1, with no exit code to pass on", err)
	}
}

func TestRecoverAndSpawn(t *testing.T) {
	for _, args := range [][]string{{"recover", "-json", "-n", "5"}, {"spawn", "-json", "-n", "5"}, {"spawn", "-json", "-n", "5", "-exec", "true"}} {
		stdout, _, err := runArgs(t, args...)
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		lines := strings.Split(strings.TrimSpace(stdout), "\n")
		for _, line := range lines {
			var l Latency
			if err := json.Unmarshal([]byte(line), &l); err != nil {
				t.Fatalf("%v: %q: %v", args, line, err)
			}
			if l.N != 5 || l.P50us <= 0 || l.P99us < l.P50us || l.MaxUs < l.P99us {
				t.Errorf("%v: %+v", args, l)
			}
			if pair := args[0] == "recover" && len(lines) == 2; pair != (l.FirstShare != nil) {
				t.Errorf("%v: first_share %v with %d locks: %s", args, l.FirstShare, len(lines), line)
			}
		}
	}
}

func TestFirstShares(t *testing.T) {
	us := func(xs ...int) []time.Duration {
		var ds []time.Duration
		for _, x := range xs {
			ds = append(ds, time.Duration(x)*time.Microsecond)
		}
		return ds
	}
	a, b := firstShares(us(1, 5, 3, 9), us(2, 4, 3, 10))
	if a != 0.625 || b != 0.375 {
		t.Fatalf("firstShares = %v, %v; want 0.625, 0.375", a, b)
	}
}

func TestRoundTickets(t *testing.T) {
	for _, c := range []struct {
		tickets int64
		rounds  int
		want    []int64
	}{
		{9, 3, []int64{3, 3, 3}},
		{10, 3, []int64{4, 3, 3}},
		{2, 3, []int64{1, 1, 0}},
		{5, 1, []int64{5}},
	} {
		var got []int64
		for k := range c.rounds {
			got = append(got, roundTickets(c.tickets, c.rounds, k))
		}
		if diff := cmp.Diff(c.want, got); diff != "" {
			t.Errorf("%d tickets in %d rounds (-want +got):\n%s", c.tickets, c.rounds, diff)
		}
	}
}

// TestMerge: counts add up, ops/s is the median round's, shares are over
// the buyers' sums, and a torn file (remaining -1) stays visible.
func TestMerge(t *testing.T) {
	rounds := []Result{
		{Backend: "x", Procs: 2, Tickets: 10, Seconds: 1, OpsPerSec: 10, Sold: 10, PerBuyer: []int64{4, 6}},
		{Backend: "x", Procs: 2, Tickets: 10, Seconds: 2, OpsPerSec: 5, Sold: 10, Oversold: 1, PerBuyer: []int64{6, 4}},
		{Backend: "x", Procs: 2, Tickets: 10, Seconds: 0.1, OpsPerSec: 100, Sold: 9, Remaining: 1, Lost: 2, Torn: 3, PerBuyer: []int64{1, 8}},
	}
	got := merge(rounds)
	want := Result{
		Backend: "x", Procs: 2, Tickets: 30, Seconds: 3.1, OpsPerSec: 10, Sold: 29, Remaining: 1,
		Oversold: 1, Lost: 2, Torn: 3, PerBuyer: []int64{11, 18},
		MinShare: 11 / 14.5, MaxShare: 18 / 14.5, Rounds: 3, RoundOpsPerSec: []float64{10, 5, 100},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("merge (-want +got):\n%s", diff)
	}
	if rounds[0].PerBuyer[0] != 4 {
		t.Errorf("merge changed its first round's PerBuyer: %v", rounds[0].PerBuyer)
	}
	rounds[1].Remaining, rounds[1].Broken = -1, true
	if got := merge(rounds); got.Remaining != -1 || !got.Broken {
		t.Errorf("a torn round: remaining %d, broken %v; want -1, true", got.Remaining, got.Broken)
	}
}

// TestRecoverWaiterFailsEarly: a waiter that returns before its lock's
// owner is killed ends the measurement with its error (it used to wait
// for a waiters bit nobody would set), and the holder is reaped.
func TestRecoverWaiterFailsEarly(t *testing.T) {
	ctl, err := newControl()
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.remove()
	r, err := newRecoverer(t.Context(), "shm-mutex", ctl)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	boom := errors.New("boom")
	r.take = func() (int64, error) { return 0, boom }
	if _, err := r.once(t.Context(), ctl); !errors.Is(err, boom) {
		t.Fatalf("once = %v, want the waiter's error", err)
	}
}

// TestLatencyGaps: bench latency -json prints one object per backend and
// process count, with the fields scripts rely on, and numbers that hang
// together.
func TestLatencyGaps(t *testing.T) {
	kinds := latencyBackends() // the C ones too, when there is a compiler: yard's histograms
	stdout, _, err := runArgs(t, "latency", "-json", "-backends", strings.Join(kinds, ","), "-procs", "1,2", "-tickets", "200000")
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(stdout), "\n")
	if len(lines) != 2*len(kinds) {
		t.Fatalf("%d lines, want %d:\n%s", len(lines), 2*len(kinds), stdout)
	}
	for _, line := range lines {
		var obj map[string]any
		if err := json.Unmarshal([]byte(line), &obj); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		for _, f := range []string{"backend", "procs", "gap_p50_ns", "gap_p99_ns", "gap_p999_ns", "gap_max_ns", "mean_wait_us", "time_p99_us", "share_over_100us", "ops_per_sec", "timed_ops_per_sec", "clock_ns"} {
			if _, ok := obj[f]; !ok {
				t.Errorf("no field %q in %s", f, line)
			}
		}
		var g GapResult
		json.Unmarshal([]byte(line), &g)
		if g.GapP50ns > g.GapP99ns || g.GapP99ns > g.GapP999ns || g.GapP999ns > g.GapMaxns || g.MeanWaitUs <= 0 ||
			g.MeanWaitOver1msUs < 0 || g.MeanWaitOver1msUs > 1.13*g.MeanWaitUs || // gaphist.MeanWaitFrom: squares within 13%
			g.ShareOver100us < 0 || g.ShareOver100us > 1 || g.OpsPerSec <= 0 || g.TimedOpsPerSec <= 0 || g.ClockNs <= 0 {
			t.Errorf("numbers that do not hang together: %+v", g)
		}
		// The histogram is the gaps': one count per gap, buckets in
		// order, the longest gap in the last.
		var n uint64
		for i, b := range g.Hist {
			if b.Count == 0 || b.LoNs >= b.HiNs || i > 0 && b.LoNs < g.Hist[i-1].HiNs {
				t.Errorf("bucket %d of %+v", i, g.Hist)
			}
			n += b.Count
		}
		if n != g.Gaps || len(g.Hist) == 0 || g.GapMaxns < g.Hist[len(g.Hist)-1].LoNs || g.GapMaxns >= g.Hist[len(g.Hist)-1].HiNs {
			t.Errorf("histogram of %d gaps for %d, longest %d ns: %+v", n, g.Gaps, g.GapMaxns, g.Hist)
		}
	}
}

// TestNoCompiler: without a C compiler the default runs leave the C
// yardsticks out and say so; the rest runs.
func TestNoCompiler(t *testing.T) {
	t.Setenv("CC", "")
	t.Setenv("PATH", t.TempDir()) // no cc, no gcc, no redis-server
	if haveC() || slices.ContainsFunc(defaultBackends(""), isC) || slices.Contains(latencyBackends(), cRobust) || slices.Contains(queueBackends(), qCRing) {
		t.Fatal("C yardsticks offered without a compiler")
	}
	stdout, stderr, err := runArgs(t, "-json", "-procs", "1", "-tickets", "2000", "-rounds", "1")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(stderr, "no C compiler") || strings.Contains(stdout, `"c-`) {
		t.Fatalf("stdout %q, stderr %q; want no C rows and a word on why", stdout, stderr)
	}
	if n := strings.Count(stdout, "\n"); n != len(backend.Names) {
		t.Fatalf("%d rows, want %d:\n%s", n, len(backend.Names), stdout)
	}
}

// TestLatencyRounds: with -rounds, bench latency still prints one object
// per backend and process count, pooling the rounds: rounds says how many,
// and the timed sales' seconds are those of all of them.
func TestLatencyRounds(t *testing.T) {
	one, _, err := runArgs(t, "latency", "-json", "-backends", "shm-mutex", "-procs", "2", "-tickets", "200000")
	if err != nil {
		t.Fatal(err)
	}
	three, _, err := runArgs(t, "latency", "-json", "-backends", "shm-mutex,shm-lockfree", "-procs", "2", "-tickets", "200000", "-rounds", "3")
	if err != nil {
		t.Fatal(err)
	}
	var g1 GapResult
	if err := json.Unmarshal([]byte(strings.TrimSpace(one)), &g1); err != nil {
		t.Fatalf("%q: %v", one, err)
	}
	if g1.Rounds != 1 {
		t.Errorf("rounds = %d without -rounds, want 1", g1.Rounds)
	}
	lines := strings.Split(strings.TrimSpace(three), "\n")
	if len(lines) != 2 {
		t.Fatalf("%d lines with -rounds 3, want 2 (one per backend):\n%s", len(lines), three)
	}
	for _, line := range lines {
		var g GapResult
		if err := json.Unmarshal([]byte(line), &g); err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		if g.Rounds != 3 || g.Tickets != 200000 || g.Oversold != 0 || g.Lost != 0 {
			t.Errorf("pooled row %+v: want rounds 3 of 200000 tickets, nothing oversold or lost", g)
		}
		if g.Gaps != 3*200000 {
			t.Errorf("%d gaps pooled, want one per timed buy of the 3 sales: %d", g.Gaps, 3*200000)
		}
		if g.OpsPerSec <= 0 || g.TimedOpsPerSec <= 0 || g.Seconds <= 0 {
			t.Errorf("pooled rates %+v", g)
		}
	}
	if _, _, err := runArgs(t, "latency", "-rounds", "0"); err == nil {
		t.Error("-rounds 0 accepted")
	}
}

// TestBrokenFileFootnote: a torn db file's verdict keeps the file's own
// first bytes, merge keeps them, and the table's footnote prints them
// quoted (it used to print the same `{"count": 958}}` whatever the file
// held).
func TestBrokenFileFootnote(t *testing.T) {
	path := filepath.Join(t.TempDir(), "db.txt")
	torn := `{"count": 4711}}{"count": 4710}` + "\n" + `{"count": 47` + "\x00\x00 and more than forty bytes"
	if err := os.WriteFile(path, []byte(torn), 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := verify(t.Context(), backend.JSONNoLock, path, 100, 120)
	if err != nil {
		t.Fatal(err)
	}
	if !v.broken || v.remaining != -1 {
		t.Fatalf("verdict on a torn file: broken %v, remaining %d; want true, -1", v.broken, v.remaining)
	}
	if want := torn[:brokenHead]; v.brokenFile != want {
		t.Errorf("verdict's brokenFile = %q, want the file's first %d bytes %q", v.brokenFile, brokenHead, want)
	}

	rounds := []Result{
		{Backend: backend.JSONNoLock, Procs: 4, Tickets: 10, OpsPerSec: 1, Sold: 10, PerBuyer: []int64{10}},
		{Backend: backend.JSONNoLock, Procs: 4, Tickets: 10, OpsPerSec: 1, Sold: 12, Remaining: -1, Broken: true,
			BrokenFile: v.brokenFile, PerBuyer: []int64{12}},
		{Backend: backend.JSONNoLock, Procs: 4, Tickets: 10, OpsPerSec: 1, Sold: 12, Remaining: -1, Broken: true,
			BrokenFile: "a later round's file", PerBuyer: []int64{12}},
	}
	r := merge(rounds)
	if r.BrokenFile != v.brokenFile {
		t.Errorf("merge: BrokenFile %q, want the first torn round's %q", r.BrokenFile, v.brokenFile)
	}
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(`"broken_file":`)) {
		t.Errorf("-json has no broken_file: %s", b)
	}

	empty := Result{Backend: backend.JSONNoLock, Procs: 2, Remaining: -1, Broken: true} // torn to nothing
	whole := Result{Backend: backend.JSONNoLock, Procs: 8, Broken: true}                // a buyer gave up; whole again
	var out strings.Builder
	printTable(&out, []Result{empty, r, whole})
	want := fmt.Sprintf("* the unlocked writers tore the db file for good (2 procs: \"\"; 4 procs: %q; "+
		"8 procs: a buyer gave up on it, but it parsed again after the run)", v.brokenFile)
	if !strings.Contains(out.String(), want) {
		t.Errorf("footnote: want %s in:\n%s", want, out.String())
	}
	out.Reset()
	printTable(&out, []Result{{Backend: backend.JSONFlock, Procs: 1}})
	if strings.Contains(out.String(), "*") {
		t.Errorf("a table with no torn file has a footnote:\n%s", out.String())
	}
}
