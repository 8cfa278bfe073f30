//go:build linux

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"time"

	"github.com/shmkit/shmkit/internal/backend"
	"github.com/shmkit/shmkit/internal/forkexec"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/ticketshm"
)

func init() {
	forkexec.Register("chaos-buyer", chaosBuyerEntry)
}

// exitNotRecoverable is a chaos buyer's exit status when the mutex is
// not recoverable.
const exitNotRecoverable = 3

// chaosBuyerEntry: args kind, store, control. Buys until sold out (exit
// 0), an error (exit 1) or its SIGKILL.
func chaosBuyerEntry(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("chaos-buyer: want kind, store, control; got %q", args)
	}
	ctl, err := openControl(args[2])
	if err != nil {
		return err
	}
	st, err := backend.Open(context.Background(), args[0], args[1])
	if err != nil {
		return err
	}
	ctl.ready().Add(1)
	for {
		_, err := st.Buy(context.Background())
		switch {
		case errors.Is(err, ticketshm.ErrSoldOut):
			return nil
		case errors.Is(err, semaphore.ErrNotRecoverable):
			fmt.Fprintln(os.Stderr, err)
			return forkexec.Exit(exitNotRecoverable)
		case err != nil:
			return err
		}
	}
}

// ChaosResult is the JSON of bench chaos.
type ChaosResult struct {
	Backend        string  `json:"backend"`
	Procs          int     `json:"procs"`
	Kills          int     `json:"kills"`
	Buys           int64   `json:"buys"`
	Oversold       int64   `json:"oversold"`
	Lost           int64   `json:"lost"`
	NotRecoverable int     `json:"not_recoverable"`
	BuyerErrors    int     `json:"buyer_errors"` // buyers that failed other than by our SIGKILL
	Rounds         int     `json:"rounds"`       // counters sold out and checked, plus the last one
	Seconds        float64 `json:"seconds"`
}

func runChaos(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench chaos", "bench chaos [-kills K] [-backend shm-mutex|shm-lockfree] [-procs N] [-tickets N] [-json]", stderr)
	kills := fs.Int("kills", 1000, "SIGKILLs to deliver")
	kind := fs.String("backend", backend.ShmMutex, "shm-mutex or shm-lockfree")
	procs := fs.Int("procs", 4, "buyer processes running at once")
	tickets := fs.Int64("tickets", 20_000_000, "tickets per counter; a sold-out counter is checked and replaced")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	switch {
	case *kind != backend.ShmMutex && *kind != backend.ShmLockFree:
		return usageError(fs, "-backend %q: chaos runs shm-mutex or shm-lockfree", *kind)
	case *kills <= 0:
		return usageError(fs, "-kills %d: want at least 1", *kills)
	case *procs <= 0 || *procs > maxBuyers:
		return usageError(fs, "-procs %d: want 1 to %d", *procs, maxBuyers)
	case *tickets <= 0 || *tickets > maxTickets:
		return usageError(fs, "-tickets %d: want 1 to %d", *tickets, maxTickets)
	}
	res, err := chaos(context.Background(), *kind, *procs, *kills, *tickets, newProgress(stderr, *kills, "killing"))
	if err != nil {
		return err
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "chaos %s, %d buyers: kills: %d, buys: %d, oversold: %d, lost: %d, not_recoverable: %d, buyer_errors: %d (%d counters, %.1fs)\n",
			res.Backend, res.Procs, res.Kills, res.Buys, res.Oversold, res.Lost, res.NotRecoverable, res.BuyerErrors, res.Rounds, res.Seconds)
	}
	if res.Oversold != 0 || res.Lost != 0 || res.NotRecoverable != 0 || res.BuyerErrors != 0 {
		return fmt.Errorf("bench chaos: the counter did not survive: %+v", res)
	}
	return nil
}

// chaos runs procs buyers on a counter and SIGKILLs a random one at a
// random moment, kills times, starting a new buyer each time. A counter
// that sells out is audited and replaced. Every counter is audited.
func chaos(ctx context.Context, kind string, procs, kills int, tickets int64, bar progress) (res ChaosResult, err error) {
	res = ChaosResult{Backend: kind, Procs: procs}
	start := time.Now()
	ctl, err := newControl()
	if err != nil {
		return res, err
	}
	defer ctl.remove()
	ps := make([]*forkexec.Process, procs)
	defer func() {
		for _, p := range ps {
			if p != nil {
				p.Kill()
				p.Join(context.Background())
			}
		}
	}()
	var store string
	newCounter := func() error {
		store, err = createStore(ctx, kind, "", tickets)
		return err
	}
	if err := newCounter(); err != nil {
		return res, err
	}
	defer func() { removeStore(kind, store) }()

	// launch starts buyer i and waits until it is buying.
	launch := func(i int) error {
		ps[i] = &forkexec.Process{Entry: "chaos-buyer", Args: []string{kind, store, ctl.name()}, Daemon: true}
		_, err := ctl.startReady(ps[i]) // one that dies at once is counted by reap
		return err
	}
	// reap classifies how buyer i ended after a Join.
	reap := func(i int, killed bool) {
		code, _ := ps[i].ExitCode()
		switch {
		case killed && code == -9, code == 0:
		case code == exitNotRecoverable:
			res.NotRecoverable++
		default:
			res.BuyerErrors++
		}
	}
	// audit checks the counter once every buyer is gone.
	audit := func() error {
		c, err := ticketshm.Open(store, 0)
		if err != nil {
			return err
		}
		defer c.Close()
		a, err := c.Audit()
		if errors.Is(err, semaphore.ErrNotRecoverable) {
			res.NotRecoverable++
		}
		if err != nil {
			return err
		}
		// Every buyer is dead, so Audit has settled their in-flight
		// buys: a ticket taken with no owner now is lost for good.
		res.Rounds++
		res.Buys += a.Sold
		res.Oversold += a.Oversold
		res.Lost += a.Lost
		return nil
	}
	stopAll := func() {
		for i, p := range ps {
			p.Kill()
			p.Join(ctx)
			reap(i, true)
		}
	}

	for i := range ps {
		if err := launch(i); err != nil {
			return res, err
		}
	}
	idleRounds := 0 // counters sold out with no kill in between
	for res.Kills < kills {
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		if anyExited(ps) {
			// Sold out (or a buyer failed, which reap counts):
			// audit this counter and start a fresh one.
			stopAll()
			if err := audit(); err != nil {
				return res, err
			}
			if idleRounds++; idleRounds > 100 {
				return res, fmt.Errorf("bench chaos: %d tickets sell out before the buyers are all started; raise -tickets", tickets)
			}
			removeStore(kind, store)
			if err := newCounter(); err != nil {
				return res, err
			}
			for i := range ps {
				if err := launch(i); err != nil {
					return res, err
				}
			}
			continue
		}
		i := rand.IntN(procs)
		ps[i].Kill()
		ps[i].Join(ctx)
		reap(i, true)
		res.Kills++
		idleRounds = 0
		bar.Add(1)
		if err := launch(i); err != nil {
			return res, err
		}
	}
	bar.Finish()
	stopAll()
	if err := audit(); err != nil {
		return res, err
	}
	res.Seconds = time.Since(start).Seconds()
	return res, nil
}

// anyExited reports whether a buyer has ended by itself (sold out, or an
// error that reap will count).
func anyExited(ps []*forkexec.Process) bool {
	for _, p := range ps {
		if !p.IsAlive() {
			return true
		}
	}
	return false
}
