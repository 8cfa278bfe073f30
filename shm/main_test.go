//go:build linux

package shm

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/testproc"
)

func TestMain(m *testing.M) {
	testproc.Main(m, map[string]testproc.Entry{
		"race-open":   raceOpenEntry,
		"stuck-init":  stuckInitEntry,
		"claim-slot":  claimSlotEntry,
		"fill-slots":  fillSlotsEntry,
		"open-touch":  openTouchEntry,
		"add-counter": addCounterEntry,
		"map-nomem":   mapNoMemEntry,
		"init-loop":   initLoopEntry,
		"fork-writer": forkWriterEntry,
	})
}

var nameSeq atomic.Int64

// tempName is a fresh bare segment name, removed when the test ends.
func tempName(t testing.TB) string {
	name := fmt.Sprintf("test.%d.%d.%d", os.Getpid(), time.Now().UnixNano(), nameSeq.Add(1))
	t.Cleanup(func() {
		if err := Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

const testTag = "shm.test/1"

// waitForFile spins until path exists: a start barrier for child processes.
func waitForFile(path string) {
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// raceOpenEntry: args name, barrier. Waits at the barrier, calls
// OpenOrCreate, prints "init" if its init ran, adds 1 to the counter at
// offset 8 and prints "done".
func raceOpenEntry(args []string) int {
	name, barrier := args[0], args[1]
	fmt.Println("ready")
	waitForFile(barrier)
	ran := false
	s, err := OpenOrCreate(context.Background(), name, 64, testTag, func(s *Segment) error {
		ran = true
		v, err := s.Int64(0)
		if err != nil {
			return err
		}
		v.Store(int64(os.Getpid()))
		return nil
	})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	if ran {
		fmt.Println("init")
	}
	c, err := s.Int64(8)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c.Add(1)
	fmt.Println("done")
	return 0
}

// stuckInitEntry: args name. Its init scribbles on the data region, says
// "in-init" and never returns: the test SIGKILLs it there.
func stuckInitEntry(args []string) int {
	_, err := OpenOrCreate(context.Background(), args[0], 64, testTag, func(s *Segment) error {
		for i := range s.Data() {
			s.Data()[i] = 0xAB
		}
		fmt.Println("in-init")
		time.Sleep(time.Hour)
		return nil
	})
	fmt.Fprintln(os.Stderr, "stuck-init returned:", err)
	return 1
}

// claimSlotEntry: args name [prefer]. Claims a slot (preferring the
// index given), prints "slot <index> <gen>" or "error <err>", waits to be
// killed.
func claimSlotEntry(args []string) int {
	s, err := Open(args[0], testTag)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	var prefer []int
	if len(args) > 1 {
		i, _ := strconv.Atoi(args[1])
		prefer = append(prefer, i)
	}
	sl, err := s.Slot(context.Background(), prefer...)
	if err != nil {
		fmt.Println("error", err)
	} else {
		fmt.Println("slot", sl.Index, sl.Gen)
	}
	time.Sleep(time.Hour)
	return 0
}

// fillSlotsEntry: args name, n. Holds slots 0 to n-1 as n processes
// would (an open file and a lock each, its entry written), says "filled",
// waits to be killed: a test's way to make the next claim take slot n.
func fillSlotsEntry(args []string) int {
	path, _ := Path(args[0])
	n, _ := strconv.Atoi(args[1])
	for i := range n {
		s, err := Open(args[0], testTag)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		// A handle of our own would share one mapping and one slot:
		// take each slot through a file of its own instead.
		f, err := openFile(path, 0)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := lockByte(f, slotLockBase+int64(i)); err != nil {
			fmt.Fprintln(os.Stderr, "slot", i, err)
			return 1
		}
		ns, _ := pidNamespace()
		e := s.m.slotEntry(i)
		e.pid.Store(int32(os.Getpid()))
		e.pidNS.Store(ns)
		e.gen.Add(1)
		s.Close()
	}
	fmt.Println("filled")
	time.Sleep(time.Hour)
	return 0
}

// addCounterEntry: args name, n. Adds 1 to the counter at offset 0, n times.
func addCounterEntry(args []string) int {
	s, err := Open(args[0], testTag)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer s.Close()
	n, _ := strconv.Atoi(args[1])
	c, err := s.Uint64(0)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for range n {
		c.Add(1)
	}
	return 0
}

// openTouchEntry: args path. Opens the segment and stores into every page
// of its data region, then prints "touched"; or prints "error <err>".
func openTouchEntry(args []string) int {
	s, err := Open(args[0], testTag)
	if err != nil {
		fmt.Println("error", err)
		return 0
	}
	d := s.Data()
	for i := 0; i < len(d); i += os.Getpagesize() {
		d[i] = 1
	}
	fmt.Println("touched")
	return 0
}

// mapNoMemEntry: args path. Limits this process's address space to what
// it uses now and 512 MiB more, then asks OpenOrCreate for a 1 GiB
// segment at path: its space is reserved, its mapping fails (ENOMEM).
// Prints "error <err>" or "opened".
func mapNoMemEntry(args []string) int {
	vm, err := vmSize()
	if err == nil {
		// Room for the runtime's own growth (the race runtime's too:
		// 64 MiB was short now and then), not for the segment.
		lim := unix.Rlimit{Cur: vm + 512<<20, Max: vm + 512<<20}
		err = unix.Setrlimit(unix.RLIMIT_AS, &lim)
	}
	if err == nil {
		var s *Segment
		if s, err = OpenOrCreate(context.Background(), args[0], 1<<30, testTag, nil); err == nil {
			s.Close()
			fmt.Println("opened")
			return 0
		}
	}
	fmt.Println("error", err)
	return 0
}

// vmSize is this process's address space in bytes (VmSize).
func vmSize() (uint64, error) {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmSize:"); ok {
			kb, err := strconv.ParseUint(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return kb << 10, err
		}
	}
	return 0, errors.New("no VmSize in /proc/self/status")
}

// initLoopEntry: args name. Makes and removes the segment name with
// OpenOrCreate until killed: the header written in place, again and
// again, for TestOpenDuringInit's reader.
func initLoopEntry(args []string) int {
	fmt.Println("looping")
	for {
		s, err := OpenOrCreate(context.Background(), args[0], 64, testTag, nil)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		s.Close()
		Remove(args[0])
	}
}
