//go:build linux

package queue

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"
)

// Recv receives one message into buf and returns its length, waiting
// until one comes or ctx is done. It returns io.EOF once CloseSend was
// called and every message sent before it was received. A buf shorter
// than the message fails with ErrShortBuffer and leaves the message in
// the queue; a buf of MaxSize bytes always holds one.
func (q *Queue) Recv(ctx context.Context, buf []byte) (int, error) {
	if err := q.enter(); err != nil {
		return 0, err
	}
	if n, ok := q.recvFast(buf); ok {
		q.exit()
		return n, nil
	}
	defer q.exit()
	return q.recv(ctx, buf, nil)
}

// recvFast is tryRecv for the common case, without its generality: the
// head's cell is published and its message fits buf. It takes it as
// tryRecv does (published -> taking, copy, taking -> free, the head
// moved); in any other case it does nothing and reports false, and
// tryRecv decides.
func (q *Queue) recvFast(buf []byte) (int, bool) {
	if testHook != nil {
		return 0, false // the tests' steps are tryRecv's
	}
	h := q.head.Load()
	c := q.cell(h)
	w := c.word.Load()
	if w&^(31<<10) != published(h, 0) { // published at h, after any number of tries
		return 0, false
	}
	// The length was stored before the publish: it is the message's.
	n := int(c.n.Load())
	if n > len(buf) || n > q.maxSize {
		return 0, false
	}
	mine := word(h, stTaking, q.me.Index, q.gen8, triesOf(w)+1)
	if !c.word.CompareAndSwap(w, mine) {
		return 0, false
	}
	copy(buf, c.data[:n])
	// The end of tryRecv's take, written out again: as a shared function
	// (not inlined: it calls leave and the wakes) it slowed
	// BenchmarkSendRecv measurably, on the path this one exists to speed
	// up. Change both together.
	if !q.leave(c, mine, free(h+q.capacity)) {
		return n, true // delivered here, and there too (see tryRecv)
	}
	q.head.CompareAndSwap(h, h+1)
	q.wakeSendIfSleeping()
	q.wakeRecvIfSleeping()
	return n, true
}

// RecvFunc receives one message and runs fn on it, waiting until one
// comes or ctx is done; the message is removed from the queue only when
// fn returns nil. If fn returns an error (or panics), the message is put
// back, first in line, and RecvFunc returns that error; if the process
// dies while fn runs, the message is delivered again, to the next
// receiver. So a message is processed at least once, and a receiver
// killed at any instruction loses none: the shape to use when what is
// done with a message must not be lost (write it to a file, a database).
//
// msg is the message in the shared cell itself, valid only until fn
// returns: copy what must outlive it. While fn runs, the cell is the
// queue's head: other receivers wait for it, so keep fn short.
// It returns io.EOF as Recv does.
func (q *Queue) RecvFunc(ctx context.Context, fn func(msg []byte) error) error {
	if err := q.enter(); err != nil {
		return err
	}
	defer q.exit()
	_, err := q.recv(ctx, nil, fn)
	return err
}

func (q *Queue) recv(ctx context.Context, buf []byte, fn func([]byte) error) (int, error) {
	w := waiter{q: q, seq: q.notEmpty, sleepers: q.recvSleepers, fence: true}
	for {
		n, ok, err := q.tryRecv(buf, fn, w.checkLive())
		if ok || err != nil {
			return n, err
		}
		if err := w.wait(ctx, q.empty); err != nil {
			return 0, err
		}
	}
}

// RecvMsg is Recv into a new slice of the message's length.
func (q *Queue) RecvMsg(ctx context.Context) ([]byte, error) {
	buf := make([]byte, q.MaxSize())
	n, err := q.Recv(ctx, buf)
	if err != nil {
		return nil, err
	}
	return buf[:n:n], nil
}

// TryRecv receives a message if one is ready now; it reports whether it
// did (and io.EOF as Recv does).
func (q *Queue) TryRecv(buf []byte) (int, bool, error) {
	if err := q.enter(); err != nil {
		return 0, false, err
	}
	defer q.exit()
	return q.tryRecv(buf, nil, true)
}

// tryRecv takes the message in the cell at the head: published -> taking
// (naming our slot), copy it out, free the cell for the next lap, move
// the head. The head moves only after the copy, so a consumer killed
// while copying leaves its cell at the head, taking, and the next
// consumer that finds it dead takes it over and delivers it: at least
// once. live: whether to ask the kernel about a process that is taking
// or writing the head's cell (a syscall: waiters ask only now and then).
func (q *Queue) tryRecv(buf []byte, fn func([]byte) error, live bool) (int, bool, error) {
	for range maxTries {
		// The tail is the producers' line: read only where it matters,
		// not on the way to a published message.
		h := q.head.Load()
		c := q.cell(h)
		w := c.word.Load()
		d := lap(w, h)
		if d != 0 {
			t := q.tail.Load()
			switch {
			case t == h|closedBit:
				return 0, false, io.EOF // closed here: everything before is received
			case q.head.Load() != h:
			case d < 0, h >= t&^closedBit:
				// Behind the head, or ahead of it where nothing was
				// reserved: no step of the protocol makes that.
				return 0, false, q.corrupt(h, w, "head")
			default:
				q.head.CompareAndSwap(h, h+1) // taken already (or dropped): move on
			}
			continue
		}
		switch stateOf(w) {
		case stFree:
			if q.closedHere(h) {
				return 0, false, io.EOF // closed here: everything before is received
			}
			if !live {
				return 0, false, nil // empty, or its producer is writing
			}
			t := q.tail.Load()
			if t == h|closedBit {
				q.closedAt.Store(t) // for a closer that died before it said so
				return 0, false, io.EOF
			}
			if t&^closedBit <= h || q.writerAlive(h) {
				return 0, false, nil // empty, or its producer is writing
			}
			// Reserved (the tail is past it) by a producer that died
			// before it published: no live process says it writes the
			// cell, so none ever will. Drop it: the CAS fails if the
			// cell was published after all.
			if c.word.CompareAndSwap(w, free(h+q.capacity)) {
				q.head.CompareAndSwap(h, h+1)
				q.wakeSendIfSleeping()
			}
			continue
		case stTaking:
			if !live || w&seizedBit != 0 && q.liveSeizer(w) || w&seizedBit == 0 && q.cellAlive(w) {
				return 0, false, nil // another consumer is copying it out, or taking it over
			}
		case stPublished:
		default:
			return 0, false, q.corrupt(h, w, "head")
		}
		mine := word(h, stTaking, q.me.Index, q.gen8, triesOf(w)+1)
		if stateOf(w) == stTaking {
			// Being taken by a dead consumer (or taken over by a dead
			// one): ours after a second look.
			if !q.takeOver(c, w, mine) {
				continue
			}
		} else if !c.word.CompareAndSwap(w, mine) {
			continue
		}
		if testHook != nil {
			testHook("taking")
		}
		n := int(c.n.Load())
		if n > q.maxSize {
			c.word.Store(free(h + q.capacity))
			q.head.CompareAndSwap(h, h+1)
			q.wakeSendIfSleeping()
			q.wakeRecvIfSleeping()
			return 0, false, fmt.Errorf("%s: %w: a message of %d bytes at position %d, at most %d; dropped", q.seg.Path(), ErrCorrupt, n, h, q.maxSize)
		}
		// A CAS from our own word: should the take have gone to
		// another receiver meanwhile (it cannot, while we live), the
		// cell is theirs, not ours to write.
		putBack := func() { q.leave(c, mine, published(h, triesOf(mine))) }
		if fn != nil {
			if err := q.run(fn, c.data[:n], putBack); err != nil {
				q.wakeRecvIfSleeping()
				return 0, false, err
			}
		} else if n > len(buf) {
			putBack()
			q.wakeRecvIfSleeping() // another receiver may wait behind our take
			return 0, false, fmt.Errorf("%s: %w: the next message is %d bytes, the buffer %d", q.seg.Path(), ErrShortBuffer, n, len(buf))
		} else {
			copy(buf, c.data[:n])
		}
		// A CAS from our own word, not a store: should another receiver
		// have taken the cell over from us (see doc.go, Identity: a
		// look fooled by a word come round), the cell is no longer ours
		// to free, and a store would wipe what it holds now.
		if !q.leave(c, mine, free(h+q.capacity)) { // and recvFast's twin of these lines
			return n, true, nil // delivered here, and there too
		}
		q.head.CompareAndSwap(h, h+1)
		q.wakeSendIfSleeping()
		q.wakeRecvIfSleeping() // one may wait for this cell to be done
		return n, true, nil
	}
	return 0, false, fmt.Errorf("%s: %w: Recv found no cell in %d tries", q.seg.Path(), ErrCorrupt, maxTries)
}

// takeOver takes the cell whose word w says that a receiver it found
// dead is taking it (or taking it over), in two steps, so that a look
// made long ago cannot take a cell from a live holder whose word has come
// round to the same value: seize (freeze the holder's word, seizedBit,
// and say so in our area), look again at the holder, then commit (the
// cell is ours: mine) or undo (the holder lives). It reports whether the
// cell is ours.
func (q *Queue) takeOver(c cell, w, mine uint64) bool {
	// One seizing field per process (per slot), so one takeover at a
	// time in this process: another goroutine's would overwrite or clear
	// the field under this one (the third review's finding). Takeovers
	// follow deaths: rare.
	takeoverMu.Lock()
	defer takeoverMu.Unlock()
	s := w | seizedBit
	seizing := q.seizing(q.me.Index)
	seizing.Store(s) // before the word: who sees it seized sees who
	defer seizing.Store(0)
	if testHook != nil {
		testHook("decided")
	}
	if w != s && !c.word.CompareAndSwap(w, s) {
		return false
	}
	if holder := s &^ seizedBit; q.cellAlive(holder) {
		c.word.CompareAndSwap(s, holder) // it lives: give it back
		return false
	}
	return c.word.CompareAndSwap(s, mine)
}

var takeoverMu sync.Mutex

// leave moves our taken cell from mine to next (freed, or put back). A
// receiver may have seized it meanwhile, believing us dead: it gives it
// back when it looks again, or, if it died first, we do.
func (q *Queue) leave(c cell, mine, next uint64) bool {
	for !c.word.CompareAndSwap(mine, next) {
		cur := c.word.Load()
		switch {
		case cur != mine|seizedBit:
			return false // not ours any more
		case q.liveSeizer(cur):
			yield()
		default:
			c.word.CompareAndSwap(cur, mine)
		}
	}
	return true
}

// run runs fn on a message being taken; on its error or panic the
// message is put back before run returns or the panic goes on.
func (q *Queue) run(fn func([]byte) error, msg []byte, putBack func()) (err error) {
	done := false
	defer func() {
		if !done {
			putBack() // panicking
			q.wakeRecvIfSleeping()
		}
	}()
	err = fn(msg)
	done = true
	if err != nil {
		putBack()
	}
	return err
}

// closedHere reports whether the queue was closed at position h. It
// looks at the closedAt word on the head's line, not at the tail: a
// receiver that finds the queue empty looks again and again, and a look
// at the tail's line would take it from the producers every time.
func (q *Queue) closedHere(h uint64) bool { return q.closedAt.Load() == h|closedBit }

// empty reports whether the head's cell holds nothing to take now, and
// how long to sleep on it: a free cell until a producer publishes, which
// wakes us (the slice bounds a missed wake); a cell being written or taken
// 10 ms, after which the waiter asks whether that process is alive.
func (q *Queue) empty() (bool, time.Duration) {
	h := q.head.Load()
	w := q.cell(h).word.Load() // before the tail: a cell reserved later has the tail past it
	t := q.tail.Load()
	if t == h|closedBit {
		q.closedAt.Store(t) // for a closer that died before it said so
		return false, 0
	}
	if lap(w, h) != 0 {
		return false, 0
	}
	switch stateOf(w) {
	case stFree:
		if t&^closedBit <= h {
			return true, time.Second
		}
	case stPublished:
		return false, 0
	}
	return true, sleepSlice
}
