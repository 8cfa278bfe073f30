//go:build linux

package ticketshm_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/backend"
	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

// FuzzOpenCounter: any bytes in a Counter segment's words (the Mutex
// record, total, remaining, mode, buy logs, ledger) give a Counter or a
// sentinel error, never a panic; a Counter that opens can be audited and
// bought from without a panic or a hang.
func FuzzOpenCounter(f *testing.F) {
	const size = ticketshm.OffOwners + 128 // a Counter of 128 tickets
	const area1 = ticketshm.OffAreas + ticketshm.AreaSize
	valid := make([]byte, area1+ticketshm.AreaSize+128)
	le := func(off int, v uint64) {
		for i := range 8 {
			valid[off+i] = byte(v >> (8 * i))
		}
	}
	le(ticketshm.OffTotal, 128)
	le(ticketshm.OffRemaining, 40)
	le(ticketshm.OffMode, 2)
	f.Add(valid[:ticketshm.OffAreas])
	// Slot 1 (dead: generation 1, which no process holds) logged the buys
	// of remaining 128 and 127 (tickets 1 and 2) and was trying 126;
	// tickets 3-88 are taken with no owner.
	le(area1, 1)
	le(area1+ticketshm.OffLogCount, 2)
	le(area1+ticketshm.OffLog, 128)
	le(area1+ticketshm.OffLog+8, 127)
	le(area1+ticketshm.OffLog+16, 126)
	f.Add(valid[:area1+ticketshm.AreaSize])
	f.Add([]byte{})
	f.Add(make([]byte, size))
	f.Fuzz(func(t *testing.T, b []byte) {
		name := storeName(t, backend.ShmMutex)
		seg, err := shm.Create(name, size, ticketshm.Tag, func(s *shm.Segment) error {
			copy(s.Data(), b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		seg.Close()
		c, err := ticketshm.Open(context.Background(), name)
		if err != nil {
			if !errors.Is(err, ticketshm.ErrCorrupt) && !errors.Is(err, semaphore.ErrCorrupt) {
				t.Fatalf("Open: error without a sentinel: %v", err)
			}
			return
		}
		defer c.Close()
		if _, err := c.Audit(context.Background()); err != nil && !errors.Is(err, semaphore.ErrNotRecoverable) {
			t.Fatalf("Audit: %v", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if _, err := c.Buy(ctx); err != nil && !errors.Is(err, ticketshm.ErrSoldOut) && !errors.Is(err, semaphore.ErrNotRecoverable) {
			t.Fatalf("Buy: %v", err)
		}
	})
}

// FuzzInspectCounter: any bytes in a Counter's words give Inspect an
// answer or a sentinel error, never a panic or a hang, and the look
// (which settles dead logs on its private copy) leaves the file as it was.
func FuzzInspectCounter(f *testing.F) {
	const size = ticketshm.OffOwners + 128
	const area1 = ticketshm.OffAreas + ticketshm.AreaSize
	valid := make([]byte, area1+ticketshm.AreaSize+128)
	le := func(off int, v uint64) {
		for i := range 8 {
			valid[off+i] = byte(v >> (8 * i))
		}
	}
	le(ticketshm.OffTotal, 128)
	le(ticketshm.OffRemaining, 40)
	le(ticketshm.OffMode, 2)
	le(area1, 1)
	le(area1+ticketshm.OffLogCount, 2)
	le(area1+ticketshm.OffLog, 128)
	le(area1+ticketshm.OffLog+8, 127)
	le(area1+ticketshm.OffLog+16, 126)
	f.Add(valid)
	f.Add([]byte{})
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		look, unchanged := shmtest.Look(t, dir+"/counter", size, ticketshm.Tag, b)
		in, err := ticketshm.Inspect(look)
		unchanged()
		if err != nil {
			if !errors.Is(err, ticketshm.ErrCorrupt) {
				t.Fatalf("Inspect: error without a sentinel: %v", err)
			}
			return
		}
		if in.Total != 128 || in.Unsettled < 0 || in.Audit.Total != 128 {
			t.Fatalf("inspection %+v", in)
		}
	})
}
