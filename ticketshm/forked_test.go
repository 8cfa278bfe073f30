//go:build linux

package ticketshm_test

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/ticketshm"
)

// forkBuyerEntry: args name, n. Opens the lock-free Counter, buys 3
// tickets (in its log, unflushed), forks WITHOUT exec (as C code called
// through cgo, daemon(3), or a non-Go user of the layout can), and the
// fork, which shares the claimer's open file (its slot lock) and mapping,
// buys n more tickets, one every 2 ms, then exits. The claimer prints
// "forked <pid>" and waits to be killed.
func forkBuyerEntry(args []string) int {
	n, _ := strconv.Atoi(args[1])
	ctx := context.Background()
	c, err := ticketshm.Open(ctx, args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	b, err := c.Buyer(ctx)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for range 3 {
		if _, err := b.Buy(ctx); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	fmt.Println("slot", c.Slot())
	return testproc.ForkAndPark(func() {
		for range n {
			b.Buy(ctx)
			testproc.RawSleep(2 * time.Millisecond)
		}
	})
}

// TestSettleForkedBuyer: a lock-free buyer forks (no exec) and dies; its
// fork tries to keep buying through the same slot and log, with the slot
// lock still held by the open file it inherited. Once the buyer is
// reaped, Alive says its slot is dead and an Open settles the log: the
// fork must not be buying meanwhile. The mapping is MADV_DONTFORK, so the
// fork faults at its first touch, and the counter holds the buyer's 3
// tickets, settled. Without it (adversarial review), the fork's next
// flush read the settled, zeroed log and panicked, and Audit said
// ErrCorrupt.
func TestSettleForkedBuyer(t *testing.T) {
	ctx := context.Background()
	name := makeCounter(t, ticketshm.LockFree, 1000)
	// The fork's parent dies: make this process its reaper.
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Skip(err)
	}
	defer unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 0, 0, 0, 0)
	const n = 100
	p := testproc.Start(t, "fork-buyer", name, strconv.Itoa(n))
	p.ExpectPrefix("slot ")
	fpid := p.Forked()
	var ws unix.WaitStatus
	reaped := false
	defer func() {
		if !reaped {
			unix.Kill(fpid, unix.SIGKILL)
			unix.Wait4(fpid, &ws, 0, nil)
		}
	}()
	time.Sleep(20 * time.Millisecond) // the fork is buying
	p.Kill()
	p.Wait()

	// An Open while the fork buys: it settles the slot it judges dead.
	c2, err := ticketshm.Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if _, err := unix.Wait4(fpid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	reaped = true
	a, err := c2.Audit(ctx)
	t.Logf("fork exit %v; audit sold %d remaining %d lost %d oversold %d in flight %d per slot %v; err %v",
		ws, a.Sold, a.Remaining, a.Lost, a.Oversold, a.InFlight, a.PerSlot[:min(4, len(a.PerSlot))], err)
	if err != nil || !a.OK() {
		t.Errorf("a buyer's fork kept buying through its slot after the buyer's reaping: the fork exited %v, Audit = %+v, %v", ws, a.OK(), err)
	}
}
