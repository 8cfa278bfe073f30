//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
)

// killedHolder leaves name's mutex as a SIGKILLed holder leaves it.
func killedHolder(t *testing.T, name string) {
	t.Helper()
	owner := testproc.Start(t, "hold", name)
	owner.Expect("locked ok")
	owner.Kill()
	owner.Wait()
}

// doReport runs m.Do with fn returning ret, and reports what fn saw:
// "ran false", "ran true", or "not run", with Do's error.
func doReport(m *Mutex, ret error) (string, error) {
	got := "not run"
	err := m.Do(context.Background(), func(ownerDied bool) error {
		got = fmt.Sprint("ran ", ownerDied)
		return ret
	})
	return got, err
}

// TestDo (issue 17): Do repairs, marks consistent, unlocks; a failed
// repair leaves the mutex not recoverable until Reset; a panic inside is
// a death for the next locker. Each step checked against a SIGKILLed
// holder in another process.
func TestDo(t *testing.T) {
	name, _, m := newTestMutex(t)
	step := func(what string, ret error, wantSaw string, wantErr error) {
		t.Helper()
		saw, err := doReport(m, ret)
		if saw != wantSaw || (wantErr == nil && err != nil) || (wantErr != nil && !errors.Is(err, wantErr)) {
			t.Fatalf("%s: fn %s, Do returned %v; want fn %s, %v", what, saw, err, wantSaw, wantErr)
		}
	}
	step("a free lock", nil, "ran false", nil)
	killedHolder(t, name)
	step("after a death", nil, "ran true", nil)
	step("after the repair", nil, "ran false", nil)

	failed := errors.New("repair failed")
	killedHolder(t, name)
	step("a failed repair", failed, "ran true", failed)
	step("after the failed repair", nil, "not run", ErrNotRecoverable)
	if err := m.Reset(); err != nil {
		t.Fatalf("Reset of a not-recoverable mutex: %v", err)
	}
	step("after Reset", nil, "ran false", nil)

	other := errors.New("no")
	step("fn's error on a sound lock", other, "ran false", other)
	step("after fn's error", nil, "ran false", nil)

	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want the panic", r)
			}
		}()
		m.Do(context.Background(), func(bool) error { panic("boom") })
	}()
	// Another process sees the panicked holder as a dead one.
	w := testproc.Start(t, "lock-report", name, "consistent")
	w.Expect("got ownerdead")
	w.MustExit()
	step("after another process repaired", nil, "ran false", nil)

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	holder := testproc.Start(t, "hold", name)
	holder.Expect("locked ok")
	if err := m.Do(ctx, func(bool) error { t.Fatal("fn ran without the lock"); return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("Do with a done ctx on a held lock: %v", err)
	}
}

// TestReset: Reset refuses while a live process holds the lock and while
// a dead owner's state waits for repair; on a free lock it does nothing.
func TestReset(t *testing.T) {
	name, _, m := newTestMutex(t)
	if err := m.Reset(); err != nil {
		t.Fatalf("Reset of a free lock: %v", err)
	}
	holder := testproc.Start(t, "hold", name)
	holder.Expect("locked ok")
	if err := m.Reset(); !errors.Is(err, ErrHeld) {
		t.Fatalf("Reset of a held lock: %v, want ErrHeld", err)
	}
	holder.Kill()
	holder.Wait()
	if err := m.Reset(); !errors.Is(err, ErrHeld) {
		t.Fatalf("Reset of a dead holder's lock: %v, want ErrHeld", err)
	}
	if err := m.Lock(); err != ErrOwnerDead {
		t.Fatalf("Lock after the refused Reset: %v, want ErrOwnerDead", err)
	}
	if err := m.Reset(); !errors.Is(err, ErrHeld) {
		t.Fatalf("Reset of a lock this process holds: %v, want ErrHeld", err)
	}
	m.Consistent()
	m.Unlock()
	var zero Mutex
	if err := zero.Reset(); err == nil {
		t.Fatal("Reset of a zero Mutex: nil")
	}
}

// TestLocker: the sync.Locker works with sync.Cond; after a death its
// Lock panics instead of returning without a repair, and leaves the
// repair to the next locker.
func TestLocker(t *testing.T) {
	name, _, m := newTestMutex(t)
	l := m.Locker()
	cond := sync.NewCond(l)
	ready := false
	done := make(chan struct{})
	go func() {
		l.Lock()
		for !ready {
			cond.Wait()
		}
		l.Unlock()
		close(done)
	}()
	l.Lock()
	ready = true
	cond.Broadcast()
	l.Unlock()
	<-done

	killedHolder(t, name)
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Fatal("Locker.Lock after a death returned")
			}
		}()
		l.Lock()
	}()
	if saw, err := doReport(m, nil); saw != "ran true" || err != nil {
		t.Fatalf("Do after the Locker's panic: %s, %v; want the repair", saw, err)
	}
	func() {
		defer func() {
			if r := recover(); r == nil {
				t.Fatal("Locker.Unlock of an unlocked mutex returned")
			}
		}()
		l.Unlock()
	}()
}
