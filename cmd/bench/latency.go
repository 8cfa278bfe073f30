//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/forkexec"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

func init() {
	forkexec.Register("noop", func([]string) error { return nil })
	forkexec.Register("holder", holderEntry)
}

// Latency is the JSON of bench recover and bench spawn.
type Latency struct {
	Scenario string  `json:"scenario"`
	Lock     string  `json:"lock,omitempty"` // recover: shm-mutex or c-robust
	N        int     `json:"n"`
	P50us    float64 `json:"p50_us"`
	P99us    float64 `json:"p99_us"`
	MaxUs    float64 `json:"max_us"`
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
	_, err := fmt.Fprintf(w, "%-18s n=%d  p50 %.0f µs  p99 %.0f µs  max %.0f µs\n", what, l.N, l.P50us, l.P99us, l.MaxUs)
	return err
}

func runSpawn(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench spawn", "bench spawn [-n N] [-json]", stderr)
	n := fs.Int("n", 200, "children to start and join, one at a time")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n <= 0 {
		return usageError(fs, "-n %d: want at least 1", *n)
	}
	bar := newProgress(stderr, *n, "spawning")
	ds := make([]time.Duration, 0, *n)
	for range *n {
		t0 := time.Now()
		p := &forkexec.Process{Entry: "noop"}
		if err := p.Start(); err != nil {
			return err
		}
		if err := p.Join(context.Background()); err != nil {
			return err
		}
		ds = append(ds, time.Since(t0))
		bar.Add(1)
	}
	bar.Finish()
	return printLatency(stdout, *asJSON, summarize("spawn", "", ds))
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
	if args[0] == cRobustName {
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

// cRobustName is c-robust's name whether or not cgo is on.
const cRobustName = "c-robust"

func runRecover(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench recover", "bench recover [-n N] [-json]", stderr)
	n := fs.Int("n", 200, "owner deaths to recover from, per lock")
	asJSON := fs.Bool("json", false, "print one JSON object per lock")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n <= 0 {
		return usageError(fs, "-n %d: want at least 1", *n)
	}
	locks := []string{"shm-mutex"}
	if isC(cRobustName) {
		locks = append(locks, cRobustName)
	}
	bar := newProgress(stderr, *n*len(locks), "killing owners")
	var out []Latency
	for _, lock := range locks {
		ds, err := recoverLatency(context.Background(), lock, *n, bar)
		if err != nil {
			return err
		}
		out = append(out, summarize("recover", lock, ds))
	}
	bar.Finish()
	for _, l := range out {
		if err := printLatency(stdout, *asJSON, l); err != nil {
			return err
		}
	}
	return nil
}

// recoverLatency measures, n times, the time from the SIGKILL of a lock's
// owner to the return of a waiter that was asleep on it, with the owner's
// death reported (ErrOwnerDead, EOWNERDEAD).
func recoverLatency(ctx context.Context, lock string, n int, bar progress) ([]time.Duration, error) {
	ctl, err := newControl()
	if err != nil {
		return nil, err
	}
	defer ctl.remove()
	var (
		store   string
		word    *atomic.Uint32 // the futex word: bit 31 is set once a waiter sleeps
		takeRaw func() error   // the waiter: lock, expecting the owner's death
		cleanup func()
	)
	if lock == cRobustName {
		store, err = createC(lock, 0)
		if err != nil {
			return nil, err
		}
		seg, take, err := openCWaiter(store)
		if err != nil {
			removeC(store)
			return nil, err
		}
		word, takeRaw = wordAt(seg), take
		cleanup = func() { seg.Close(); removeC(store) }
	} else {
		store = fmt.Sprintf("bench.%d.recover", os.Getpid())
		m, err := semaphore.OpenMutex(ctx, store)
		if err != nil {
			return nil, err
		}
		word = wordAt(m.Segment())
		takeRaw = func() error {
			err := m.Lock()
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
			return m.Unlock()
		}
		cleanup = func() { m.Segment().Close(); shm.Remove(store) }
	}
	defer cleanup()

	ds := make([]time.Duration, 0, n)
	for range n {
		p := &forkexec.Process{Entry: "holder", Args: []string{lock, store, ctl.name()}, Daemon: true}
		if ok, err := ctl.startReady(p); err != nil {
			return nil, err
		} else if !ok {
			return nil, fmt.Errorf("bench recover: holder died before taking the lock: %w", p.Join(ctx))
		}
		done := make(chan error, 1)
		var took time.Time
		go func() {
			err := takeRaw()
			took = time.Now()
			done <- err
		}()
		// Wait until the waiter sleeps on the futex (it sets the
		// waiters bit first), and a little more for it to be inside
		// FUTEX_WAIT.
		for word.Load()&(1<<31) == 0 {
			time.Sleep(50 * time.Microsecond)
		}
		time.Sleep(time.Millisecond)
		killed := time.Now()
		p.Kill()
		if err := <-done; err != nil {
			p.Join(ctx)
			return nil, err
		}
		ds = append(ds, took.Sub(killed))
		p.Join(ctx)
		bar.Add(1)
	}
	return ds, nil
}

// wordAt is the 32-bit futex word at the start of a segment's data: a
// Mutex record's word (semaphore's layout) or glibc's pthread_mutex_t
// __lock. Data is 64-byte aligned in a shared mapping.
func wordAt(seg *shm.Segment) *atomic.Uint32 {
	return (*atomic.Uint32)(unsafe.Pointer(&seg.Data()[0]))
}
