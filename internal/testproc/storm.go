//go:build linux

package testproc

import (
	"math/rand/v2"
	"syscall"
	"testing"
	"time"
)

// StopStorm stops one of ps at random (SIGSTOP, 0-3 ms, SIGCONT), events
// times, letting progress() move on by a few between events (waiting up
// to 20 ms for it). With kill > 0, one event in kill is a SIGKILL
// instead, and restart(i) gives ps[i]'s replacement. check, if not nil,
// runs after every event. It returns how many stops and kills it made.
func StopStorm(t testing.TB, ps []*Proc, events, kill int, progress func() int64, restart func(i int) *Proc, check func(event int)) (stops, kills int) {
	t.Helper()
	for e := range events {
		i := rand.IntN(len(ps))
		before := progress()
		for n := 0; progress() < before+int64(rand.IntN(50)) && n < 2000; n++ {
			time.Sleep(10 * time.Microsecond)
		}
		if kill > 0 && rand.IntN(kill) == 0 {
			ps[i].Kill()
			if code := ps[i].Wait(); code != -9 {
				t.Fatalf("event %d: process %d exited %d before the kill:\n%s", e, i, code, ps[i].Output())
			}
			ps[i] = restart(i)
			kills++
		} else {
			ps[i].Signal(syscall.SIGSTOP)
			time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
			ps[i].Signal(syscall.SIGCONT)
			stops++
		}
		if check != nil {
			check(e)
		}
	}
	return stops, kills
}
