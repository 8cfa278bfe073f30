//go:build linux

package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"github.com/shmkit/shmkit/internal/cyard"
	"github.com/shmkit/shmkit/internal/gaphist"
	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
	"golang.org/x/sys/unix"
)

// The C yardsticks run as a program of their own, internal/cyard's yard,
// which the harness compiles at run time with the machine's C compiler:
// linked in through cgo, C made every child of this binary start about
// 0.6 ms slower (docs/runs/startcost.txt), the shm buyers included. A C
// buyer is a Go buyer process that runs yard for its loop; yard waits on
// the same start barrier.
//
// The C counter, in a segment tagged cTag:
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

// envYard names the compiled yard program for the harness's children, so
// that each does not look for it again. Only a child reads it: in the
// harness it can only have come from outside (a stale export, a program
// that is not yard), and the harness builds or checks its own.
const envYard = "SHMKIT_BENCH_YARD"

var cBackends = []string{cRobust, cCAS}

func isC(kind string) bool { return kind == cRobust || kind == cCAS }

// haveC reports whether there is a C compiler to build yard with.
func haveC() bool {
	_, err := cyard.Compiler()
	return err == nil
}

// yardPath returns the yard program, building it on first use.
func yardPath(ctx context.Context) (string, error) {
	if p := os.Getenv(envYard); p != "" && process.Current().Child {
		return p, nil
	}
	p, err := cyard.Build(ctx)
	if err != nil {
		return "", fmt.Errorf("bench: the C yardsticks (c-robust, c-cas, c-ring): %w", err)
	}
	os.Setenv(envYard, p) // for the children
	return p, nil
}

// needsYard reports whether kind runs yard.
func needsYard(kind string) bool { return isC(kind) || kind == qCRing }

// prepareC builds yard before anything runs when kinds include a C
// yardstick, so that a missing compiler is said at once, and returns the
// kinds to run. Kinds that were not chosen (a command's default list)
// leave the C yardsticks out, saying why, when there is no compiler and
// also when yard does not build with the one there is (gcc without the C
// library's headers): the default run used to fail whole on that, when
// without any compiler it ran. Chosen, they are an error either way.
func prepareC(ctx context.Context, kinds []string, chosen bool, stderr io.Writer) ([]string, error) {
	if slices.ContainsFunc(kinds, needsYard) {
		_, err := yardPath(ctx)
		if err == nil || chosen || ctx.Err() != nil {
			return kinds, err
		}
		fmt.Fprintf(stderr, "bench: the C yardsticks are left out: %v\n", err)
		return slices.DeleteFunc(slices.Clone(kinds), needsYard), nil
	}
	if !chosen && !haveC() {
		fmt.Fprintln(stderr, "bench: no C compiler (cc, gcc or $CC): the C yardsticks are left out; install gcc to compare with glibc")
	}
	return kinds, nil
}

// initPath names a segment's file while its init function runs: the file
// has no name yet (shm.Create links it into place once it is ready), but
// yard can open it anew through this process's descriptor.
func initPath(s *shm.Segment) string {
	return fmt.Sprintf("/proc/%d/fd/%d", os.Getpid(), s.File().Fd())
}

// yardFile returns the yard program and the file of a segment, which open
// opens and checks (tag and size); yard maps the file itself.
func yardFile(ctx context.Context, open func() (*shm.Segment, error)) (yard, path string, err error) {
	if yard, err = yardPath(ctx); err != nil {
		return "", "", err
	}
	seg, err := open()
	if err != nil {
		return "", "", err
	}
	defer seg.Close()
	return yard, seg.Path(), nil
}

// fileOff is the offset in a segment's file of off in its data.
func fileOff(off int) string { return strconv.Itoa(shm.DataOffset + off) }

// openC opens a C counter segment and checks its size.
func openC(name string) (*shm.Segment, error) { return openSized(name, cTag, cSize) }

func createC(kind string, tickets int64) (string, error) {
	yard, err := yardPath(context.Background())
	if err != nil {
		return "", err
	}
	name := fmt.Sprintf("bench.%d.c%d", os.Getpid(), storeSeq.Add(1))
	seg, err := shm.Create(name, cSize, cTag, func(s *shm.Segment) error {
		_, err := cyard.Run(context.Background(), yard, "init", initPath(s), fileOff(0))
		return err
	})
	if err != nil {
		return "", err
	}
	return name, seg.Close()
}

func removeC(name string) error { return shm.Remove(name) }

// sellC starts yard selling kind's counter name until tickets are sold:
// glibc's robust mutex around an increment, or a bare CAS, in a loop in
// C that starts when ctl's barrier opens. It returns once yard is ready;
// sell waits for its result. With h, yard also records the gaps between
// its increments (bench latency), reading the clock once per increment
// as the Go buyers do.
func sellC(ctx context.Context, kind, name string, tickets int64, h *gaphist.Hist, ctl *control) (sell func() (bought, stopped int64, err error), err error) {
	yard, path, err := yardFile(ctx, func() (*shm.Segment, error) { return openC(name) })
	if err != nil {
		return nil, err
	}
	loop, timed := "robust", "0"
	if kind == cCAS {
		loop = "cas"
	}
	if h != nil {
		timed = "1"
	}
	c, err := cyard.StartReady(ctx, yard, "sell", loop, path, fileOff(0), fileOff(cOffCtr), strconv.FormatInt(tickets, 10), ctl.seg.Path(), fileOff(8), timed)
	if err != nil {
		return nil, err
	}
	return func() (int64, int64, error) {
		defer func() { c.Kill(); c.Wait() }() // on an early return: nothing left behind
		v, err := c.Ints("sold", 3)
		if err != nil {
			return 0, 0, err
		}
		n, r, stopped := v[0], v[1], v[2]
		if r != 0 {
			return n, stopped, fmt.Errorf("bench: %s: %w", kind, syscall.Errno(r))
		}
		if h != nil {
			f, err := c.Line("hist")
			if err != nil {
				return n, stopped, err
			}
			if *h, err = cyard.ParseHist(f); err != nil {
				return n, stopped, err
			}
		}
		return n, stopped, c.Wait()
	}, nil
}

var clockCost struct {
	once sync.Once
	ns   float64
}

// cClockCost is the cost of one clock read in C's timed loops, ns (0 if
// yard cannot say).
func cClockCost() float64 {
	clockCost.once.Do(func() {
		yard, err := yardPath(context.Background())
		if err != nil {
			return
		}
		out, err := cyard.Run(context.Background(), yard, "clock")
		if err == nil {
			fmt.Sscanf(out, "clock %g", &clockCost.ns)
		}
	})
	return clockCost.ns
}

func soldC(name string) (int64, error) {
	seg, err := openC(name)
	if err != nil {
		return 0, err
	}
	defer seg.Close()
	// 8-aligned inside a shared mapping: see cTag's layout.
	return (*atomic.Int64)(unsafe.Pointer(&seg.Data()[cOffCtr])).Load(), nil
}

// holdC becomes yard holding the pthread mutex of the C counter name (the
// same process: the harness kills this pid and times the waiter), which
// adds one to ctl's ready count once it holds it. yard keeps this Go
// process's number of threads: how soon a robust lock comes back after a
// SIGKILL depends on how many threads the dying holder has (each must
// exit), and shm-mutex's holder is a Go process.
func holdC(name string, ctl *control) error {
	yard, path, err := yardFile(context.Background(), func() (*shm.Segment, error) { return openC(name) })
	if err != nil {
		return err
	}
	// yard says "held" on stdout, which is the harness's: not there.
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	if err := unix.Dup2(int(null.Fd()), 1); err != nil {
		return fmt.Errorf("bench: dup2: %w", err)
	}
	// The environment goes as it is: it no longer names an entry.
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	err = syscall.Exec(yard, []string{"yard", "hold", path, fileOff(0), ctl.seg.Path(), fileOff(0), strconv.Itoa(len(tasks))}, os.Environ())
	return fmt.Errorf("bench: exec %s: %w", yard, err)
}

// cWaiter is the waiter of bench recover for c-robust: yard takeover on
// the C counter name, which returns when the lock comes to it with
// EOWNERDEAD and says when.
func cWaiter(ctx context.Context, name string) (func() (took int64, err error), error) {
	yard, path, err := yardFile(ctx, func() (*shm.Segment, error) { return openC(name) })
	if err != nil {
		return nil, err
	}
	return func() (int64, error) {
		c, err := cyard.Start(ctx, yard, "takeover", path, fileOff(0))
		if err != nil {
			return 0, err
		}
		defer func() { c.Kill(); c.Wait() }()
		v, err := c.Ints("took", 1)
		if err != nil {
			return 0, err
		}
		return v[0], c.Wait()
	}, nil
}
