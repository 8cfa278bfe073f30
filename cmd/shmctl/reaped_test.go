//go:build linux

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
)

// TestAfterReap: right after a user of a segment is killed and reaped,
// with its slot lock living on (its file held elsewhere, as a reader of
// /proc/PID/maps does), stat counts it dead, rm removes the segment,
// repair resets a not-recoverable mutex and gives a dead holder's
// semaphore permits back. Before, each took the process for a live one
// (adversarial review; TestCounter, TestMutex and TestSemaphore failed 4
// times in 120 runs beside a reader of /proc/*/maps).
func TestAfterReap(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "mutex")
	holder := testproc.Start(t, "lock", path)
	holder.Expect("locked")
	holder.Kill()
	holder.Wait()
	bad := testproc.Start(t, "unlock-bad", path)
	bad.Expect("done") // not recoverable now
	release := bad.HoldFile(t, path)
	bad.Kill()
	bad.Wait()
	s := statJSON(t, path)
	t.Logf("stat: live %d dead %d pids %v", s.Live, s.Dead, s.Pids)
	if s.Live != 0 || len(s.Pids) != 0 {
		t.Errorf("stat after the kill: live %d, pids %v (pid %d was reaped)", s.Live, s.Pids, bad.Pid())
	}
	if code, out, errs := shmctl(t, "repair", path); code != 0 {
		t.Errorf("repair of a not-recoverable mutex whose users are all reaped: exit %d\n%s%s", code, out, errs)
	}
	if code, _, errs := shmctl(t, "rm", path); code != 0 {
		t.Errorf("rm with every user reaped: exit %d: %s", code, strings.TrimSpace(errs))
	}
	release()

	sem := filepath.Join(dir, "sem")
	dead := testproc.Start(t, "acquire", sem, "3", "2")
	dead.Expect("acquired")
	release = dead.HoldFile(t, sem)
	dead.Kill()
	dead.Wait()
	if out := want(t, 0, "repair", sem); !strings.Contains(out, "gave back 2 permit(s)") {
		t.Errorf("repair of a semaphore whose holder is reaped: %q", strings.TrimSpace(out))
	}
	release()
}
