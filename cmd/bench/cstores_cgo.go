//go:build linux && cgo

package main

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/crobust"
	"github.com/shmkit/shmkit/internal/gaphist"
	"github.com/shmkit/shmkit/shm"
)

// The C yardsticks, in a segment tagged cTag:
//
//	offset size field
//	     0   64 pthread_mutex_t, robust and process-shared (c-robust)
//	    64    8 tickets sold, int64
const (
	cRobust = "c-robust"
	cCAS    = "c-cas"
	cTag    = "bench.CCounter/1"
	cOffCtr = 64
	cSize   = 128
)

// openC opens a C counter segment and checks its size.
func openC(name string) (*shm.Segment, error) { return openSized(name, cTag, cSize) }

var cBackends = []string{cRobust, cCAS}

func isC(kind string) bool { return kind == cRobust || kind == cCAS }

var _ [64 - crobust.Size]struct{} // the mutex fits its 64 bytes

func createC(kind string, tickets int64) (string, error) {
	name := fmt.Sprintf("bench.%d.c%d", os.Getpid(), storeSeq.Add(1))
	seg, err := shm.Create(name, cSize, cTag, func(s *shm.Segment) error {
		m, err := crobust.At(s.Data())
		if err != nil {
			return err
		}
		return m.Init()
	})
	if err != nil {
		return "", err
	}
	return name, seg.Close()
}

func removeC(name string) error { return shm.Remove(name) }

// sellC sells in C until tickets are sold: glibc's robust mutex around an
// increment, or a bare CAS. The loop runs in one C call, so cgo's cost is
// paid once per buyer, not per ticket.
//
// With h, each buyer also records the gaps between its increments (bench
// latency), reading the clock once per increment as the Go buyers do.
func sellC(kind, name string, tickets int64, h *gaphist.Hist) (int64, error) {
	seg, err := openC(name)
	if err != nil {
		return 0, err
	}
	defer seg.Close()
	ctr := seg.Data()[cOffCtr : cOffCtr+8]
	if kind == cCAS {
		if h != nil {
			return crobust.CASContendTimed(ctr, tickets, h)
		}
		return crobust.CASContend(ctr, tickets)
	}
	m, err := crobust.At(seg.Data())
	if err != nil {
		return 0, err
	}
	if h != nil {
		return m.ContendTimed(ctr, tickets, h)
	}
	return m.Contend(ctr, tickets)
}

// cClockCost is the cost of one clock read in C's timed loops, ns.
func cClockCost() float64 { return crobust.ClockCost() }

func soldC(name string) (int64, error) {
	seg, err := openC(name)
	if err != nil {
		return 0, err
	}
	defer seg.Close()
	// 8-aligned inside a shared mapping: see cTag's layout.
	return (*atomic.Int64)(unsafe.Pointer(&seg.Data()[cOffCtr])).Load(), nil
}

// holdC takes the pthread mutex on a thread it never leaves (a pthread
// mutex belongs to a thread), reports it, and waits for its SIGKILL.
func holdC(name string, ctl *control) error {
	runtime.LockOSThread()
	seg, err := openC(name)
	if err != nil {
		return err
	}
	m, err := crobust.At(seg.Data())
	if err != nil {
		return err
	}
	err = m.Lock()
	if errors.Is(err, crobust.ErrOwnerDead) {
		err = m.Consistent() // a previous holder died: nothing to repair
	}
	if err != nil {
		return err
	}
	ctl.ready().Add(1)
	for {
		time.Sleep(time.Hour) // hold it until killed
	}
}

// openCWaiter opens the C lock for a waiter that expects its owner's
// death: lock (EOWNERDEAD), consistent and unlock in one C call.
func openCWaiter(name string) (*shm.Segment, func() error, error) {
	seg, err := openC(name)
	if err != nil {
		return nil, nil, err
	}
	m, err := crobust.At(seg.Data())
	if err != nil {
		seg.Close()
		return nil, nil, err
	}
	return seg, m.Takeover, nil
}
