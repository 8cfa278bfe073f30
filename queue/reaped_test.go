//go:build linux

package queue

import (
	"context"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// TestQueueAfterReap: a producer killed with a reserved cell, and a
// receiver killed taking a message, each reaped with its slot lock living
// on (its file held elsewhere, as a reader of /proc/PID/maps does). A
// receiver gets past the dead process's cell at once, Repair settles it
// and Inspect calls the process dead; before, they took it for alive
// until the file went (a stall, and a false report).
func TestQueueAfterReap(t *testing.T) {
	for _, side := range []string{"send", "recv"} {
		t.Run(side, func(t *testing.T) {
			ctx := context.Background()
			name, q := newQueue(t, 8, 64)
			buf := make([]byte, 64)
			step := "reserved"
			if side == "recv" {
				step = "taking"
				makeMsg(buf, 1, 1)
				if err := q.Send(ctx, buf); err != nil {
					t.Fatal(err)
				}
			}
			p := testproc.Start(t, "stop-at", name, step, side)
			p.Expect("at " + step)
			release := p.HoldFile(t, shmtest.Path(t, name))
			p.Kill()
			p.Wait()
			if side == "send" {
				makeMsg(buf, 1, 1)
				if ok, err := q.TrySend(buf); !ok || err != nil {
					t.Fatal(ok, err)
				}
			}
			seg, err := shm.OpenPrivate(name)
			if err != nil {
				t.Fatal(err)
			}
			in, err := Inspect(seg)
			seg.Close()
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("inspect: writing %+v, taking %+v", in.Writing, in.Taking)
			for _, c := range append(in.Writing, in.Taking...) {
				if c.Alive {
					t.Errorf("Inspect calls pid %d (dead, reaped) alive at position %d", c.Pid, c.Position)
				}
			}
			n, err := Repair(ctx, name)
			if n != 1 || err != nil {
				t.Errorf("Repair settled %d cells (%v), want 1", n, err)
			}
			rctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
			_, err = q.Recv(rctx, buf)
			cancel()
			if err != nil {
				t.Errorf("Recv within 100ms behind the dead process's cell: %v", err)
				release()
				recvWant(t, ctx, q, buf, 1, 1, "after the release")
			}
		})
	}
}
