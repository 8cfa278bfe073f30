//go:build linux

package shm

import (
	"context"
	"errors"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
)

// TestOpenPrivate: a private look sees the segment's words as they change,
// tells live slots from dead ones, and its writes reach no one; it claims
// nothing.
func TestOpenPrivate(t *testing.T) {
	name := tempName(t)
	s, err := Create(name, 4096, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	mine, err := s.Slot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	v, _ := s.Uint64(8)
	v.Store(5)

	p, err := OpenPrivate(name)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	if !p.Private() || s.Private() {
		t.Fatal("Private: want true for the look only")
	}
	pv, err := p.Uint64(8)
	if err != nil {
		t.Fatal(err)
	}
	if got := pv.Load(); got != 5 {
		t.Errorf("look reads %d, want 5", got)
	}
	v.Store(6) // seen: the look's page is still the file's
	if got := pv.Load(); got != 6 {
		t.Errorf("look reads %d after the segment's store, want 6", got)
	}
	pv.Store(99) // private: the segment keeps 6
	if got := v.Load(); got != 6 {
		t.Errorf("segment reads %d after the look's store, want 6", got)
	}
	if alive, err := p.Alive(mine); err != nil || !alive {
		t.Errorf("look: Alive(our slot) = %v, %v; want true", alive, err)
	}
	if _, err := p.Slot(context.Background()); !errors.Is(err, ErrPrivate) {
		t.Errorf("look: Slot: %v, want ErrPrivate", err)
	}
	if err := p.Populate(); !errors.Is(err, ErrPrivate) {
		t.Errorf("look: Populate: %v, want ErrPrivate", err)
	}
	slots, err := p.Slots()
	if err != nil || len(slots) != 1 || !slots[0].Alive || slots[0].Slot != mine {
		t.Errorf("look: Slots = %+v, %v; want our live slot alone", slots, err)
	}
	// A dead process's slot is dead to the look.
	child := testproc.Start(t, "claim-slot", name)
	child.ExpectPrefix("slot ")
	slots, _ = p.Slots()
	if len(slots) != 2 || !slots[1].Alive {
		t.Errorf("look with a live child: %+v; want its slot listed alive", slots)
	}
	child.Kill()
	child.Wait()
	slots, _ = p.Slots()
	if len(slots) != 2 || slots[1].Alive {
		t.Errorf("look after a child's exit: %+v; want its slot listed dead", slots)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Uint64(8); !errors.Is(err, ErrClosed) {
		t.Errorf("closed look: %v, want ErrClosed", err)
	}
	if _, err := OpenPrivate(tempName(t)); err == nil {
		t.Error("OpenPrivate of a missing file: nil error")
	}
}
