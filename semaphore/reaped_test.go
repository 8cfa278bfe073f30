//go:build linux

package semaphore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/shmtest"
	"github.com/shmkit/shmkit/internal/testproc"
)

// TestSemaphoreAfterReap: TestSemaphoreDeadHolders with the dead holder's
// slot lock living on after its reaping (its file held elsewhere, as a
// reader of /proc/PID/maps does). Its permits come back at once: before,
// TryAcquire failed and Acquire waited until the file went.
func TestSemaphoreAfterReap(t *testing.T) {
	name, s := newTestSemaphore(t)
	a := testproc.Start(t, "sem-hold", name, "2")
	a.Expect("held")
	release := a.HoldFile(t, shmtest.Path(t, name))
	a.Kill()
	a.Wait()
	if !s.TryAcquire(2) {
		t.Errorf("TryAcquire(2) fails with the only holder dead and reaped (its slot lingers)")
	} else {
		s.Release(2)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	err := s.Acquire(ctx, 2)
	cancel()
	if err != nil {
		t.Errorf("Acquire(2) within 100ms: %v", err)
	} else {
		s.Release(2)
	}
	release()
	if !s.TryAcquire(2) {
		t.Fatal("TryAcquire(2) after the release")
	}
	s.Release(2)
}

// TestMutexAfterReap: a Mutex holder killed inside, its slot lock living
// on: the kernel's robust walk (at its thread's exit, before its
// files go) clears the owner id, so the next locker takes the word with
// ErrOwnerDead without asking whether the slot is alive. Plain and
// biased (killed inside and between critical sections).
func TestMutexAfterReap(t *testing.T) {
	for _, tc := range []struct{ entry, arg string }{{"hold", ""}, {"bias-hold", "inside"}, {"bias-hold", "between"}} {
		t.Run(tc.entry+tc.arg, func(t *testing.T) {
			name, _, m := newTestMutex(t)
			var p *testproc.Proc
			if tc.arg == "" {
				p = testproc.Start(t, tc.entry, name)
				p.Expect("locked ok")
			} else {
				p = testproc.Start(t, tc.entry, name, tc.arg)
				p.Expect(tc.arg)
			}
			release := p.HoldFile(t, shmtest.Path(t, name))
			p.Kill()
			p.Wait()
			ok, err := m.TryLock()
			t.Logf("TryLock with the holder's slot lock held: %v, %v", ok, err)
			if !ok {
				ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
				err = m.LockContext(ctx)
				cancel()
				t.Errorf("TryLock failed; LockContext(200ms): %v", err)
				release()
				if err != nil {
					err = m.Lock()
				}
			}
			if err != nil && !errors.Is(err, ErrOwnerDead) {
				t.Fatal(err)
			}
			if errors.Is(err, ErrOwnerDead) {
				m.Consistent()
			}
			m.Unlock()
		})
	}
}
