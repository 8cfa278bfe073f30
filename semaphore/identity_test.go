//go:build linux

package semaphore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// The tests of this file make a process number reused, by force, and check
// that no word of a record mistakes the new process for the old one:
// thread ids reused (ns_last_pid), slots reused (a child claims the dead
// one's slot by name), PID namespaces sharing /dev/shm (CLONE_NEWPID).
// Each failed on the layout before slot generations (semaphore.Mutex/1).

// parseID reads a child's "id <slot> <owner id>" line (after its prefix).
func parseID(t *testing.T, rest string) (slot int, tid uint32) {
	t.Helper()
	if _, err := fmt.Sscan(rest, &slot, &tid); err != nil {
		t.Fatalf("child's id line %q: %v", rest, err)
	}
	return slot, tid
}

// startWithTID starts entry with args until the child's owner id (the
// thread id of its robust thread, which it prints in an "id" line) is tid:
// it steers the kernel's next pid with ns_last_pid, from a first guess of
// how far past its pid a child's robust thread lands, and tries again when
// another process took the number first. In a full test run other test
// binaries start processes all the time (ticketshm's kill storms), and
// 100 tries once all lost the race (TestStaleRevokerSeizesReusedID, in
// .ci/run): it tries 1000 times, a few seconds at most.
func startWithTID(t *testing.T, tid uint32, guess int, entry string, args ...string) (*testproc.Proc, int) {
	t.Helper()
	// Thread ids are one counter for the whole machine, and the tests
	// of other packages make processes and threads all the time. A try
	// loses when one of them takes an id between ours; and while a live
	// task of theirs holds tid itself, every try loses: wait for it to
	// end (a .ci/run once spent all its tries so).
	deadline := time.Now().Add(time.Minute)
	for tries := 0; tries < 1000 && time.Now().Before(deadline); {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", tid)); err == nil {
			time.Sleep(time.Millisecond)
			continue
		}
		tries++
		if err := testproc.SetLastPid(int(tid) - guess - 1); err != nil {
			t.Fatalf("set ns_last_pid: %v", err)
		}
		p := testproc.Start(t, entry, args...)
		slot, got := parseID(t, p.ExpectPrefix("id "))
		if got == tid {
			return p, slot
		}
		guess = int(got) - p.Pid()
		p.Kill()
		p.Wait()
	}
	t.Fatalf("could not start a child whose robust thread has id %d", tid)
	return nil, 0
}

// TestTIDReuseBias: a process biased the lock and was killed, inside or
// between critical sections; a new process whose robust thread has the
// dead one's thread id (the id it wrote into the words), in the dead one's
// slot or another, locks. It gets the lock as from the dead holder (with
// ErrOwnerDead if that died inside) and holds it alone: another process's
// TryLock fails. (Before, it found the bias word naming its own id and
// entered through the bias without the futex word, and the TryLock took
// the lock too.)
func TestTIDReuseBias(t *testing.T) {
	needBias(t)
	testproc.NeedRoot(t)
	for _, where := range []string{"inside", "between"} {
		for _, slot := range []string{"same-slot", "other-slot"} {
			t.Run(where+"/"+slot, func(t *testing.T) {
				name, _, m := newTestMutex(t)
				d := testproc.Start(t, "bias-hold", name, where)
				dslot, dtid := parseID(t, d.ExpectPrefix("id "))
				d.Expect("biased true")
				d.Expect(where)
				d.Kill()
				d.Wait()
				prefer := dslot
				for slot == "other-slot" && (prefer == dslot || prefer == m.Slot()) {
					prefer++
				}
				barrier := filepath.Join(t.TempDir(), "go")
				n, nslot := startWithTID(t, dtid, int(dtid)-d.Pid(), "attach", name, fmt.Sprint(prefer), "biased", barrier)
				if (nslot == dslot) != (slot == "same-slot") {
					t.Fatalf("the new process has slot %d, the dead one had %d", nslot, dslot)
				}
				n.Expect("joined")
				if err := os.WriteFile(barrier, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				want := "got ok"
				if where == "inside" {
					want = "got ownerdead"
				}
				n.Expect(want)
				if ok, err := m.TryLock(); ok || err != nil {
					t.Fatalf("TryLock while the process with the dead holder's thread id holds the lock = %v, %v; want false, nil", ok, err)
				}
				if w := binary.LittleEndian.Uint32(m.m.rec[offWord:]); w&tidMask != dtid {
					t.Fatalf("word %#x, want the new holder's id %d", w, dtid)
				}
			})
		}
	}
}

// TestNamespaceMutex: processes of two PID namespaces share /dev/shm. One
// holds the mutex; a process of the other namespace cannot attach it
// (shm.ErrNamespace) and its death leaves the holder's word alone; nor can
// this process, of a third. Once the holder is dead, the other namespace
// may use the segment, and finds the dead owner. (Before, thread ids of
// the two namespaces collided: a process unlocked a lock it never took,
// and one that only attached marked a live holder's word OWNER_DIED when
// it died.)
func TestNamespaceMutex(t *testing.T) {
	name, seg := newTestSegment(t) // this process takes no slot until it attaches
	h := testproc.StartInNewPIDNamespace(t, "hold", name)
	h.Expect("locked ok")
	word := func() uint32 { return binary.LittleEndian.Uint32(seg.Data()[offWord:]) }
	held := word()
	a := testproc.StartInNewPIDNamespace(t, "attach", name, "-1", "mutex")
	if got := a.ExpectPrefix("error "); !strings.Contains(got, shm.ErrNamespace.Error()) {
		t.Fatalf("a process of another PID namespace attaching said %q, want %v", got, shm.ErrNamespace)
	}
	a.Kill()
	a.Wait()
	if w := word(); w != held {
		t.Fatalf("word %#x after the other namespace's process died, want %#x as its holder left it", w, held)
	}
	if _, err := NewMutex(context.Background(), seg, 0); !errors.Is(err, shm.ErrNamespace) {
		t.Fatalf("NewMutex here while another namespace's process holds the lock: %v, want shm.ErrNamespace", err)
	}
	h.Kill()
	h.Wait()
	b := testproc.StartInNewPIDNamespace(t, "lock-report", name, "consistent")
	b.Expect("got ownerdead")
	b.MustExit()
}

// TestRevokerKeepsOwnerDead: a revoker waits for the biased holder to leave
// its critical section; the holder is killed inside; before the revoker
// looks again (it is stopped), a new process takes the holder's slot and
// attaches the record. The revoker still gets ErrOwnerDead. (Before, the
// new process's entry replaced the dead holder's in-critical-section bit
// and the revoker took the lock with nil: the damage was never repaired.)
func TestRevokerKeepsOwnerDead(t *testing.T) {
	needBias(t)
	name, seg := newTestSegment(t)
	h := testproc.Start(t, "bias-hold", name, "inside")
	hslot, _ := parseID(t, h.ExpectPrefix("id "))
	h.Expect("inside")
	r := claimingRevoker(t, name, seg)
	r.Signal(syscall.SIGSTOP)
	h.Kill()
	h.Wait()
	n := testproc.Start(t, "attach", name, fmt.Sprint(hslot), "mutex")
	n.Expect(fmt.Sprintf("slot %d 2", hslot))
	n.Expect("joined")
	r.Signal(syscall.SIGCONT)
	r.Expect("got ownerdead")

	r.MustExit()
}

// TestSlotReuseBetween: a biased holder killed between critical sections,
// whose slot a new process takes before anyone locks: the lock is free
// (nil), as the holder left it. Killed inside, it is ErrOwnerDead.
// (Before, the new process's entry lost the dead one's state and the
// next locker got ErrOwnerDead either way.)
func TestSlotReuseBetween(t *testing.T) {
	needBias(t)
	for _, where := range []string{"between", "inside"} {
		t.Run(where, func(t *testing.T) {
			name, seg := newTestSegment(t)
			h := testproc.Start(t, "bias-hold", name, where)
			hslot, _ := parseID(t, h.ExpectPrefix("id "))
			h.Expect(where)
			h.Kill()
			h.Wait()
			n := testproc.Start(t, "attach", name, fmt.Sprint(hslot), "mutex")
			n.Expect(fmt.Sprintf("slot %d 2", hslot))
			n.Expect("joined")
			m, err := NewMutex(context.Background(), seg, 0)
			if err != nil {
				t.Fatal(err)
			}
			err = m.Lock()
			if where == "between" && err != nil || where == "inside" && err != ErrOwnerDead {
				t.Fatalf("Lock after the holder died %s and its slot was taken: %v", where, err)
			}
			m.Consistent()
			m.Unlock()
		})
	}
}

// TestOtherRecordSlotReuse: a segment with two mutex records. A process
// whose slot is reused by a process that attaches only the other record
// is dead to this one: a revoker killed after claiming a bias does not
// wedge it, and a starving waiter killed after asking for a hand-off is not
// handed the lock. (Before, the dead process's entry in this record named
// a live slot: every lock of the record waited for good.)
func TestOtherRecordSlotReuse(t *testing.T) {
	t.Run("revoker", func(t *testing.T) {
		needBias(t)
		name, seg := newTestSegment(t)
		recB := fmt.Sprintf("%s@%d", name, offRecB)
		h := testproc.Start(t, "bias-hold", recB, "between")
		h.Expect("between")
		r := testproc.Start(t, "revoke-stop", recB, "claimed")
		r.Expect("stopped claimed")
		rs := biasRevoker(binary.LittleEndian.Uint64(seg.Data()[offRecB+offBias:]))
		r.Kill()
		r.Wait()
		n := testproc.Start(t, "attach", name, fmt.Sprint(rs), "mutex")
		n.Expect(fmt.Sprintf("slot %d 2", rs))
		n.Expect("joined")
		l := testproc.Start(t, "lock-report", recB, "consistent")
		l.Expect("got ok")
		l.MustExit()
	})
	t.Run("hand-off", func(t *testing.T) {
		name, seg := newTestSegment(t)
		recB := fmt.Sprintf("%s@%d", name, offRecB)
		barrier := filepath.Join(t.TempDir(), "go")
		x := testproc.Start(t, "hold-until", recB, barrier)
		x.Expect("locked ok")
		s := testproc.Start(t, "lock-report", recB, "consistent")
		s.Expect("waiting")
		var ss int
		for {
			if h := binary.LittleEndian.Uint32(seg.Data()[offRecB+offHandoff:]); h != 0 {
				ss = int(h&slotMask) - 1 // it starved and asked
				break
			}
			time.Sleep(100 * time.Microsecond)
		}
		s.Kill()
		s.Wait()
		n := testproc.Start(t, "attach", name, fmt.Sprint(ss), "mutex")
		n.Expect(fmt.Sprintf("slot %d 2", ss))
		n.Expect("joined")
		if err := os.WriteFile(barrier, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		x.Expect("unlocked")
		l := testproc.Start(t, "lock-report", recB, "consistent")
		l.Expect("got ok")
		l.MustExit()
	})
}

// TestCloseWhileHeld: a process that closes the segment while it holds
// the lock abandons it: the next locker gets ErrOwnerDead, at once,
// though that process lives on.
func TestCloseWhileHeld(t *testing.T) {
	name, _, m := newTestMutex(t)
	c := testproc.Start(t, "close-held", name)
	c.Expect("closed")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang bound only
	defer cancel()
	if err := m.LockContext(ctx); err != ErrOwnerDead {
		t.Fatalf("Lock after its holder closed the segment holding it: %v, want ErrOwnerDead", err)
	}
	m.Consistent()
	m.Unlock()
}

// TestSemaphoreIdentity: permits belong to a process, not to a handle or
// a slot. A second Semaphore on the same record in one process does not
// give back the first's permits; a dead holder's permits come back though
// its slot was claimed again by a process that does not use the
// Semaphore. (Before, the second handle gave them back: 6 of 3 held; and
// the reused slot looked alive, so the dead holder's permits never came
// back.)
func TestSemaphoreIdentity(t *testing.T) {
	t.Run("two handles", func(t *testing.T) {
		_, seg := newTestSegment(t)
		s1, err := NewSemaphore(context.Background(), seg, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := s1.Acquire(context.Background(), testPerms); err != nil {
			t.Fatal(err)
		}
		s2, err := NewSemaphore(context.Background(), seg, 0)
		if err != nil {
			t.Fatal(err)
		}
		if s2.Available() != 0 || s2.Held() != testPerms || s2.TryAcquire(1) {
			t.Fatalf("second handle: %d available, %d held; want 0 and %d, and no permit", s2.Available(), s2.Held(), testPerms)
		}
		if err := s2.Release(testPerms); err != nil { // any handle of the holder may release
			t.Fatal(err)
		}
		if s1.Available() != testPerms {
			t.Fatalf("%d available after the release, want %d", s1.Available(), testPerms)
		}
	})
	t.Run("dead holder, slot reused", func(t *testing.T) {
		name, seg := newTestSegment(t)
		h := testproc.Start(t, "sem-hold", name, "2")
		h.Expect("held")
		hs := -1
		for i := range MaxProcs {
			if binary.LittleEndian.Uint64(seg.Data()[offHeld+16*i:]) == 2 {
				hs = i
			}
		}
		h.Kill()
		h.Wait()
		n := testproc.Start(t, "attach", name, fmt.Sprint(hs), "none")
		n.Expect(fmt.Sprintf("slot %d 2", hs))
		n.Expect("joined")
		s, err := NewSemaphore(context.Background(), seg, 0)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang bound only
		defer cancel()
		if err := s.Acquire(ctx, testPerms); err != nil {
			t.Fatalf("Acquire of every permit after their holder died and its slot was reused: %v", err)
		}
		s.Release(testPerms)
	})
}
