//go:build linux

package shm

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

// TestAliveAfterReap: a process's slot lock lives on its open file, which
// can outlive it: here a pidfd_getfd copy holds it, as a reader of
// /proc/PID/maps does for milliseconds in a full test run. Alive says
// false once the process is reaped all the same (its pid is gone), and
// true while it is a zombie (its pid still names a process: the safe
// answer). Before, it said true until the file went, and ticketshm's
// Audit called a reaped buyer's tickets lost (adversarial review).
func TestAliveAfterReap(t *testing.T) {
	name := tempName(t)
	s, err := Create(name, 8, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Slot(context.Background()); err != nil {
		t.Fatal(err)
	}
	p := testproc.Start(t, "claim-slot", name)
	p.Expect("slot 1 1")
	release := p.HoldFile(t, mustPath(t, name))
	p.Zombie(t)
	if alive, err := s.Alive(Slot{1, 1}); err != nil || !alive {
		t.Errorf("Alive of a zombie's slot, its file held = %v, %v; want true", alive, err)
	}
	p.Wait()
	if alive, err := s.Alive(Slot{1, 1}); err != nil || alive {
		t.Errorf("Alive of a reaped process's slot, its file held = %v, %v; want false", alive, err)
	}
	if infos, err := s.Slots(); err != nil || len(infos) != 2 || infos[1].Alive {
		t.Errorf("Slots() = %+v, %v; want the reaped process's slot dead", infos, err)
	}
	release()
	if alive, err := s.Alive(Slot{1, 1}); err != nil || alive {
		t.Errorf("Alive after the file went = %v, %v; want false", alive, err)
	}
}

// TestNamespaceAfterReap: the last process of another PID namespace dies
// while its slot's lock lives on (its file held elsewhere for a moment).
// Its pid means nothing here, so nothing but the lock tells it from a
// live one: a claim waits up to namespaceWait for the lock to go, and
// gets a slot once it does. Before, it failed with ErrNamespace at once.
// Held longer, the claim still fails with ErrNamespace.
func TestNamespaceAfterReap(t *testing.T) {
	if !testproc.CanUnsharePID() {
		t.Skip("cannot make a PID namespace here")
	}
	for _, c := range []struct {
		hold time.Duration
		ok   bool
	}{{20 * time.Millisecond, true}, {3 * namespaceWait, false}} {
		name := tempName(t)
		s, err := Create(name, 8, testTag, nil)
		if err != nil {
			t.Fatal(err)
		}
		other := testproc.StartInNewPIDNamespace(t, "claim-slot", name)
		other.Expect("slot 0 1")
		release := other.HoldFile(t, mustPath(t, name))
		other.Kill()
		other.Wait()
		timer := time.AfterFunc(c.hold, release)
		_, err = s.Slot(context.Background())
		timer.Stop()
		release()
		s.Close()
		if c.ok && err != nil {
			t.Errorf("Slot with the other namespace's only process reaped, its lock gone after %v: %v", c.hold, err)
		}
		if !c.ok && !errors.Is(err, ErrNamespace) {
			t.Errorf("Slot with the other namespace's lock held %v: %v, want ErrNamespace", c.hold, err)
		}
	}
}

// mustPath is the file of the segment name.
func mustPath(t *testing.T, name string) string {
	t.Helper()
	p, err := Path(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}
