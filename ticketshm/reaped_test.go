//go:build linux

package ticketshm_test

import (
	"context"
	"testing"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

// TestDeathMidBuyAfterReap: TestDeathMidBuy's lock-free case, with the
// dead buyer's slot lock living on after its reaping (as a reader of its
// /proc/PID/maps makes it in a full test run, where an adversarial
// review saw TestDeathMidBuy fail this way). Nothing was lost: the buyer took
// ticket 2 with its CAS and died before its commit. Inspect must say so
// (1 unsettled, OK) and Audit and Repair settle it; before, all of them
// took the buyer for a live one, and Audit said Lost 1, InFlight 1.
func TestDeathMidBuyAfterReap(t *testing.T) {
	ctx := context.Background()
	name, c := newCounter(t, ticketshm.LockFree, 10)
	if n, err := c.Buy(ctx); n != 1 || err != nil {
		t.Fatalf("first Buy = %d, %v", n, err)
	}
	p := testproc.Start(t, "mid", name, "lock-free")
	p.Expect("mid")
	release := p.HoldFile(t, shmtest.Path(t, name))
	p.Kill()
	p.Wait() // dead and reaped

	// A look first (it changes nothing), then Audit (which settles what
	// it judges dead), then Repair (an Open, which settles too).
	seg, err := shm.OpenPrivate(name)
	if err != nil {
		t.Fatal(err)
	}
	in, err := ticketshm.Inspect(seg)
	seg.Close()
	if err != nil {
		t.Fatal(err)
	}
	a, err := c.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rep, rerr := ticketshm.Repair(ctx, name)
	t.Logf("lingering: audit sold %d lost %d in flight %d ok %v; inspect unsettled %d; repair settled %d (%v) after.ok %v",
		a.Sold, a.Lost, a.InFlight, a.OK(), in.Unsettled, rep.Settled, rerr, rep.After.Audit.OK())
	if !a.OK() || a.InFlight != 0 {
		t.Errorf("every buyer dead and reaped, nothing lost, but Audit says lost %d, in flight %d (OK %v)", a.Lost, a.InFlight, a.OK())
	}
	if !in.Audit.OK() || in.Unsettled != 1 {
		t.Errorf("Inspect (shmctl stat/audit) says lost %d, in flight %d, unsettled %d (want OK, 1 unsettled)", in.Audit.Lost, in.Audit.InFlight, in.Unsettled)
	}
	release()
	a, err = c.Audit(ctx)
	t.Logf("released: audit sold %d lost %d in flight %d ok %v (%v)", a.Sold, a.Lost, a.InFlight, a.OK(), err)
	if err != nil || !a.OK() || a.Sold != 2 {
		t.Fatalf("after the release: %+v, %v", a, err)
	}
}

// TestRepairCountAfterReap: Repair said what it settled as the
// difference of its two looks at the counter. A buyer that dies as a
// zombie whose slot lives on (alive to the first look and to Repair's
// Open) and is reaped before the second look (dead: 4 tickets unsettled)
// made it settle -4 tickets. Now it says what its Open's settlement
// wrote: 0, with the 4 left for the next Open or Audit.
func TestRepairCountAfterReap(t *testing.T) {
	ctx := context.Background()
	name := makeCounter(t, ticketshm.LockFree, 1000)
	b := testproc.Start(t, "log", name, "4", "none")
	b.ExpectPrefix("slot ")
	b.Expect("logged")
	release := b.HoldFile(t, shmtest.Path(t, name))
	b.Zombie(t)
	calls := 0
	// settleDead runs three times in Repair: the first look's (private),
	// the Open's, the second look's. Reap at the end of the second.
	ticketshm.SetSettleHook(func(s int) {
		if calls++; calls == 2*128 {
			release()
			b.Wait()
		}
	})
	rep, err := ticketshm.Repair(ctx, name)
	ticketshm.SetSettleHook(nil)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Settled != 0 || rep.Before.Unsettled != 0 || rep.After.Unsettled != 4 {
		t.Errorf("Repair settled %d tickets, before %d unsettled, after %d; want 0, 0, 4", rep.Settled, rep.Before.Unsettled, rep.After.Unsettled)
	}
	// The next one settles them.
	if rep, err = ticketshm.Repair(ctx, name); err != nil || rep.Settled != 4 || rep.After.Unsettled != 0 || !rep.After.Audit.OK() {
		t.Errorf("the next Repair: settled %d, after %d unsettled, audit %+v, %v; want 4, 0, OK", rep.Settled, rep.After.Unsettled, rep.After.Audit, err)
	}
}
