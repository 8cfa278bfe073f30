//go:build linux

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/internal/backend"
	"github.com/shmkit/shmkit/internal/gaphist"
	"github.com/shmkit/shmkit/ticketshm"
	"github.com/shmkit/shmkit/ticketshm/jsonfile"
)

// backends lists every backend the bench knows, in table order: the
// ticketshm stores, the C yardsticks, and Redis.
func backends() []string {
	return append(append(slices.Clone(backend.Names), cBackends...), backend.Redis)
}

// defaultBackends are those the default command runs: all but Redis when
// there is no redis-server to start (nor -redis to use), and all but the
// C yardsticks when there is no C compiler to build them with.
func defaultBackends(redisAddr string) []string {
	out := backends()
	if redisAddr == "" && !haveRedisServer() {
		out = slices.DeleteFunc(out, backend.IsRedis)
	}
	if !haveC() {
		out = slices.DeleteFunc(out, isC)
	}
	return out
}

func known(kind string) bool { return slices.Contains(backends(), kind) }

func haveRedisServer() bool {
	_, err := exec.LookPath("redis-server")
	return err == nil
}

// redisAddr is the server the redis backend uses in this process: -redis,
// or one the harness started.
var redisAddr string

// verdict is what a finished run's store says.
type verdict struct {
	sold, remaining, oversold, lost int64
	broken                          bool   // the store cannot say what remains
	brokenFile                      string // then: the start of the torn file, as it was
}

// brokenHead is how much of a torn db file a verdict keeps: enough to
// show the damage in a footnote.
const brokenHead = 40

// fileHead is the first n bytes of the file at path ("" if unreadable).
func fileHead(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return string(b[:min(len(b), n)])
}

var storeSeq atomic.Int64

// createStore makes a fresh store of kind with tickets and returns its
// name (a segment name, or a file path under dir for the JSON stores).
func createStore(ctx context.Context, kind, dir string, tickets int64) (string, error) {
	if isC(kind) {
		return createC(kind, tickets)
	}
	name := fmt.Sprintf("bench.%d.%d", os.Getpid(), storeSeq.Add(1))
	switch {
	case backend.IsJSON(kind):
		name = filepath.Join(dir, name+".db.txt")
	case backend.IsRedis(kind):
		if redisAddr == "" {
			return "", errors.New("bench: no Redis server (give -redis ADDR, or install redis-server)")
		}
		name = redisAddr + "/shmkit." + name
	}
	return name, backend.Create(ctx, kind, name, tickets)
}

func removeStore(kind, name string) error {
	if isC(kind) {
		return removeC(name)
	}
	return backend.Remove(kind, name)
}

// openSale opens kind's store name for a buyer and returns its loop, which
// buys until sold out and returns the tickets bought, for the unlocked
// JSON store the torn reads it survived, and when it stopped buying
// (CLOCK_MONOTONIC ns; 0: when it returned); and a func that closes the
// store. A store that can fault in its shared pages ahead of use (a shm
// Counter: a ledger byte per ticket) does so here, so the sale measures
// the lock, not the first touch of each page. With h, the loop records
// the gap between consecutive buys in it (bench latency). A C yardstick
// runs in yard, which waits on ctl's barrier itself.
func openSale(ctx context.Context, kind, name string, tickets int64, h *gaphist.Hist, ctl *control) (sell func() (bought, torn, stopped int64, err error), closeStore func(), err error) {
	if isC(kind) {
		sellC, err := sellC(ctx, kind, name, tickets, h, ctl)
		if err != nil {
			return nil, nil, err
		}
		return func() (int64, int64, int64, error) {
			n, stopped, err := sellC()
			return n, 0, stopped, err
		}, func() {}, nil
	}
	st, closeAll, err := backend.OpenBuyer(ctx, kind, name, true)
	if err != nil {
		return nil, nil, err
	}
	loop := func() (int64, int64, error) { return sellAll(ctx, st) }
	if h != nil {
		loop = func() (int64, int64, error) { return sellTimed(ctx, st, h) }
	}
	return func() (int64, int64, int64, error) {
		n, t, err := loop()
		return n, t, 0, err
	}, func() { closeAll() }, nil
}

// sellAll is a buyer's loop over an open store.
func sellAll(ctx context.Context, st ticketshm.Store) (bought, torn int64, err error) {
	if b, ok := st.(*ticketshm.Buyer); ok {
		bought, err = sellBuyer(ctx, b)
		return bought, 0, err
	}
	defer func() {
		if u, ok := st.(*jsonfile.UnlockedStore); ok {
			torn = u.Torn()
		}
	}()
	for {
		_, err := st.Buy(ctx)
		switch {
		case err == nil:
			bought++
		case errors.Is(err, ticketshm.ErrSoldOut):
			return bought, 0, nil
		case errors.Is(err, jsonfile.ErrTorn):
			// A writer between its truncate and its write: read
			// again. A file torn for good is ErrBroken, which ends
			// the sale below.
		default:
			return bought, 0, err
		}
	}
}

// sellBuyer is sellAll's loop for a shm Counter's Buyer: Buy called
// directly, as a Go program's buyer calls it, which default.pgo inlines
// here (see doc.go, "Profile"). Not inlined itself: inlined into sellAll,
// the loop shared its frame and its deferred closure, and sold fewer
// tickets than through the interface.
//
//go:noinline
func sellBuyer(ctx context.Context, b *ticketshm.Buyer) (bought int64, err error) {
	for {
		_, err := b.Buy(ctx)
		switch {
		case err == nil:
			bought++
		case errors.Is(err, ticketshm.ErrSoldOut):
			return bought, nil
		default:
			return bought, err
		}
	}
}

// sellTimed is sellAll recording the gap between consecutive buys into h:
// one read of the monotonic clock per buy, as C's timed loops do.
func sellTimed(ctx context.Context, st ticketshm.Store, h *gaphist.Hist) (bought, torn int64, err error) {
	base := time.Now()
	last := uint64(time.Since(base))
	for {
		_, err := st.Buy(ctx)
		switch {
		case err == nil:
			bought++
			now := uint64(time.Since(base))
			h.Add(now - last)
			last = now
		case errors.Is(err, ticketshm.ErrSoldOut):
			return bought, 0, nil
		case errors.Is(err, jsonfile.ErrTorn):
		default:
			return bought, 0, err
		}
	}
}

// verify checks a store after its buyers, which report bought tickets in
// all, have finished.
func verify(ctx context.Context, kind, name string, tickets, bought int64) (verdict, error) {
	if isC(kind) {
		sold, err := soldC(name)
		if err != nil {
			return verdict{}, err
		}
		return account(tickets, tickets-sold, bought), nil
	}
	if backend.IsRedis(kind) {
		a, err := backend.RedisAudit(ctx, name)
		if err != nil {
			return verdict{}, err
		}
		v := account(tickets, a.Remaining, bought)
		if a.Sold+a.Remaining != tickets {
			v.lost += max(0, tickets-a.Sold-a.Remaining)
			v.oversold += max(0, a.Sold+a.Remaining-tickets)
		}
		return v, nil
	}
	if backend.IsJSON(kind) {
		st, err := jsonfile.OpenFlock(name)
		if err != nil {
			return verdict{}, err
		}
		defer st.Close()
		rem, err := st.Remaining(ctx)
		if errors.Is(err, jsonfile.ErrFormat) && kind == backend.JSONNoLock {
			// Torn for good: the count is gone. Every sale is
			// unaccounted for; report it, do not fail the run.
			return verdict{sold: bought, remaining: -1, oversold: max(0, bought-tickets), broken: true,
				brokenFile: fileHead(name, brokenHead)}, nil
		}
		if err != nil {
			return verdict{}, err
		}
		return account(tickets, rem, bought), nil
	}
	c, err := ticketshm.Open(context.Background(), name)
	if err != nil {
		return verdict{}, err
	}
	defer c.Close()
	a, err := c.Audit(context.Background())
	if err != nil {
		return verdict{}, err
	}
	v := verdict{sold: a.Sold, remaining: a.Remaining, oversold: a.Oversold, lost: a.Lost}
	if bought > a.Sold {
		v.oversold += bought - a.Sold // sales the ledger does not know
	}
	return v, nil
}

// account compares the tickets that left the count with the sales.
func account(tickets, remaining, bought int64) verdict {
	v := verdict{sold: bought, remaining: remaining}
	switch taken := tickets - remaining; {
	case bought > taken:
		v.oversold = bought - taken
	case bought < taken:
		v.lost = taken - bought
	}
	return v
}
