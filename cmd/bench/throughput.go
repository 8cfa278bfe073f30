//go:build linux

package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"

	"golang.org/x/term"

	"github.com/shmkit/shmkit/internal/backend"
	"github.com/shmkit/shmkit/internal/human"
	"github.com/shmkit/shmkit/internal/redistest"
)

// throughputFlags is the default command's command line.
type throughputFlags struct {
	backends []string
	procs    []int
	tickets  int64 // 0: size each run to about a second
	rounds   int   // each run is this many interleaved rounds
	json     bool
	out      string
	redis    string // -redis: an existing server; "" starts one if needed
	chosen   bool   // -backends given: nothing left out silently
}

func parseThroughput(args []string, stderr io.Writer) (throughputFlags, error) {
	fs := newFlags("bench", "bench [-backends a,b] [-procs 1,2,4,8] [-tickets N] [-rounds R] [-json] [-out DIR] [-redis ADDR]\n       bench chaos|recover|spawn -h", stderr)
	backendList := fs.String("backends", "", "backends to compare, comma-separated (known: "+strings.Join(backends(), ", ")+"; default: all, redis only if redis-server is installed or -redis is given)")
	redisFlag := fs.String("redis", "", "`ip:port` (or localhost:port; no DNS) of a Redis server for the redis backend (default: start a redis-server on a free loopback port)")
	procList := fs.String("procs", "1,2,4,8", "buyer process counts, comma-separated")
	tickets := fs.Int64("tickets", 0, "tickets per run (default: sized so each run lasts about a second)")
	rounds := fs.Int("rounds", 3, "split each run into this many rounds, taken in turn with the other backends' (at most the run's tickets)")
	asJSON := fs.Bool("json", false, "print one JSON object per run on stdout, nothing else")
	out := fs.String("out", "", "write results.json and throughput.svg to this directory")
	var f throughputFlags
	if err := parse(fs, args); err != nil {
		return f, err
	}
	f.redis = *redisFlag
	if f.redis != "" {
		if err := backend.CheckRedisAddr(f.redis); err != nil {
			return f, usageError(fs, "-redis %q: %v", f.redis, err)
		}
	}
	list := strings.Join(defaultBackends(f.redis), ",")
	if *backendList != "" {
		list, f.chosen = *backendList, true
	}
	var err error
	if f.backends, err = parseBackends(fs, list); err != nil {
		return f, err
	}
	if f.procs, err = parseProcs(fs, *procList); err != nil {
		return f, err
	}
	if *tickets < 0 || (*tickets == 0 && isSet(fs, "tickets")) || *tickets > maxTickets {
		return f, usageError(fs, "-tickets %d: want 1 to %d", *tickets, maxTickets)
	}
	if *rounds < 1 || *rounds > maxRounds {
		return f, usageError(fs, "-rounds %d: want 1 to %d", *rounds, maxRounds)
	}
	f.tickets, f.rounds, f.json, f.out = *tickets, *rounds, *asJSON, *out
	if f.out != "" {
		if err := checkWritable(f.out); err != nil {
			return f, usageError(fs, "-out %s: %v", f.out, err)
		}
	}
	return f, nil
}

// parseBackends parses a -backends list.
func parseBackends(fs *flag.FlagSet, list string) ([]string, error) {
	var out []string
	for _, b := range strings.Split(list, ",") {
		b = strings.TrimSpace(b)
		if !known(b) {
			return nil, usageError(fs, "unknown backend %q (known: %s)", b, strings.Join(backends(), ", "))
		}
		out = append(out, b)
	}
	return out, nil
}

// parseProcs parses a -procs list.
func parseProcs(fs *flag.FlagSet, list string) ([]int, error) {
	var out []int
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || n <= 0 || n > maxBuyers {
			return nil, usageError(fs, "-procs %q: want whole numbers from 1 to %d", s, maxBuyers)
		}
		out = append(out, n)
	}
	return out, nil
}

func runThroughput(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	f, err := parseThroughput(args, stderr)
	if err != nil {
		return err
	}
	if f.backends, err = prepareC(ctx, f.backends, f.chosen, stderr); err != nil {
		return err
	}
	if slices.Contains(f.backends, backend.Redis) {
		stop, err := useRedis(ctx, f.redis)
		if err != nil {
			return err
		}
		defer stop()
	}
	bar := newProgress(stderr, len(f.backends)*len(f.procs)*f.rounds, "selling")
	results, err := sellRuns(ctx, f, bar)
	if err != nil {
		return err
	}
	bar.Finish()
	speedups(results)
	if f.json {
		enc := json.NewEncoder(stdout)
		for _, r := range results {
			if err := enc.Encode(r); err != nil {
				return err
			}
		}
	} else {
		printTable(stdout, results)
	}
	if f.out != "" {
		if err := writeOut(f.out, results); err != nil {
			return err
		}
		if !f.json {
			fmt.Fprintf(stdout, "\nwrote %s and %s\n", filepath.Join(f.out, "results.json"), filepath.Join(f.out, "throughput.svg"))
		}
	}
	return nil
}

// sellRuns runs every (backend, procs) pair of f. At each process count
// the backends take turns, one round each, f.rounds times, and each takes
// the first turn in one round as often as it can: on a machine whose speed
// drifts over seconds (a VM with neighbours), n seconds of one backend and
// then n of the next compare two different moments as much as two
// backends. The results come out ordered by backend, then procs.
func sellRuns(ctx context.Context, f throughputFlags, bar progress) ([]Result, error) {
	rate := map[string]float64{} // each backend's rate at the last procs
	var results []Result
	for _, procs := range f.procs {
		tickets := make([]int64, len(f.backends))
		for i, kind := range f.backends {
			tickets[i] = f.tickets
			if tickets[i] == 0 {
				n, _, err := calibrate(ctx, kind, procs, rate[kind])
				if err != nil {
					return nil, err
				}
				tickets[i] = n
			}
		}
		rounds := make([][]Result, len(f.backends))
		for k := range f.rounds {
			for j := range f.backends {
				i := (j + k) % len(f.backends)
				n := roundTickets(tickets[i], f.rounds, k)
				if n == 0 {
					continue // fewer tickets than rounds
				}
				r, err := sell(ctx, f.backends[i], procs, n)
				if err != nil {
					return nil, err
				}
				rounds[i] = append(rounds[i], r)
				bar.Add(1)
			}
		}
		for i, kind := range f.backends {
			r := merge(rounds[i])
			rate[kind] = r.OpsPerSec
			results = append(results, r)
		}
	}
	slices.SortStableFunc(results, func(a, b Result) int {
		return slices.Index(f.backends, a.Backend) - slices.Index(f.backends, b.Backend)
	})
	return results, nil
}

// maxRounds bounds -rounds: each round spawns its buyers afresh.
const maxRounds = 100

// roundTickets is round k's part of a run of tickets in rounds rounds:
// equal parts, the first ones one larger if they do not divide evenly.
func roundTickets(tickets int64, rounds, k int) int64 {
	n := tickets / int64(rounds)
	if int64(k) < tickets%int64(rounds) {
		n++
	}
	return n
}

// merge folds the rounds of one run into its Result: tickets, seconds and
// the ledger's counts add up; ops_per_sec is the median round's rate (one
// round disturbed by the machine moves it less than it moves a sum), with
// every round's in round_ops_per_sec; a buyer's share is over all rounds
// (buyer i of each round counts as one buyer).
func merge(rounds []Result) Result {
	r := rounds[0]
	r.PerBuyer = slices.Clone(r.PerBuyer)
	r.RoundOpsPerSec = []float64{r.OpsPerSec}
	for _, x := range rounds[1:] {
		r.Tickets += x.Tickets
		r.Seconds += x.Seconds
		r.Sold += x.Sold
		if r.Remaining < 0 || x.Remaining < 0 {
			r.Remaining = -1 // a file still unreadable: see Broken
		} else {
			r.Remaining += x.Remaining
		}
		r.Oversold += x.Oversold
		r.Lost += x.Lost
		r.Torn += x.Torn
		r.Broken = r.Broken || x.Broken
		if r.BrokenFile == "" {
			r.BrokenFile = x.BrokenFile // the first torn round's file
		}
		for i, b := range x.PerBuyer {
			r.PerBuyer[i] += b
		}
		r.RoundOpsPerSec = append(r.RoundOpsPerSec, x.OpsPerSec)
	}
	r.Rounds = len(rounds)
	r.OpsPerSec = median(r.RoundOpsPerSec)
	r.MinShare, r.MaxShare = shares(r.PerBuyer)
	return r
}

// median of xs (the mean of the middle two for an even count).
func median(xs []float64) float64 {
	s := slices.Sorted(slices.Values(xs))
	n := len(s)
	if n%2 == 1 {
		return s[n/2]
	}
	return (s[n/2-1] + s[n/2]) / 2
}

// useRedis points the redis backend at addr, or at a redis-server it
// starts on a free loopback port (stopped by the returned func).
func useRedis(ctx context.Context, addr string) (stop func(), err error) {
	if addr != "" {
		// Asked now, not after every other backend has run.
		if err := backend.PingRedis(ctx, addr); err != nil {
			return nil, fmt.Errorf("bench: -redis %s: %w", addr, err)
		}
		redisAddr = addr
		return func() {}, nil
	}
	dir, err := os.MkdirTemp("", "shmkit-bench-redis-")
	if err != nil {
		return nil, err
	}
	srv, err := redistest.Start(dir, false)
	if err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	redisAddr = srv.Addr
	return func() { srv.Stop(); os.RemoveAll(dir) }, nil
}

// speedups fills SpeedupVsJSONFlock from the json-flock run at the same
// process count.
func speedups(rs []Result) {
	base := map[int]float64{}
	for _, r := range rs {
		if r.Backend == backend.JSONFlock {
			base[r.Procs] = r.OpsPerSec
		}
	}
	for i := range rs {
		if b := base[rs[i].Procs]; b > 0 {
			rs[i].SpeedupVsJSONFlock = rs[i].OpsPerSec / b
		}
	}
}

func printTable(w io.Writer, rs []Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "backend\tprocs\ttickets\tops/s\t× json-flock\toversold\tlost\ttorn\tmin share\tmax share\t")
	var broken []string // the footnote's torn files, one per starred row
	for _, r := range rs {
		speed := "-"
		if r.SpeedupVsJSONFlock > 0 {
			speed = fmt.Sprintf("%.1f", r.SpeedupVsJSONFlock)
		}
		torn := strconv.FormatInt(r.Torn, 10)
		if r.Broken {
			torn += "*"
			// Remaining -1: the file did not parse after the run either,
			// and BrokenFile is how it began. Otherwise a buyer gave up
			// on a file that a later write made whole again.
			file := "a buyer gave up on it, but it parsed again after the run"
			if r.Remaining < 0 {
				file = strconv.Quote(r.BrokenFile)
			}
			broken = append(broken, fmt.Sprintf("%d procs: %s", r.Procs, file))
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%s\t%s\t%d\t%d\t%s\t%.2f\t%.2f\t\n",
			r.Backend, r.Procs, r.Tickets, human.String(r.OpsPerSec), speed, r.Oversold, r.Lost, torn, r.MinShare, r.MaxShare)
	}
	tw.Flush()
	if len(broken) > 0 {
		fmt.Fprintf(w, "* the unlocked writers tore the db file for good (%s): buyers stopped, as Python's json.load would have raised\n",
			strings.Join(broken, "; "))
	}
}

// checkWritable makes dir if needed and proves a file can be created in
// it, before any run: a bad -out fails at once, not after a minute.
func checkWritable(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".bench-probe-*")
	if err != nil {
		return err
	}
	f.Close()
	return os.Remove(f.Name())
}

// writeOut writes results.json and then throughput.svg, each through a
// temporary file and a rename: a failure leaves no half-written file, and
// a chart that cannot be drawn does not cost the results.
func writeOut(dir string, rs []Result) error {
	js, err := json.MarshalIndent(rs, "", "  ")
	if err != nil {
		return err
	}
	results := filepath.Join(dir, "results.json")
	if err := writeAtomic(results, append(js, '\n')); err != nil {
		return err
	}
	svg, err := chart(rs)
	if err != nil {
		return fmt.Errorf("%w (the results are in %s)", err, results)
	}
	return writeAtomic(filepath.Join(dir, "throughput.svg"), svg)
}

func writeAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		os.Remove(f.Name())
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(f.Name())
		return err
	}
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		os.Remove(f.Name())
		return err
	}
	return os.Rename(f.Name(), path)
}

// progress is a bar on a terminal, nothing otherwise.
type progress interface {
	Add(int) error
	Finish() error
}

type silent struct{}

func (silent) Add(int) error { return nil }
func (silent) Finish() error { return nil }

func newProgress(w io.Writer, n int, what string) progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return silent{}
	}
	c := &counter{w: f, n: n, what: what}
	c.draw() // 0 of n before the first run ends
	return c
}

// counter is the progress line on a terminal: "what 3/12 (25%)",
// redrawn in place and cleared at the end. (A progress-bar library did
// this before; its package init ran in every buyer process.)
type counter struct {
	w       io.Writer
	n, done int
	what    string
}

func (c *counter) Add(k int) error {
	c.done += k
	return c.draw()
}

func (c *counter) draw() error {
	pct := 100
	if c.n > 0 {
		pct = 100 * c.done / c.n
	}
	_, err := fmt.Fprintf(c.w, "\r\x1b[K%s %d/%d (%d%%)", c.what, c.done, c.n, pct)
	return err
}

func (c *counter) Finish() error {
	_, err := fmt.Fprint(c.w, "\r\x1b[K")
	return err
}

// isSet reports whether the flag name was given on the command line.
func isSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}
