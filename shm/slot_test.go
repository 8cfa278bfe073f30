//go:build linux

package shm

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/testproc"
)

// TestSlots: a slot held by another process is alive until it dies; its
// index, claimed again, is another Slot, and the dead one stays dead.
func TestSlots(t *testing.T) {
	name := tempName(t)
	s, err := Create(name, 8, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mine, err := s.Slot(context.Background())
	if err != nil || mine != (Slot{0, 1}) {
		t.Fatalf("Slot = %v, %v; want slot 0, generation 1", mine, err)
	}
	if again, err := s.Slot(context.Background(), 5); err != nil || again != mine {
		t.Fatalf("second Slot = %v, %v; want the first, %v", again, err, mine)
	}
	p := testproc.Start(t, "claim-slot", name)
	p.Expect("slot 1 1")
	theirs := Slot{1, 1}
	for _, c := range []struct {
		sl   Slot
		want bool
	}{{mine, true}, {theirs, true}, {Slot{2, 0}, false}, {Slot{1, 2}, false}} {
		if alive, err := s.Alive(c.sl); err != nil || alive != c.want {
			t.Fatalf("Alive(%v) = %v, %v; want %v", c.sl, alive, err, c.want)
		}
	}
	p.Kill()
	p.Wait()
	if alive, err := s.Alive(theirs); err != nil || alive {
		t.Fatalf("Alive(%v) after SIGKILL = %v, %v; want false", theirs, alive, err)
	}
	infos, err := s.Slots()
	if err != nil || len(infos) != 2 || infos[1].Pid != p.Pid() || infos[1].Alive || infos[1].Closed || !infos[0].Alive {
		t.Fatalf("Slots() = %+v, %v; want ours alive and the child's (pid %d) dead, not closed", infos, err, p.Pid())
	}
	// Its index again, for a new process: a new generation, and the old
	// Slot stays dead. (Its lock first goes: a reaped process's lock can
	// outlive it while another task holds its file; see Alive.)
	waitLockGone(t, s, 1)
	q := testproc.Start(t, "claim-slot", name, "1")
	q.Expect("slot 1 2")
	if alive, err := s.Alive(theirs); err != nil || alive {
		t.Fatalf("Alive(%v) after its index was claimed again = %v, %v; want false", theirs, alive, err)
	}
	if alive, err := s.Alive(Slot{1, 2}); err != nil || !alive {
		t.Fatalf("Alive of the new claim = %v, %v; want true", alive, err)
	}
}

// TestOneMappingPerProcess: a process that opens a segment twice gets two
// handles on one mapping and one slot; the slot goes when the last handle
// is closed, and a handle closed early says ErrClosed.
func TestOneMappingPerProcess(t *testing.T) {
	name := tempName(t)
	a, err := Create(name, 64, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Open(name, testTag)
	if err != nil {
		t.Fatal(err)
	}
	c, err := OpenOrCreate(context.Background(), name, 64, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	if unsafe.SliceData(a.Data()) != unsafe.SliceData(b.Data()) || unsafe.SliceData(b.Data()) != unsafe.SliceData(c.Data()) {
		t.Fatal("three handles on one segment in one process map it three times")
	}
	sa, err := a.Slot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if sb, err := b.Slot(context.Background()); err != nil || sb != sa {
		t.Fatalf("second handle's slot %v, %v; want the first's, %v", sb, err, sa)
	}
	if _, err := Open(name, "other/1"); !errors.Is(err, ErrTypeMismatch) {
		t.Fatalf("Open with another tag while mapped: %v, want ErrTypeMismatch", err)
	}
	if _, err := OpenOrCreate(context.Background(), name, 32, testTag, nil); !errors.Is(err, ErrSizeMismatch) {
		t.Fatalf("OpenOrCreate with another size while mapped: %v, want ErrSizeMismatch", err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Slot(context.Background()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Slot on a closed handle: %v, want ErrClosed", err)
	}
	v, err := b.Uint64(0)
	if err != nil {
		t.Fatal(err)
	}
	v.Store(7) // still mapped: b and c are open
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	p := testproc.Start(t, "claim-slot", name, fmt.Sprint(sa.Index))
	p.Expect(fmt.Sprintf("slot %d %d", sa.Index+1, 1)) // ours is still held, through c
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	q := testproc.Start(t, "claim-slot", name, fmt.Sprint(sa.Index))
	q.Expect(fmt.Sprintf("slot %d %d", sa.Index, sa.Gen+1)) // released with the last handle
}

// TestNoSlot: with every slot held, a claim fails with ErrNoSlot.
func TestNoSlot(t *testing.T) {
	name := tempName(t)
	s, err := Create(name, 8, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	f := testproc.Start(t, "fill-slots", name, fmt.Sprint(MaxSlots))
	f.Expect("filled")
	if _, err := s.Slot(context.Background()); !errors.Is(err, ErrNoSlot) {
		t.Fatalf("Slot with all %d held: %v, want ErrNoSlot", MaxSlots, err)
	}
}

// TestNamespaces: a process of another PID namespace cannot claim a slot
// while a process of this one holds one, nor this one while it holds one;
// once the other namespace's processes are gone, the segment is free for
// either.
func TestNamespaces(t *testing.T) {
	name := tempName(t)
	s, err := Create(name, 8, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	p := testproc.Start(t, "claim-slot", name)
	p.Expect("slot 0 1")
	other := testproc.StartInNewPIDNamespace(t, "claim-slot", name)
	got := other.ExpectPrefix("error ")
	want := fmt.Sprintf("%v: pid %d of PID namespace %d holds slot 0", ErrNamespace, p.Pid(), mustNS(t))
	if !strings.Contains(got, want) {
		t.Fatalf("a claim from another PID namespace said %q, want it to say %q", got, want)
	}
	other.Kill()
	other.Wait()
	p.Kill()
	p.Wait()
	// Now the other namespace first: this one is refused.
	other = testproc.StartInNewPIDNamespace(t, "claim-slot", name)
	other.Expect("slot 0 2")
	if _, err := s.Slot(context.Background()); !errors.Is(err, ErrNamespace) {
		t.Fatalf("Slot while another namespace's process holds one: %v, want ErrNamespace", err)
	}
	other.Kill()
	other.Wait()
	if sl, err := s.Slot(context.Background()); err != nil || sl != (Slot{0, 3}) {
		t.Fatalf("Slot after the other namespace's process died: %v, %v; want slot 0, generation 3", sl, err)
	}
	s.Close()
}

// waitLockGone waits until no process holds slot i's lock of s's file.
func waitLockGone(t *testing.T, s *Segment, i int) {
	t.Helper()
	for range 5000 {
		locked, err := byteLocked(s.m.f, slotLockBase+int64(i))
		if err != nil {
			t.Fatal(err)
		}
		if !locked {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("slot %d's lock still held 5 s after its process was reaped", i)
}

func mustNS(t *testing.T) uint64 {
	ns, err := pidNamespace()
	if err != nil {
		t.Fatal(err)
	}
	return ns
}
