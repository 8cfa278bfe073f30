//go:build linux

package main

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
	"golang.org/x/sys/unix"
)

// A control segment carries the start barrier and each buyer's results
// between the harness and its buyer processes:
//
//	offset size    field
//	     0    8    buyers ready, int64
//	     8    8    go: 0 wait, 1 start buying, int64
//	    16    8    producers done (bench queue), int64
//	    24    8    CLOCK_MONOTONIC (ns) when the waiter got the lock (bench recover), int64
//	64+64i   8     tickets bought by buyer i, int64
//	72+64i   8     torn reads seen by buyer i, int64
//	80+64i   8     1 once buyer i has stored its results, int64
//	88+64i   8     1 if buyer i gave up on a file torn for good, int64
//	96+64i   8     CLOCK_MONOTONIC (ns) when buyer i stopped buying, int64
//
// A sale is timed from the barrier to the last buyer's last buy: closing
// the store and exiting (unmapping a ledger of a byte per ticket) is
// teardown, as spawning and opening are setup.
const (
	controlTag = "bench.Control/1"
	maxBuyers  = 128
	slotStride = 64

	controlSize = slotStride * (maxBuyers + 1)
)

type control struct {
	seg *shm.Segment
}

var controlSeq atomic.Int64

// newControl creates a fresh control segment for one run.
func newControl() (*control, error) {
	name := fmt.Sprintf("bench.%d.ctl.%d", os.Getpid(), controlSeq.Add(1))
	seg, err := shm.Create(name, controlSize, controlTag, nil)
	if err != nil {
		return nil, err
	}
	return &control{seg}, nil
}

func openControl(name string) (*control, error) {
	seg, err := openSized(name, controlTag, controlSize)
	if err != nil {
		return nil, err
	}
	return &control{seg}, nil
}

// openSized opens the harness's own segment of type tag, which has
// exactly size data bytes: its fixed offsets are indexed without checks.
func openSized(name, tag string, size int) (*shm.Segment, error) {
	seg, err := shm.Open(name, tag)
	if err != nil {
		return nil, err
	}
	if seg.Size() != size {
		seg.Close()
		return nil, fmt.Errorf("%s: %w: %d data bytes, a %s segment has %d", name, shm.ErrSizeMismatch, seg.Size(), tag, size)
	}
	return seg, nil
}

func (c *control) word(off int) *atomic.Int64 {
	// The data region is 64-byte aligned and every offset here is a
	// multiple of 8 inside it (checked by the callers' bounds); the
	// mapping is shared and never moved by Go.
	d := c.seg.Data()
	return (*atomic.Int64)(unsafe.Pointer(&d[off]))
}

func (c *control) ready() *atomic.Int64 { return c.word(0) }
func (c *control) start() *atomic.Int64 { return c.word(8) }
func (c *control) took() *atomic.Int64  { return c.word(24) }

func (c *control) slot(i int) (bought, torn, done, broken *atomic.Int64) {
	if i < 0 || i >= maxBuyers {
		panic(fmt.Sprintf("bench: buyer index %d out of range", i))
	}
	base := slotStride * (i + 1)
	return c.word(base), c.word(base + 8), c.word(base + 16), c.word(base + 24)
}

// finished is when buyer i stopped buying (see monoNow).
func (c *control) finished(i int) *atomic.Int64 {
	c.slot(i) // checks i
	return c.word(slotStride*(i+1) + 32)
}

// monoNow is CLOCK_MONOTONIC in nanoseconds: one clock for every process.
func monoNow() int64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		panic(err) // CLOCK_MONOTONIC exists on every Linux
	}
	return ts.Nano()
}

// waitStart spins politely until the harness opens the barrier.
func (c *control) waitStart() {
	for c.start().Load() == 0 {
		time.Sleep(20 * time.Microsecond)
	}
}

func (c *control) name() string { return c.seg.Path() }

// startReady starts p, a child that adds one to the ready count once it
// is set up, and waits for that. It reports whether p got there (false:
// p exited first; Join says how).
func (c *control) startReady(p *process.Process) (bool, error) {
	want := c.ready().Load() + 1
	if err := p.Start(); err != nil {
		return false, err
	}
	for c.ready().Load() < want {
		if !p.IsAlive() {
			return false, nil
		}
		time.Sleep(50 * time.Microsecond)
	}
	return true, nil
}

// remove closes and deletes the segment.
func (c *control) remove() error {
	path := c.seg.Path()
	c.seg.Close()
	return shm.Remove(path)
}
