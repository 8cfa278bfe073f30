//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

func init() {
	process.Register("noop", func([]string) error { return nil })
	process.Register("holder", holderEntry)
	process.Register("waiter", waiterEntry)
}

// Latency is the JSON of bench recover and bench spawn.
type Latency struct {
	Scenario string  `json:"scenario"`
	Lock     string  `json:"lock,omitempty"` // recover: shm-mutex or c-robust
	N        int     `json:"n"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	MaxUs    float64 `json:"max_us"`
	// FirstShare (recover, with two locks): the share of the paired
	// deaths (one of each lock, back to back) in which this lock's
	// waiter returned sooner. Two locks that wait for the same kernel
	// event read about 0.5 each.
	FirstShare *float64 `json:"first_share,omitempty"`
}

func summarize(scenario, lock string, ds []time.Duration) Latency {
	slices.Sort(ds)
	us := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / 1e3 }
	at := func(q float64) time.Duration {
		i := int(q*float64(len(ds))+0.999999) - 1
		return ds[min(max(i, 0), len(ds)-1)]
	}
	return Latency{Scenario: scenario, Lock: lock, N: len(ds), P50us: us(at(0.5)), P99us: us(at(0.99)), MaxUs: us(ds[len(ds)-1])}
}

func printLatency(w io.Writer, asJSON bool, l Latency) error {
	if asJSON {
		return json.NewEncoder(w).Encode(l)
	}
	what := l.Scenario
	if l.Lock != "" {
		what += " " + l.Lock
	}
	first := ""
	if l.FirstShare != nil {
		first = fmt.Sprintf("  first in %.0f%% of pairs", 100**l.FirstShare)
	}
	_, err := fmt.Fprintf(w, "%-18s n=%d  p50 %.0f µs  p99 %.0f µs  max %.0f µs%s\n", what, l.N, l.P50us, l.P99us, l.MaxUs, first)
	return err
}

func runSpawn(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench spawn", "bench spawn [-n N] [-warm W | -exec PATH] [-json]", stderr)
	n := fs.Int("n", 200, "children to start and join, one at a time")
	execPath := fs.String("exec", "", "start and wait for this program instead (os/exec, no arguments): a yardstick")
	warmN := fs.Int("warm", 0, "children to keep started ahead of need (process.KeepWarm); 0 starts each cold")
	pause := fs.Duration("pause", 0, "wait between children (lets the warm ones be replaced)")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n <= 0 {
		return usageError(fs, "-n %d: want at least 1", *n)
	}
	if *warmN < 0 {
		return usageError(fs, "-warm %d: want 0 or more", *warmN)
	}
	if *execPath != "" && *warmN > 0 {
		return usageError(fs, "-exec and -warm: want one of them")
	}
	start := func() error {
		p := &process.Process{Entry: "noop"}
		if err := p.Start(); err != nil {
			return err
		}
		return p.Join(context.Background())
	}
	what := "spawn"
	if *warmN > 0 {
		if err := process.KeepWarm(*warmN); err != nil {
			return err
		}
		defer process.KeepWarm(0)
		what = fmt.Sprintf("spawn warm=%d", *warmN)
		time.Sleep(100 * time.Millisecond) // let the first ones start
	}
	if *execPath != "" {
		path, err := exec.LookPath(*execPath)
		if err != nil {
			return usageError(fs, "-exec: %v", err)
		}
		what = "exec " + filepath.Base(path)
		start = func() error {
			cmd := exec.CommandContext(ctx, path) // Ctrl-C stops a program that hangs
			cmd.Stdout, cmd.Stderr = stderr, stderr
			if err := cmd.Run(); err != nil {
				// Not wrapped: an *exec.ExitError has an exit code, and
				// process.Main would exit with it silently.
				return fmt.Errorf("bench spawn -exec %s: %v", path, err)
			}
			return nil
		}
	}
	bar := newProgress(stderr, *n, "spawning")
	ds := make([]time.Duration, 0, *n)
	for range *n {
		if err := ctx.Err(); err != nil {
			return err
		}
		t0 := time.Now()
		if err := start(); err != nil {
			return err
		}
		ds = append(ds, time.Since(t0))
		bar.Add(1)
		time.Sleep(*pause)
	}
	bar.Finish()
	return printLatency(stdout, *asJSON, summarize(what, "", ds))
}

// holderEntry: args kind, store, control. Takes the lock, says so in the
// control segment, and waits for its SIGKILL holding it.
func holderEntry(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("holder: want kind, store, control; got %q", args)
	}
	ctl, err := openControl(args[2])
	if err != nil {
		return err
	}
	if args[0] == cRobust {
		return holdC(args[1], ctl)
	}
	m, err := semaphore.OpenMutex(context.Background(), args[1])
	if err != nil {
		return err
	}
	err = m.Lock()
	if errors.Is(err, semaphore.ErrOwnerDead) {
		err = m.Consistent() // a previous holder died: nothing to repair
	}
	if err != nil {
		return err
	}
	ctl.ready().Add(1)
	for {
		// Hold it until killed. (select {} would crash with "all
		// goroutines are asleep": an exit, not the kill we time.)
		time.Sleep(time.Hour)
	}
}

func runRecover(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench recover", "bench recover [-n N] [-json]", stderr)
	n := fs.Int("n", 200, "owner deaths to recover from, per lock")
	asJSON := fs.Bool("json", false, "print one JSON object per lock")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n <= 0 {
		return usageError(fs, "-n %d: want at least 1", *n)
	}
	ctl, err := newControl()
	if err != nil {
		return err
	}
	defer ctl.remove()
	locks := []string{"shm-mutex"}
	if haveC() { // and c-robust when yard builds (prepareC says why not)
		l, err := prepareC(ctx, []string{cRobust}, false, stderr)
		if err != nil {
			return err
		}
		locks = append(locks, l...)
	}
	var rs []*recoverer
	defer func() {
		for _, r := range rs {
			r.close()
		}
	}()
	for _, lock := range locks {
		r, err := newRecoverer(ctx, lock, ctl)
		if err != nil {
			return err
		}
		rs = append(rs, r)
	}
	// The locks take turns, one death each, so that both see the same
	// machine: on a noisy VM, n deaths of one lock and then n of the
	// other compare two different minutes as much as two locks.
	bar := newProgress(stderr, *n*len(rs), "killing owners")
	ds := make([][]time.Duration, len(rs))
	for i := range *n {
		if err := ctx.Err(); err != nil {
			return err
		}
		for j := range rs {
			r := rs[(i+j)%len(rs)] // and take turns going first
			d, err := r.once(ctx, ctl)
			if err != nil {
				return err
			}
			k := slices.Index(rs, r)
			ds[k] = append(ds[k], d)
			bar.Add(1)
		}
	}
	bar.Finish()
	out := make([]Latency, len(rs))
	for k, r := range rs {
		out[k] = summarize("recover", r.lock, slices.Clone(ds[k]))
	}
	if len(rs) == 2 {
		a, b := firstShares(ds[0], ds[1])
		out[0].FirstShare, out[1].FirstShare = &a, &b
	}
	for _, l := range out {
		if err := printLatency(stdout, *asJSON, l); err != nil {
			return err
		}
	}
	return nil
}

// firstShares compares paired times: the share of pairs in which a was
// shorter, and in which b was (ties count half to each).
func firstShares(a, b []time.Duration) (float64, float64) {
	var wins float64
	for i := range a {
		switch {
		case a[i] < b[i]:
			wins++
		case a[i] == b[i]:
			wins += 0.5
		}
	}
	n := float64(len(a))
	return wins / n, (n - wins) / n
}

// A recoverer times owner deaths of one lock: shm-mutex or c-robust.
type recoverer struct {
	lock  string
	store string
	word  *atomic.Uint32 // the futex word: bit 31 is set once a waiter sleeps
	// take is the waiter, a process of its own for either lock: it
	// locks, expecting the owner's death, repairs and unlocks, and
	// returns when the lock came (CLOCK_MONOTONIC ns).
	take  func() (took int64, err error)
	close func()
}

func newRecoverer(ctx context.Context, lock string, ctl *control) (*recoverer, error) {
	r := &recoverer{lock: lock}
	if lock == cRobust {
		store, err := createC(lock, 0)
		if err != nil {
			return nil, err
		}
		seg, err := openC(store)
		if err == nil {
			r.take, err = cWaiter(ctx, store)
		}
		if err != nil {
			if seg != nil {
				seg.Close()
			}
			removeC(store)
			return nil, err
		}
		r.store, r.word = store, wordAt(seg)
		r.close = func() { seg.Close(); removeC(store) }
		return r, nil
	}
	r.store = fmt.Sprintf("bench.%d.recover", os.Getpid())
	m, err := semaphore.CreateMutex(ctx, r.store)
	if err != nil {
		return nil, err
	}
	r.word = wordAt(m.Segment())
	r.take = func() (int64, error) {
		w := &process.Process{Entry: "waiter", Args: []string{r.store, ctl.name()}, Daemon: true}
		if err := w.Start(); err != nil {
			return 0, err
		}
		if err := w.Join(ctx); err != nil {
			// ctx ended (or the waiter failed): Join leaves it
			// running, and it must not outlive the measurement, nor
			// find the control segment removed under it.
			w.Kill()
			w.Join(context.Background())
			return 0, err
		}
		return ctl.took().Load(), nil
	}
	r.close = func() { m.Close(); shm.Remove(r.store) }
	return r, nil
}

// waiterEntry: args store, control. The waiter of bench recover for
// shm-mutex, a process of its own as yard's is for c-robust: it locks the
// Mutex store expecting its owner's death, notes when the lock came in
// the control segment, repairs and unlocks.
func waiterEntry(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("waiter: want store, control; got %q", args)
	}
	ctl, err := openControl(args[1])
	if err != nil {
		return err
	}
	m, err := semaphore.OpenMutex(context.Background(), args[0])
	if err != nil {
		return err
	}
	defer m.Close()
	err = m.Lock()
	took := monoNow()
	if !errors.Is(err, semaphore.ErrOwnerDead) {
		if err == nil {
			m.Unlock()
			return errors.New("bench recover: the lock came without ErrOwnerDead")
		}
		return err
	}
	if err := m.Consistent(); err != nil {
		return err
	}
	if err := m.Unlock(); err != nil {
		return err
	}
	ctl.took().Store(took)
	return nil
}

// once measures one time from the SIGKILL of the lock's owner to the
// moment a waiter that was asleep on it got it, with the owner's death
// reported (ErrOwnerDead, EOWNERDEAD).
func (r *recoverer) once(ctx context.Context, ctl *control) (time.Duration, error) {
	p := &process.Process{Entry: "holder", Args: []string{r.lock, r.store, ctl.name()}, Daemon: true}
	if ok, err := ctl.startReady(p); err != nil {
		return 0, err
	} else if !ok {
		return 0, fmt.Errorf("bench recover: holder died before taking the lock: %w", p.Join(ctx))
	}
	done := make(chan error, 1)
	var took int64
	go func() {
		var err error
		took, err = r.take()
		done <- err
	}()
	// Wait until the waiter sleeps on the futex (it sets the waiters
	// bit first), and a little more for it to be inside FUTEX_WAIT.
	for r.word.Load()&(1<<31) == 0 {
		select {
		case err := <-done: // it did not wait: never wait for its bit
			p.Kill()
			p.Join(context.Background()) // killed: reaped at once, even if ctx ended
			if err == nil {
				err = errors.New("bench recover: the waiter had the lock while its owner lived")
			}
			return 0, err
		default:
			time.Sleep(50 * time.Microsecond)
		}
	}
	time.Sleep(time.Millisecond)
	killed := monoNow()
	p.Kill()
	if err := <-done; err != nil {
		p.Join(context.Background())
		return 0, err
	}
	p.Join(context.Background()) // reaps it; the error says it was killed, as it was
	return time.Duration(took - killed), nil
}

// wordAt is the 32-bit futex word at the start of a segment's data: a
// Mutex record's word (semaphore's layout) or glibc's pthread_mutex_t
// __lock. Data is 64-byte aligned in a shared mapping.
func wordAt(seg *shm.Segment) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&seg.Data()[0]))
}
