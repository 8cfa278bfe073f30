//go:build linux

package ticketshm_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

// TestAuditLateSlotRelease: a lock-free buyer B with 4 committed,
// unflushed buys is SIGKILLed and reaped, but its open file of the
// segment (which carries its slot's OFD lock) outlives it for a moment,
// as it does when another task holds the last reference: here a
// pidfd_getfd copy; in a test run, a reader of /proc/B/maps or smaps
// (shmctl's look at who has a segment open). The reference goes while
// Audit (and Inspect) run, after settleDead judged B's log live and
// before tally counts: a log judged live by one and dead by the other
// was in neither, and its 4 tickets were reported lost. Found by an
// adversarial review after one full test run's chaos reported Lost:4.
func TestAuditLateSlotRelease(t *testing.T) {
	for _, how := range []string{"audit", "inspect"} {
		t.Run(how, func(t *testing.T) { lateSlotRelease(t, how) })
	}
}

func lateSlotRelease(t *testing.T, how string) {
	ctx := context.Background()
	name, c := newCounter(t, ticketshm.LockFree, 1000)
	b := testproc.Start(t, "log", name, "4", "none")
	slot, _ := strconv.Atoi(strings.TrimSpace(b.ExpectPrefix("slot ")))
	b.Expect("logged")

	// Another task takes a reference to B's open file description.
	release := b.HoldFile(t, shmtest.Path(t, name))
	// Dead, not yet reaped: its pid still names a process (a zombie's,
	// which Alive must count as alive), and its file, with its slot's
	// lock, lives on in the reference.
	b.Zombie(t)

	released := false
	ticketshm.SetSettleHook(func(s int) {
		if s == slot+1 && !released {
			released = true
			release() // the last reference goes: B's slot lock is released
			b.Wait()  // and its pid with its reaping
		}
	})
	var (
		a   ticketshm.Audit
		err error
	)
	if how == "audit" {
		a, err = c.Audit(ctx)
	} else {
		var seg *shm.Segment
		if seg, err = shm.OpenPrivate(name); err == nil {
			var in ticketshm.Inspection
			in, err = ticketshm.Inspect(seg)
			a = in.Audit
			seg.Close()
		}
	}
	ticketshm.SetSettleHook(nil)
	if err != nil {
		t.Fatal(err)
	}
	if !released {
		t.Fatalf("settleDead never reached slot %d: the release did not happen during the %s", slot+1, how)
	}
	t.Logf("%s with the release during it: %+v", how, a)
	again, err := c.Audit(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("audit again:                      %+v", again)
	if a.Lost != 0 || !a.OK() {
		t.Errorf("%s reported Lost %d, InFlight %d for a counter that lost nothing (the next Audit: Lost %d, Sold %d)", how, a.Lost, a.InFlight, again.Lost, again.Sold)
	}
}
