//go:build linux

package queue

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/futex"
)

// wakeRecvIfSleeping and wakeSendIfSleeping wake the sleepers of one
// side if any said they sleep (see waiter.wait). The flag is taken, not
// counted down by the sleepers: one wake per round of sleep however many
// messages follow, and a sleeper killed asleep leaves a flag that the
// next wake clears, not a count that makes every later call wake.
func (q *Queue) wakeRecvIfSleeping() {
	if q.recvSleepers.Load() != 0 && q.recvSleepers.Swap(0) != 0 {
		q.notEmpty.Add(1)
		futex.Wake(q.notEmpty, 1<<30)
	}
}

func (q *Queue) wakeSendIfSleeping() {
	if q.sendSleepers.Load() != 0 && q.sendSleepers.Swap(0) != 0 {
		q.notFull.Add(1)
		futex.Wake(q.notFull, 1<<30)
	}
}

// wakeAll wakes every sleeper of both kinds, in every process: after a
// close, a settlement, a cancelled wait.
func (q *Queue) wakeAll() {
	q.recvSleepers.Store(0)
	q.sendSleepers.Store(0)
	q.notEmpty.Add(1)
	futex.Wake(q.notEmpty, 1<<30)
	q.notFull.Add(1)
	futex.Wake(q.notFull, 1<<30)
}

// waiter is a Send or Recv waiting for its turn: a short spin, yields,
// then sleeps on the futex word seq, with the sleepers flag set so that
// the other side wakes it (and only then makes the syscall).
type waiter struct {
	q        *Queue
	seq      *atomic.Uint32
	sleepers *atomic.Uint32
	rounds   int
	// fence: after setting the flag, make membarrier's global barrier,
	// the side of the handshake that producers' plain publishes leave to
	// a sleeping receiver (fence_linux.go).
	fence bool
}

// checkLive says whether this round asks the kernel about a process in
// the way: after the spinning is over, every few rounds.
func (w *waiter) checkLive() bool { return w.rounds > spinRounds && w.rounds%4 == 0 }

const (
	spinRounds = 2000 // about 20-50 µs of yields before the first sleep
	sleepSlice = 10 * time.Millisecond
	// unfencedSlice bounds a receiver's sleep when membarrier failed: a
	// wake lost to a plain publish costs at most this.
	unfencedSlice = time.Millisecond
	yieldRounds   = 64 // of the spin, the first ones with a pause between looks
	// spinPause: PAUSEs between two looks of a spinning waiter. A
	// receiver that looks at the cell its producer is writing, again and
	// again, takes the line from it at each look, and the producer's
	// stores wait for it back. Tried with bench queue and bench pingpong
	// at 0, 10, 20, 40 and 100: throughput rose up to about 20 and no
	// further, and ping-pong's round trip grew past it. Retune with
	// both commands, compared within a run, if the machine changes.
	spinPause = 20
)

// wait waits for a change worth another try: blocked reports whether
// the condition still holds after registering as a sleeper, and for how
// long to sleep on it.
func (w *waiter) wait(ctx context.Context, blocked func() (bool, time.Duration)) error {
	w.rounds++
	if err := ctx.Err(); err != nil {
		return err
	}
	if w.q.closed.Load() {
		return w.q.errClosed()
	}
	if w.rounds <= spinRounds {
		if w.rounds > yieldRounds {
			yield()
		} else {
			pause(spinPause)
		}
		return nil
	}
	// The word's value first, then the ctx waker: a wake that lands
	// between them changes the word, and the futex wait returns at once.
	seq := w.seq.Load()
	if ctx.Done() != nil {
		// A wake for every sleeper on the word when ctx is done. It
		// may run after the handle's Close: harmless, the segment's
		// range is retired, not unmapped (shm.Segment.Close).
		// It keeps the handle's segment reachable while it may run:
		// word points into the mapping, which a pointer into it does
		// not keep (shm's doc), and whose range is unmapped once no
		// handle on the segment is reachable (the second review).
		word, seg := w.seq, w.q.seg
		stop := context.AfterFunc(ctx, func() {
			word.Add(1)
			futex.Wake(word, 1<<30)
			runtime.KeepAlive(seg)
		})
		defer stop()
	}
	// Say we sleep (a locked XCHG: a full barrier before the look at the
	// cell in blocked, as the other side publishes before it looks at the
	// flag), look once more, sleep. The waker clears the flag; we set it
	// again each time we go back to sleep.
	w.sleepers.Store(1)
	fenced := !w.fence || heavyFence()
	if ok, d := blocked(); ok {
		if !fenced {
			d = min(d, unfencedSlice)
		}
		futex.Wait(w.seq, seq, d)
	}
	return ctx.Err()
}

// yield gives this thread's CPU to another runnable thread, if one waits.
func yield() { unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0) }
