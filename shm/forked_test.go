//go:build linux

package shm

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/testproc"
)

// forkWriterEntry: args name. Claims a slot, prints "slot <index> <gen>",
// then forks WITHOUT exec (what a C library called through cgo, daemon(3),
// or a non-Go user of the documented layout does): the fork shares the
// claimer's open file (so its slot lock) and its MAP_SHARED mapping. The
// fork closes stdout and stderr and adds 1 to the word at offset 0 every
// millisecond until the word at 8 is nonzero (or 30 s), touching nothing
// of the Go runtime but atomics and raw system calls. The claimer prints
// "forked <pid>" and waits to be killed.
func forkWriterEntry(args []string) int {
	s, err := Open(args[0], testTag)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	sl, err := s.Slot(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	v, _ := s.Uint64(0)
	stop, _ := s.Uint64(8)
	fmt.Println("slot", sl.Index, sl.Gen)
	return testproc.ForkAndPark(func() {
		for i := 0; i < 30000 && stop.Load() == 0; i++ {
			v.Add(1)
			testproc.RawSleep(time.Millisecond)
		}
	})
}

// TestAliveForkedHolder: a slot's claimer forks (no exec) and dies; its
// fork holds the claimer's open file, hence the slot's lock. Alive says
// false once the claimer is reaped (kill(pid, 0): ESRCH), so the fork
// must not be able to write as the slot: the mapping is MADV_DONTFORK,
// and the fork faults at its first touch. Without it (adversarial
// review), the fork went on writing while Alive said the slot was dead,
// and ticketshm's settleDead, a Mutex seizure, Semaphore.reclaim or a
// queue takeover would have acted under a live writer.
func TestAliveForkedHolder(t *testing.T) {
	name := tempName(t)
	s, err := Create(name, 64, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Slot(context.Background()); err != nil {
		t.Fatal(err)
	}
	v, _ := s.Uint64(0)
	stop, _ := s.Uint64(8)
	p := testproc.Start(t, "fork-writer", name)
	p.Expect("slot 1 1")
	fpid := p.Forked()
	t.Cleanup(func() {
		stop.Store(1)
		unix.Kill(fpid, unix.SIGKILL)
	})
	p.Kill()
	p.Wait() // reaped: its pid names no process

	var locked bool
	s.m.withFile(func(f *os.File) (err error) {
		locked, err = byteLocked(f, slotLockBase+1)
		return err
	})
	alive, err := s.Alive(Slot{1, 1})
	c1 := v.Load()
	time.Sleep(50 * time.Millisecond)
	c2 := v.Load()
	t.Logf("claimer %d reaped; fork %d: slot lock held %v, Alive %v, %v; counter %d -> %d in 50ms", p.Pid(), fpid, locked, alive, err, c1, c2)
	if locked && c2 > c1 && !alive {
		t.Errorf("Alive(slot 1) = false while the slot's lock is held by a process (the claimer's fork) that still writes the segment")
	}
}
