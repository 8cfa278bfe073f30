//go:build linux

package queue

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"time"
)

// Send sends msg, waiting while the queue is full, until ctx is done. It
// fails with ErrTooBig for a message longer than MaxSize and with
// ErrSendClosed once CloseSend was called; then nothing was sent. A nil
// error means the message is in the queue: it will be received, even if
// this process dies the next instant.
func (q *Queue) Send(ctx context.Context, msg []byte) error {
	if q == nil || q.seg == nil {
		return errZero()
	}
	if len(msg) > q.maxSize {
		return q.errTooBig(len(msg))
	}
	if ok, err := q.trySend(ctx, msg); ok || err != nil {
		return err
	}
	return q.sendWaiting(ctx, msg)
}

// sendWaiting is Send once the queue was found full: the waiting, out of
// the way of the first try (every store on a sender's path counts when
// its stores wait for the cell's line).
func (q *Queue) sendWaiting(ctx context.Context, msg []byte) error {
	if err := q.enter(); err != nil {
		return err
	}
	defer q.exit()
	w := waiter{q: q, seq: q.notFull, sleepers: q.sendSleepers}
	for {
		if err := w.wait(ctx, q.full); err != nil {
			return err
		}
		if ok, err := q.trySend(ctx, msg); ok || err != nil {
			return err
		}
	}
}

// TrySend sends msg if there is room now; it reports whether it did.
func (q *Queue) TrySend(msg []byte) (bool, error) {
	if q == nil || q.seg == nil {
		return false, errZero()
	}
	if len(msg) > q.maxSize {
		return false, q.errTooBig(len(msg))
	}
	return q.trySend(context.Background(), msg)
}

func (q *Queue) errTooBig(n int) error {
	return fmt.Errorf("%s: %w: %d bytes, at most %d", q.seg.Path(), ErrTooBig, n, q.maxSize)
}

// trySend puts msg in the cell at the tail, as Vyukov's bounded queue
// does: it finds the tail's cell free for this lap, reserves it by moving
// the tail past it with a CAS, writes the message and publishes it (free
// -> published). Before the CAS it writes the position into a lane of
// its slot's area (its intent): whoever finds a reserved cell (free, the
// tail past it) can ask whether a live process still says it is writing
// it (see doc.go, Protocol). It reports false when the queue is full.
func (q *Queue) trySend(ctx context.Context, msg []byte) (bool, error) {
	// The lane is also the Send's mark of being in flight on this
	// handle (no enter and exit: two locked instructions less): Close
	// sets closed, then waits for our lanes to be free; we take a lane
	// (a locked CAS), then look at closed.
	i, err := q.claimLane(ctx)
	if err != nil {
		return false, err
	}
	if q.closed.Load() {
		release64(&q.local.lanes[i], 0)
		return false, q.errClosed()
	}
	lane := q.lane(q.me.Index, i)
	done := func() {
		release64(lane, 0)
		release64(&q.local.lanes[i], 0)
	}
	for range maxTries {
		t := q.tail.Load()
		if t&closedBit != 0 {
			done()
			return false, fmt.Errorf("%s: %w (CloseSend was called on it, perhaps by an earlier run: a closed queue stays closed; Remove it and Create a new one)", q.seg.Path(), ErrSendClosed)
		}
		c := q.cell(t)
		w := c.word.Load()
		if w != free(t) {
			if lap(w, t) == -int64(q.capacity) {
				done()
				return false, nil // the last lap's message is still there: full
			}
			if q.tail.Load() == t {
				done()
				return false, q.corrupt(t, w, "tail")
			}
			continue // the tail moved on meanwhile
		}
		// The intent before the CAS (amd64: a store is not passed by a
		// later locked instruction): a process that sees the tail past t
		// and then looks at the lanes finds it, until the publish.
		release64(lane, laneBusy|(t+1))
		if testHook != nil {
			testHook("intent")
		}
		if !q.tail.CompareAndSwap(t, t+1) {
			release64(lane, laneBusy) // another producer's cell, or closed
			continue
		}
		if testHook != nil {
			testHook("reserved")
		}
		// The lane cleared after the publish: until the cell is
		// published, its intent says a live process is writing it.
		if q.plain && !raceEnabled && len(msg) <= fillCellMax {
			fillCell(c.word, msg, published(t, 0), lane)
		} else {
			release32(c.n, uint32(len(msg)))
			copy(c.data, msg)
			q.publish(c.word, published(t, 0))
			release64(lane, 0)
		}
		q.wakeRecvIfSleeping()
		// Our lane in this process after our last touch of the segment:
		// once our lanes are free, Close may go on.
		release64(&q.local.lanes[i], 0)
		return true, nil
	}
	done()
	return false, fmt.Errorf("%s: %w: Send found no cell in %d tries", q.seg.Path(), ErrCorrupt, maxTries)
}

// publish stores a published word: a plain (release) store if this
// process takes membarrier's barriers, else an XCHG. Either way the
// length and the message, stored before, are seen before it.
func (q *Queue) publish(w *atomic.Uint64, v uint64) {
	if q.plain {
		release64(w, v)
	} else {
		w.Store(v)
	}
}

// claimLane takes one of our slot's lanes for one try of a Send: a lane
// holds one goroutine's intent at a time. With every lane taken (more
// goroutines of this process sending at this instant than lanes), it
// lets the holders run until one is free, or ctx is done.
func (q *Queue) claimLane(ctx context.Context) (int, error) {
	for {
		for i := range lanes {
			l := &q.local.lanes[i]
			if l.Load() == 0 && l.CompareAndSwap(0, q.id) {
				return i, nil
			}
		}
		if q.closed.Load() {
			return 0, q.errClosed()
		}
		if err := ctx.Err(); err != nil {
			return 0, err
		}
		// The holders are goroutines of this process, a Send's few
		// instructions from done: let them run.
		runtime.Gosched()
	}
}

// full reports whether the tail's cell still holds the last lap's
// message, and how long to sleep on it: until a consumer frees a cell,
// which wakes us; the slice only bounds a missed wake.
func (q *Queue) full() (bool, time.Duration) {
	t := q.tail.Load()
	return t&closedBit == 0 && lap(q.cell(t).word.Load(), t) < 0, time.Second
}
