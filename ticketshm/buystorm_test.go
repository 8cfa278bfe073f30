//go:build linux

package ticketshm_test

// Tests written by an adversarial review of Locked buys through
// BiasedMutex.EnterFast, with buyers SIGSTOPped and SIGKILLed at random
// moments.

import (
	"context"
	"errors"
	"math/rand/v2"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/backend"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/ticketshm"
)

// TestBuyStopStorm: Locked buyers (two of them paced, so their bias is
// revoked idle, through the membarrier), stopped and killed at random
// moments, over and over. The audit is exact: nothing sold twice, nothing
// lost, and the next Buy sells the next ticket.
func TestBuyStopStorm(t *testing.T) {
	ctx := context.Background()
	kind := backend.ShmMutex
	name := storeName(t, kind)
	if err := backend.Create(ctx, kind, name, 200_000_000); err != nil {
		t.Fatal(err)
	}
	c, err := ticketshm.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	paces := []string{"2000", "500", "3", "40"}
	start := func(i int) *testproc.Proc {
		args := []string{kind, name}
		if paces[i] != "" {
			args = append(args, paces[i])
		}
		p := testproc.Start(t, "buy-forever", args...)
		p.Expect("running")
		return p
	}
	ps := make([]*testproc.Proc, len(paces))
	for i := range ps {
		ps[i] = start(i)
	}
	sold := func() int64 { r, _ := c.Remaining(ctx); return 200_000_000 - r }
	events := 1200
	if testing.Short() {
		events = 300
	}
	stops, kills := testproc.StopStorm(t, ps, events, 6, sold, start, nil)
	for _, p := range ps {
		p.Kill()
		p.Wait()
	}
	a, err := c.Audit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d stops, %d kills: %+v", stops, kills, struct{ Sold, Remaining, Lost, DoubleSold, Sales, Oversold, InFlight int64 }{a.Sold, a.Remaining, a.Lost, a.DoubleSold, a.Sales, a.Oversold, a.InFlight})
	if !a.OK() || a.InFlight != 0 {
		t.Fatalf("after %d stops and %d kills: Sold %d Remaining %d Lost %d DoubleSold %d Sales %d Oversold %d InFlight %d",
			stops, kills, a.Sold, a.Remaining, a.Lost, a.DoubleSold, a.Sales, a.Oversold, a.InFlight)
	}
	if n, err := c.Buy(ctx); err != nil || n != a.Sold+1 {
		t.Fatalf("next Buy = %d, %v; want ticket %d", n, err, a.Sold+1)
	}
}

// TestBuyStopStormTickets: four Locked buyers sell a counter out while
// they are stopped at random moments (no kills: each reports every
// ticket it sold): every ticket is sold exactly once, by one buyer. Three
// counters.
func TestBuyStopStormTickets(t *testing.T) {
	for round := range 3 {
		t.Run(strconv.Itoa(round), stopStormTickets)
	}
}

func stopStormTickets(t *testing.T) {
	const total = 3_000_000
	kind := backend.ShmMutex
	name, ps, release := startBuyers(t, "buyer", kind, total, 4)
	c, err := ticketshm.Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	release()
	sold := func() int64 { r, _ := c.Remaining(context.Background()); return total - r }
	stops := 0
	for sold() < total {
		i := rand.IntN(len(ps))
		ps[i].Signal(syscall.SIGSTOP)
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		ps[i].Signal(syscall.SIGCONT)
		stops++
		time.Sleep(time.Duration(rand.IntN(500)) * time.Microsecond)
	}
	seen := make(map[int64]int, total)
	for i, p := range ps {
		p.MustExitWithin(2 * time.Minute)
		for _, line := range strings.Split(p.Output(), "\n") {
			f := strings.Fields(line)
			if len(f) == 0 || f[0] != "sold" {
				continue
			}
			for _, s := range f[1:] {
				n, _ := strconv.ParseInt(s, 10, 64)
				if j, dup := seen[n]; dup {
					t.Fatalf("ticket %d sold by buyer %d and buyer %d", n, j, i)
				}
				seen[n] = i
			}
		}
	}
	if len(seen) != total {
		t.Fatalf("%d tickets sold, want %d", len(seen), total)
	}
	a, err := c.Audit(context.Background())
	if err != nil || !a.OK() || a.Sold != total {
		t.Fatalf("audit %+v, %v", a, err)
	}
	if _, err := c.Buy(context.Background()); !errors.Is(err, ticketshm.ErrSoldOut) {
		t.Fatalf("Buy after the sale: %v", err)
	}
	t.Logf("%d stops", stops)
}
