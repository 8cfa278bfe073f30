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
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

func init() {
	process.Register("chaos-buyer", chaosBuyerEntry)
	process.Register("chaos-hopper", chaosHopperEntry)
	process.Register("chaos-squatter", chaosSquatterEntry)
	process.Register("chaos-foreign", chaosForeignEntry)
}

// Exit statuses of chaos children other than 0 (done) and 1 (an error).
const (
	exitNotRecoverable = 3 // the mutex is not recoverable
	exitRefused        = 4 // a buyer of another PID namespace was refused
)

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
	st, _, err := backend.OpenBuyer(context.Background(), args[0], args[1], false)
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
			return process.Exit(exitNotRecoverable)
		case err != nil:
			return err
		}
	}
}

// chaosHopperEntry: args kind, store, control. Opens the store, buys a
// random handful of tickets, closes it, and again, until sold out or its
// SIGKILL: a buyer whose slot is released and claimed again all the time.
func chaosHopperEntry(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("chaos-hopper: want kind, store, control; got %q", args)
	}
	ctl, err := openControl(args[2])
	if err != nil {
		return err
	}
	ready := false
	for {
		st, closeAll, err := backend.OpenBuyer(context.Background(), args[0], args[1], false)
		if err != nil {
			return err
		}
		if !ready {
			ctl.ready().Add(1)
			ready = true
		}
		for range 1 + rand.IntN(5000) {
			_, err := st.Buy(context.Background())
			switch {
			case errors.Is(err, ticketshm.ErrSoldOut):
				return closeAll()
			case errors.Is(err, semaphore.ErrNotRecoverable):
				fmt.Fprintln(os.Stderr, err)
				return process.Exit(exitNotRecoverable)
			case err != nil:
				return err
			}
		}
		if err := closeAll(); err != nil {
			return err
		}
	}
}

// chaosSquatterEntry: args store, control. Takes a process slot of the
// store's segment without using the Counter (as a process of another
// record in the segment would), and sits on it until its SIGKILL: the
// slot of a dead buyer, claimed by a process that never settles it.
func chaosSquatterEntry(args []string) error {
	if len(args) != 2 {
		return fmt.Errorf("chaos-squatter: want store, control; got %q", args)
	}
	ctl, err := openControl(args[1])
	if err != nil {
		return err
	}
	seg, err := shm.Open(args[0], ticketshm.Tag)
	if err != nil {
		return err
	}
	if _, err := seg.Slot(context.Background()); err != nil {
		return err
	}
	ctl.ready().Add(1)
	for {
		time.Sleep(time.Hour)
	}
}

// chaosForeignEntry: args kind, store, control. A buyer in a PID namespace
// of its own, started while the others buy: it must be refused
// (shm.ErrNamespace, exit status exitRefused); if it opens the store it
// buys like the others.
func chaosForeignEntry(args []string) error {
	if len(args) != 3 {
		return fmt.Errorf("chaos-foreign: want kind, store, control; got %q", args)
	}
	if _, err := backend.Open(context.Background(), args[0], args[1]); errors.Is(err, shm.ErrNamespace) {
		return process.Exit(exitRefused)
	}
	return chaosBuyerEntry(args)
}

// ChaosResult is the JSON of bench chaos.
type ChaosResult struct {
	Backend  string `json:"backend"`
	Procs    int    `json:"procs"`
	Kills    int    `json:"kills"`
	Buys     int64  `json:"buys"`
	Oversold int64  `json:"oversold"`
	Lost     int64  `json:"lost"`
	// InFlight counts buys between CAS and commit in logs Audit judged
	// live, with every buyer dead: a dead buyer's log taken for a live
	// one's, whose tickets show as lost too. It must be 0.
	InFlight       int64 `json:"in_flight"`
	DoubleSold     int64 `json:"double_sold"` // Locked: sales of tickets sold already (Audit.DoubleSold)
	NotRecoverable int   `json:"not_recoverable"`
	BuyerErrors    int   `json:"buyer_errors"` // buyers that failed other than by our SIGKILL
	Rounds         int   `json:"rounds"`       // counters sold out and checked, plus the last one
	// SlotClaims counts the claims of the counters' process slots (the
	// generations in their slot tables): with -churn, many more than
	// procs+kills, slots being taken over again and again.
	SlotClaims uint64 `json:"slot_claims"`
	// Foreign buyers were started in PID namespaces of their own
	// (-foreign, root only); ForeignRefused of them were refused
	// (shm.ErrNamespace), as every one must be while the others buy.
	Foreign        int     `json:"foreign"`
	ForeignRefused int     `json:"foreign_refused"`
	Seconds        float64 `json:"seconds"`
}

func runChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench chaos", "bench chaos [-kills K] [-backend shm-mutex|shm-lockfree] [-procs N] [-tickets N] [-churn=false] [-foreign=false] [-json]", stderr)
	kills := fs.Int("kills", 1000, "SIGKILLs to deliver")
	kind := fs.String("backend", backend.ShmMutex, "shm-mutex or shm-lockfree")
	procs := fs.Int("procs", 4, "buyer processes running at once")
	tickets := fs.Int64("tickets", 20_000_000, "tickets per counter; a sold-out counter is checked and replaced")
	churn := fs.Bool("churn", true, "one buyer opens and closes the counter over and over, and a process that does not buy takes slots of the dead")
	foreign := fs.Bool("foreign", os.Geteuid() == 0, "every 10th kill, start a buyer in a PID namespace of its own, which must be refused (needs root)")
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
	res, err := chaos(ctx, chaosConfig{*kind, *procs, *kills, *tickets, *churn, *foreign}, newProgress(stderr, *kills, "killing"))
	if err != nil {
		return err
	}
	if *asJSON {
		if err := json.NewEncoder(stdout).Encode(res); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "chaos %s, %d buyers: kills: %d, buys: %d, oversold: %d, lost: %d, double_sold: %d, not_recoverable: %d, buyer_errors: %d, slot_claims: %d, foreign refused: %d of %d (%d counters, %.1fs)\n",
			res.Backend, res.Procs, res.Kills, res.Buys, res.Oversold, res.Lost, res.DoubleSold, res.NotRecoverable, res.BuyerErrors, res.SlotClaims, res.ForeignRefused, res.Foreign, res.Rounds, res.Seconds)
	}
	if res.Oversold != 0 || res.Lost != 0 || res.InFlight != 0 || res.DoubleSold != 0 || res.NotRecoverable != 0 || res.BuyerErrors != 0 || res.ForeignRefused != res.Foreign {
		return fmt.Errorf("bench chaos: the counter did not survive: %+v", res)
	}
	return nil
}

// chaosConfig is what bench chaos was asked for.
type chaosConfig struct {
	kind           string
	procs, kills   int
	tickets        int64
	churn, foreign bool
}

// chaos runs procs buyers on a counter and SIGKILLs a random one at a
// random moment, kills times, starting a new buyer each time. With churn,
// one of the buyers is a hopper (it opens and closes the counter over and
// over) and a squatter, replaced at every kill, takes slots without
// buying. A counter that sells out is audited and replaced. Every counter
// is audited.
func chaos(ctx context.Context, cfg chaosConfig, bar progress) (res ChaosResult, err error) {
	res = ChaosResult{Backend: cfg.kind, Procs: cfg.procs}
	start := time.Now()
	ctl, err := newControl()
	if err != nil {
		return res, err
	}
	defer ctl.remove()
	ps := make([]*process.Process, cfg.procs)
	var squatter *process.Process
	defer func() {
		for _, p := range append(ps, squatter) {
			if p != nil {
				p.Kill()
				p.Join(context.Background())
			}
		}
	}()
	var store string
	newCounter := func() error {
		store, err = createStore(ctx, cfg.kind, "", cfg.tickets)
		return err
	}
	if err := newCounter(); err != nil {
		return res, err
	}
	defer func() { removeStore(cfg.kind, store) }()

	// launch starts buyer i and waits until it is buying.
	launch := func(i int) error {
		entry := "chaos-buyer"
		if cfg.churn && i == 0 {
			entry = "chaos-hopper"
		}
		ps[i] = &process.Process{Entry: entry, Args: []string{cfg.kind, store, ctl.name()}, Daemon: true}
		_, err := ctl.startReady(ps[i]) // one that dies at once is counted by reap
		return err
	}
	// squat replaces the squatter, which takes the lowest free slot: the
	// one of the buyer killed last.
	squat := func() error {
		if !cfg.churn {
			return nil
		}
		if squatter != nil {
			squatter.Kill()
			squatter.Join(ctx)
		}
		squatter = &process.Process{Entry: "chaos-squatter", Args: []string{store, ctl.name()}, Daemon: true}
		_, err := ctl.startReady(squatter)
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
	// foreigner starts a buyer in a PID namespace of its own, which must
	// be refused while the others buy.
	foreigner := func() error {
		p := &process.Process{Entry: "chaos-foreign", Args: []string{cfg.kind, store, ctl.name()}, Daemon: true, NewPIDNamespace: true}
		if err := p.Start(); err != nil {
			return err
		}
		res.Foreign++
		done, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		p.Join(done)
		if code, _ := p.ExitCode(); code == exitRefused {
			res.ForeignRefused++
		}
		p.Kill()
		p.Join(ctx)
		return nil
	}
	// audit checks the counter once every buyer is gone.
	audit := func() error {
		// A buyer reaped by Join may hold its slot a little longer:
		// its open file, which carries the slot's lock, goes with the
		// last reference, and another task (a reader of its
		// /proc/PID/maps) can hold one for milliseconds. Audit leaves
		// a live slot's log unsettled, and its buy in flight would
		// count as lost: wait until no slot is held.
		if err := slotsReleased(ctx, store, 10*time.Second); err != nil {
			return err
		}
		c, err := ticketshm.Open(context.Background(), store)
		if err != nil {
			return err
		}
		defer c.Close()
		a, err := c.Audit(ctx)
		if errors.Is(err, semaphore.ErrNotRecoverable) {
			res.NotRecoverable++
		}
		if err != nil {
			return err
		}
		// Every buyer is dead and its slot released, so Audit has
		// settled their in-flight buys: a ticket taken with no owner
		// now is lost for good.
		res.Rounds++
		res.Buys += a.Sold
		res.Oversold += a.Oversold
		res.Lost += a.Lost
		res.InFlight += a.InFlight
		res.DoubleSold += a.DoubleSold
		if a.Lost != 0 || a.InFlight != 0 {
			// Say what the counter held, for whoever reads the failure.
			if seg, err := shm.OpenPrivate(store); err == nil {
				in, err := ticketshm.Inspect(seg)
				seg.Close()
				b, _ := json.Marshal(in)
				fmt.Fprintf(os.Stderr, "bench chaos: round %d lost %d, in flight %d; the counter (%v): %s\n", res.Rounds, a.Lost, a.InFlight, err, b)
			}
		}
		if seg, err := shm.Open(store, ticketshm.Tag); err == nil {
			for i := range shm.MaxSlots {
				res.SlotClaims += seg.SlotGen(i)
			}
			seg.Close()
		}
		return nil
	}
	stopAll := func() {
		for i, p := range ps {
			p.Kill()
			p.Join(ctx)
			reap(i, true)
		}
		if squatter != nil {
			squatter.Kill()
			squatter.Join(ctx)
			squatter = nil
		}
	}

	for i := range ps {
		if err := launch(i); err != nil {
			return res, err
		}
	}
	idleRounds := 0 // counters sold out with no kill in between
	for res.Kills < cfg.kills {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		if anyExited(ps) {
			// Sold out (or a buyer failed, which reap counts):
			// audit this counter and start a fresh one.
			stopAll()
			if err := audit(); err != nil {
				return res, err
			}
			if idleRounds++; idleRounds > 100 {
				return res, fmt.Errorf("bench chaos: %d tickets sell out before the buyers are all started; raise -tickets", cfg.tickets)
			}
			removeStore(cfg.kind, store)
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
		i := rand.IntN(cfg.procs)
		ps[i].Kill()
		ps[i].Join(ctx)
		reap(i, true)
		res.Kills++
		idleRounds = 0
		bar.Add(1)
		if err := squat(); err != nil {
			return res, err
		}
		if cfg.foreign && res.Kills%10 == 0 {
			if err := foreigner(); err != nil {
				return res, err
			}
		}
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

// slotsReleased waits until no process holds a slot of the segment name,
// polling every millisecond, for up to limit.
func slotsReleased(ctx context.Context, name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		seg, err := shm.OpenPrivate(name)
		if err != nil {
			return err
		}
		slots, err := seg.Slots()
		seg.Close()
		if err != nil {
			return err
		}
		held := 0
		for _, s := range slots {
			if s.Alive {
				held++
			}
		}
		switch {
		case held == 0:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("bench chaos: %s: %d process slots still held %v after every buyer was reaped", name, held, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// anyExited reports whether a buyer has ended by itself (sold out, or an
// error that reap will count).
func anyExited(ps []*process.Process) bool {
	for _, p := range ps {
		if !p.IsAlive() {
			return true
		}
	}
	return false
}
