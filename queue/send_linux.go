//go:build linux

package queue

import (
	"context"
	"fmt"
	"time"
)

// Send sends msg, waiting while the queue is full, until ctx is done. It
// fails with ErrTooBig for a message longer than MaxSize and with
// ErrSendClosed once CloseSend was called; then nothing was sent. A nil
// error means the message is in the queue: it will be received, even if
// this process dies the next instant.
func (q *Queue) Send(ctx context.Context, msg []byte) error {
	if err := q.enter(); err != nil {
		return err
	}
	defer q.exit()
	if len(msg) > q.maxSize {
		return q.errTooBig(len(msg))
	}
	w := waiter{q: q, seq: q.notFull, sleepers: q.sendSleepers}
	for {
		ok, err := q.trySend(msg)
		if ok || err != nil {
			return err
		}
		if err := w.wait(ctx, q.full); err != nil {
			return err
		}
	}
}

// TrySend sends msg if there is room now; it reports whether it did.
func (q *Queue) TrySend(msg []byte) (bool, error) {
	if err := q.enter(); err != nil {
		return false, err
	}
	defer q.exit()
	if len(msg) > q.maxSize {
		return false, q.errTooBig(len(msg))
	}
	return q.trySend(msg)
}

func (q *Queue) errTooBig(n int) error {
	return fmt.Errorf("%s: %w: %d bytes, at most %d", q.seg.Path(), ErrTooBig, n, q.maxSize)
}

// trySend puts msg in the cell at the tail: it reserves the cell (free ->
// writing, naming our slot), moves the tail past it, writes the message
// and publishes it (writing -> published). A producer that finds the
// tail's cell reserved by another moves the tail on for it, so a
// producer killed between its two steps stalls nobody. It reports false
// when the queue is full.
func (q *Queue) trySend(msg []byte) (bool, error) {
	for range maxTries {
		t := q.tail.Load()
		if t&closedBit != 0 {
			return false, fmt.Errorf("%s: %w", q.seg.Path(), ErrSendClosed)
		}
		c := q.cell(t)
		w := c.word.Load()
		switch d := lap(w, t); {
		case w == free(t):
			if !c.word.CompareAndSwap(w, word(t, stWriting, q.me.Index, q.gen8, 0)) {
				continue
			}
			if testHook != nil {
				testHook("reserved")
			}
			if !q.tail.CompareAndSwap(t, t+1) && q.tail.Load() == t|closedBit {
				// Closed at our cell: nothing after the close is sent.
				c.word.Store(free(t))
				q.wakeRecvIfSleeping()
				return false, fmt.Errorf("%s: %w", q.seg.Path(), ErrSendClosed)
			}
			release32(c.n, uint32(len(msg)))
			copy(c.data, msg)
			// A full barrier (atomic's XCHG): the publish must be seen
			// before our look at the sleepers flag, as a sleeper's flag is
			// before its look at the cell.
			c.word.Store(published(t, 0))
			q.wakeRecvIfSleeping()
			return true, nil
		case d == 0, d > 0:
			// Reserved by another producer that has not moved the tail
			// yet (or died first), or already past: move it on.
			q.tail.CompareAndSwap(t, t+1)
		case d == -int64(q.capacity):
			if q.tail.Load() == t {
				return false, nil // the last lap's message is still there: full
			}
		default:
			if q.tail.Load() == t {
				return false, q.corrupt(t, w, "tail")
			}
		}
	}
	return false, fmt.Errorf("%s: %w: Send found no cell in %d tries", q.seg.Path(), ErrCorrupt, maxTries)
}

// full reports whether the tail's cell still holds the last lap's
// message, and how long to sleep on it: until a consumer frees a cell,
// which wakes us; the slice only bounds a missed wake.
func (q *Queue) full() (bool, time.Duration) {
	t := q.tail.Load()
	return t&closedBit == 0 && lap(q.cell(t).word.Load(), t) < 0, time.Second
}
