//go:build linux

package semaphore

// Tests written by an adversarial review of 449db85: a revoker wins the
// bias word (the taking bit) before it moves the futex word, and a holder
// whose ack has stood reclaimAfter takes its bias back. Real processes.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

func init() {
	enterEntries["timed-lock"] = timedLockEntry
	enterEntries["busy"] = func([]string) int {
		fmt.Println("busy")
		//lint:ignore SA5002 a spinner that keeps a CPU busy, on purpose
		for {
		}
	}
}

// timedLockEntry: args record, mutex|biased, n. Lock n times (each in a
// checked critical section, then Unlock and sleep 1ms), printing "took
// <ns>" for each Lock, then "done".
func timedLockEntry(args []string) int {
	seg, l, err := openLocker(args[0], args[1] == "biased")
	if err != nil {
		return fail(err)
	}
	n, _ := strconv.Atoi(args[2])
	holder, counter, bad := view(seg, offHolder), view(seg, offCounter), view(seg, offBad)
	pid := int64(os.Getpid())
	claims := 0
	stepHook = func(step string) {
		if step == "claimed" {
			claims++
		}
	}
	fmt.Println("running")
	for range n {
		claims = 0
		start := time.Now()
		err := l.Lock()
		took := time.Since(start)
		if err != nil {
			return fail(err)
		}
		checkedCS(holder, counter, bad, pid, 0)
		if err := l.Unlock(); err != nil {
			return fail(err)
		}
		fmt.Println("took", took.Nanoseconds(), claims)
		time.Sleep(time.Millisecond)
	}
	fmt.Println("done")
	time.Sleep(time.Hour)
	return 0
}

// TestRevokerStarvedByLongSections: a biased holder P whose critical
// sections are long (hold, busy) and back to back: a revoker R finds P
// inside, so it is not answered and goes the membarrier's way, sleeping
// on P's entry until P comes out. P answers on its way out (ack, and a
// wake of R) and locks again at once: it then waits reclaimAfter for R
// to win the bias word, and takes its bias back if R has not. R must
// wake, run and win within those 20 µs, or wait for P's next exit. With
// busy processes beside them (more runnable threads than the 2 cores),
// R loses a few rounds now and then (its waits and claims per lock are
// logged); it must never wait for good.
func TestRevokerStarvedByLongSections(t *testing.T) {
	needBias(t)
	for _, tc := range []struct {
		hold string
		busy int
	}{{"5us", 0}, {"5us", 2}, {"5us", 4}, {"20us", 2}, {"200us", 0}, {"2ms", 0}, {"200us", 2}, {"2ms", 2}, {"2ms", 4}} {
		hold := tc.hold
		t.Run(fmt.Sprintf("%s/busy=%d", hold, tc.busy), func(t *testing.T) {
			for range tc.busy {
				b := testproc.Start(t, "busy")
				b.Expect("busy")
				defer func() { b.Kill(); b.Wait() }()
			}
			name, seg := newTestSegment(t)
			counter := view(seg, offCounter)
			p := testproc.Start(t, "bias-hammer", name, "0", hold)
			p.Expect("running")
			progresses(t, counter, 20, "hammer start")
			r := testproc.Start(t, "timed-lock", name, "mutex", "20")
			r.Expect("running")
			var worst time.Duration
			var all []string
			for range 20 {
				f := strings.Fields(r.ExpectPrefix("took "))
				ns, _ := strconv.ParseInt(f[0], 10, 64)
				d := time.Duration(ns)
				all = append(all, d.Round(time.Microsecond).String()+"/"+f[1])
				worst = max(worst, d)
			}
			r.Expect("done")
			t.Logf("hold %s: R's waits %s", hold, strings.Join(all, " "))
			p.Kill()
			p.Wait()
			r.Kill()
			r.Wait()
			if bad := view(seg, offBad).Load(); bad != 0 {
				t.Fatalf("violations %d", bad)
			}
			t.Logf("hold %s: R's longest wait %v (a wait for good fails R's Expect)", hold, worst)
		})
	}
}

func init() { enterEntries["jitter-hammer"] = jitterHammerEntry }

// jitterHammerEntry: args record, mutex|biased|try, max. Lock and unlock
// in a loop around checkedCS (ErrOwnerDead counted at offOwnerDead and
// repaired), pausing at random steps of its revocations and seizures
// (stepHook) for 0 to max, busy or asleep: a revoker whose CPU is taken
// away at each step, for about as long as a holder waits before it takes
// its bias back. Says "running".
func jitterHammerEntry(args []string) int {
	seg, l, err := openLocker(args[0], args[1] == "biased")
	if err != nil {
		return fail(err)
	}
	most, err := time.ParseDuration(args[2])
	if err != nil {
		return fail(err)
	}
	rng := rand.New(rand.NewPCG(uint64(os.Getpid()), uint64(time.Now().UnixNano())))
	stepHook = func(step string) {
		if rng.IntN(3) != 0 {
			return
		}
		d := time.Duration(rng.Int64N(int64(most) + 1))
		if rng.IntN(2) == 0 {
			time.Sleep(d)
			return
		}
		for end := time.Now().Add(d); time.Now().Before(end); {
		}
	}
	holder, counter, bad, od := view(seg, offHolder), view(seg, offCounter), view(seg, offBad), view(seg, offOwnerDead)
	pid := int64(os.Getpid())
	fmt.Println("running")
	go func() {
		for {
			time.Sleep(50 * time.Millisecond)
			fmt.Println("reclaims", reclaims.Load(), "stalled", stalledClaims.Load())
		}
	}()
	for {
		var err error
		if args[1] == "try" {
			for ok := false; !ok && err == nil; {
				ok, err = l.TryLock()
			}
		} else {
			err = l.Lock()
		}
		if errors.Is(err, ErrOwnerDead) {
			od.Add(1)
			holder.Store(0)
			err = l.Consistent()
		}
		if err != nil {
			return fail(err)
		}
		checkedCS(holder, counter, bad, pid, 2)
		if err := l.Unlock(); err != nil {
			return fail(err)
		}
	}
}

// TestJitteredRevokers: a BiasedMutex hammer and EnterFast lockers hold
// the bias in turn while revokers (Mutex, BiasedMutex and TryLock
// hammers) pause at random steps for up to max, around reclaimAfter:
// holders take their biases back from revokers that did not win in time,
// revokers win from holders that are about to. Nobody is ever inside with
// another, no update is lost, nobody is told ErrOwnerDead (nobody dies),
// and everyone goes on.
func TestJitteredRevokers(t *testing.T) {
	needBias(t)
	for _, most := range []string{"5us", "30us", "300us", "3ms"} {
		t.Run(most, func(t *testing.T) {
			name, seg := newTestSegment(t)
			counter := view(seg, offCounter)
			specs := [][]string{
				{"jitter-hammer", "biased", most},
				{"enter-lock", "0", "spin=3"},
				{"enter-lock", "0", "pace=3"},
				{"jitter-hammer", "mutex", most},
				{"jitter-hammer", "biased", most},
				{"jitter-hammer", "try", most},
			}
			var procs []*testproc.Proc
			for _, s := range specs {
				p := testproc.Start(t, s[0], append([]string{name}, s[1:]...)...)
				p.Expect("running")
				procs = append(procs, p)
			}
			for i := range 100 {
				progresses(t, counter, 2000, fmt.Sprintf("round %d", i))
				time.Sleep(50 * time.Millisecond)
				if bad, od := view(seg, offBad).Load(), view(seg, offOwnerDead).Load(); bad != 0 || od != 0 {
					t.Fatalf("violations %d, ErrOwnerDead %d (want 0, 0) with nobody dead", bad, od)
				}
			}
			var taken []string
			for _, p := range procs { // the later ones may get ErrOwnerDead now
				p.Kill()
				p.Wait()
				if strings.HasPrefix(p.Output(), "running") {
					out := strings.Split(strings.TrimSpace(p.Output()), "\n")
					taken = append(taken, out[len(out)-1])
				}
			}
			t.Logf("taken back: %q", taken)
			if bad := view(seg, offBad).Load(); bad != 0 {
				t.Fatalf("violations %d", bad)
			}
			t.Logf("%d critical sections", counter.Load())
		})
	}
}

func init() { enterEntries["bias-close"] = biasCloseEntry }

// biasCloseEntry: args record, barrier1, barrier2, seg|handle. Bias the
// lock to this process (BiasedMutex, lock and unlock: "biased <bool>");
// once barrier1 exists, TryLock once (it answers a claim standing on the
// bias: "try <ok> <result>", then Unlock if it locked); once barrier2
// exists, close the segment (seg) or only the BiasedMutex (handle) and say
// "closed <err>"; live on.
func biasCloseEntry(args []string) int {
	seg, h, err := biasThenWait(args[0], args[1])
	if err != nil {
		return fail(err)
	}
	ok, err := h.TryLock()
	fmt.Println("try", ok, lockResult(err))
	if ok {
		h.Unlock()
	}
	waitForFile(args[2])
	if args[3] == "seg" {
		err = seg.Close()
	} else {
		err = h.Close()
	}
	fmt.Println("closed", err)
	time.Sleep(time.Hour)
	return 0
}

// TestHolderClosesUnderStoppedRevoker: P holds the bias, idle; R stops
// at a step of its revocation of P (after its claim, once P is out, once
// it won the bias word); P answers the claim (a TryLock) and closes the
// segment, or only its BiasedMutex. A third process W then locks, while R
// stays stopped: with the segment closed, P's word is abandoned (OWNER_DIED)
// and W judges P, outside: W gets nil. With only the handle closed, P's
// process keeps its id in the word and nobody can answer for it: W
// waits for R unless R's claim, not won, is given up for it. Then R is
// continued and gets the lock alone, after W; nobody is told ErrOwnerDead.
func TestHolderClosesUnderStoppedRevoker(t *testing.T) {
	needBias(t)
	for _, how := range []string{"seg", "handle"} {
		for _, step := range []string{"claimed", "fenced", "won"} {
			t.Run(how+"/"+step, func(t *testing.T) {
				name, seg, _ := newTestMutex(t)
				dir := t.TempDir()
				b1, b2 := filepath.Join(dir, "1"), filepath.Join(dir, "2")
				p := testproc.Start(t, "bias-close", name, b1, b2, how)
				p.Expect("biased true")
				r := stoppedAt(t, name, step)
				os.WriteFile(b1, nil, 0o600)
				if got := p.ExpectPrefix("try "); got != "false ok" {
					t.Fatalf("P's TryLock: %q", got)
				}
				t.Logf("bias word %#x after P's answer", biasWord(seg))
				os.WriteFile(b2, nil, 0o600)
				if got := p.ExpectPrefix("closed "); got != "<nil>" {
					t.Fatalf("P's close: %q", got)
				}
				w := testproc.Start(t, "lock-report", name, "consistent")
				w.Expect("waiting")
				// A wait for good fails after guard; the one wait that
				// is documented (R won, P's process keeps its id in the
				// word) is watched for a while, and nobody may get in.
				patience := guard
				if how == "handle" && step == "won" {
					patience = 300 * time.Millisecond
				}
				got := ""
				for end := time.Now().Add(patience); time.Now().Before(end) && got == ""; time.Sleep(time.Millisecond) {
					got = indexLine(w.Output(), "got ")
				}
				bw, word := biasWord(seg), word(seg)
				r.Signal(syscall.SIGCONT)
				rgot := r.ExpectPrefix("got ")
				for _, q := range []*testproc.Proc{w, r, p} {
					q.Kill()
					q.Wait()
				}
				switch {
				case got == "" && step == "won":
					t.Logf("W waited %v for R, stopped after its win (bias word %#x, word %#x): documented", patience, bw, word)
				case got == "":
					t.Fatalf("WEDGED: W waited %v for R, stopped at %q before its win (bias word %#x, word %#x)", patience, step, bw, word)
				case got != "ok":
					t.Fatalf("W got %q", got)
				}
				if rgot != "ok alone" {
					t.Fatalf("R got %q", rgot)
				}
			})
		}
	}
}

func init() { enterEntries["reclaim-die"] = reclaimDieEntry }

// reclaimDieEntry: args record, out|in. A BiasedMutex hammer (lockedCS,
// ErrOwnerDead counted) that SIGKILLs itself once it has taken its bias
// back from a revoker that did not win in time (stepHook "reclaimed"):
// at once (out: between critical sections), or inside the critical
// section it then enters through the bias (in: marked in the holder word).
func reclaimDieEntry(args []string) int {
	seg, l, err := openLocker(args[0], true)
	if err != nil {
		return fail(err)
	}
	h := l.(*BiasedMutex)
	holder, counter, bad, od := view(seg, offHolder), view(seg, offCounter), view(seg, offBad), view(seg, offOwnerDead)
	pid := int64(os.Getpid())
	reclaimed := false
	stepHook = func(step string) {
		if step != "reclaimed" {
			return
		}
		if args[1] == "out" {
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		reclaimed = true
	}
	fmt.Println("running")
	for {
		err := h.Lock()
		if errors.Is(err, ErrOwnerDead) {
			od.Add(1)
			holder.Store(0)
			err = h.Consistent()
		}
		if err != nil {
			return fail(err)
		}
		if reclaimed {
			if h.state != fast {
				return fail(fmt.Errorf("locked as %d after taking the bias back", h.state))
			}
			if !holder.CompareAndSwap(0, pid) {
				bad.Add(1)
			}
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
		checkedCS(holder, counter, bad, pid, 2)
		if err := h.Unlock(); err != nil {
			return fail(err)
		}
	}
}

// TestHolderDiesAfterTakeBack: R is stopped after its claim or once the
// holder P is out ("claimed", "fenced"), before its win; P takes its bias
// back and is SIGKILLed at once (out) or inside the critical section it
// then enters through the bias (in). R, continued, gets the lock alone:
// nil if P died between critical sections, ErrOwnerDead if inside; and a
// third process W that locks meanwhile gets the same, R then nil.
func TestHolderDiesAfterTakeBack(t *testing.T) {
	needBias(t)
	for _, step := range []string{"claimed", "fenced"} {
		for _, where := range []string{"out", "in"} {
			for _, third := range []bool{false, true} {
				t.Run(fmt.Sprintf("%s/%s/third=%v", step, where, third), func(t *testing.T) {
					holderDiesAfterTakeBack(t, step, where, third)
				})
			}
		}
	}
}

func holderDiesAfterTakeBack(t *testing.T, step, where string, third bool) {
	var (
		name string
		seg  *shm.Segment
		p, r *testproc.Proc
	)
	for try := 0; ; try++ {
		name, seg = newTestSegment(t)
		p = testproc.Start(t, "reclaim-die", name, where)
		p.Expect("running")
		progresses(t, view(seg, offCounter), 1000, "hammer start")
		r = testproc.Start(t, "stop-at", name, step)
		if line := r.ExpectMatch(func(l string) bool {
			return l == "stopped "+step || strings.HasPrefix(l, "got ")
		}); line == "stopped "+step {
			waitStopped(t, r)
			break
		}
		// R took the lock without revoking (P's bias was off then).
		if try == 20 {
			t.Fatal("R never stopped at " + step)
		}
		r.Kill()
		r.Wait()
		p.Kill()
		p.Wait()
	}
	if code := p.Wait(); code != -9 {
		t.Fatalf("P exited %d:\n%s", code, p.Output())
	}
	want, wantOD := "ok", int64(0)
	if where == "in" {
		want = "ownerdead"
	}
	if third {
		w := testproc.Start(t, "grab", name, "idle")
		if got := w.ExpectPrefix("got "); got != want+" alone" {
			t.Fatalf("W got %q, want %q", got, want+" alone")
		}
		w.ExpectPrefix("out ")
		defer func() { w.Kill(); w.Wait() }()
		if want == "ownerdead" {
			wantOD = 1 // counted by W, which repaired
		}
		want = "ok"
	} else if want == "ownerdead" {
		view(seg, offHolder).Store(0) // the repair R does not know to make
	}
	r.Signal(syscall.SIGCONT)
	if got := r.ExpectPrefix("got "); got != want+" alone" {
		t.Fatalf("R got %q, want %q", got, want+" alone")
	}
	r.Kill()
	r.Wait()
	if bad, od := view(seg, offBad).Load(), view(seg, offOwnerDead).Load(); bad != 0 || od != wantOD {
		t.Fatalf("violations %d, ErrOwnerDead counted %d (want 0, %d)", bad, od, wantOD)
	}
}

// biasThenWait biases the lock of record to this process (a BiasedMutex,
// locked and unlocked), says "biased <bool>" and waits for barrier.
func biasThenWait(record, barrier string) (*shm.Segment, *BiasedMutex, error) {
	seg, l, err := openLocker(record, true)
	if err != nil {
		return nil, nil, err
	}
	h := l.(*BiasedMutex)
	if err := h.Lock(); err != nil {
		return nil, nil, err
	}
	if err := h.Unlock(); err != nil {
		return nil, nil, err
	}
	fmt.Println("biased", h.Biased())
	waitForFile(barrier)
	return seg, h, nil
}

func init() { enterEntries["bias-try"] = biasTryEntry }

// biasTryEntry: args record, barrier. Bias the lock to this process
// (BiasedMutex, lock and unlock: "biased <bool>"); once barrier exists,
// call TryLock until it locks or guard has passed, and say "try <ok>
// <result> <calls>"; unlock; live on.
func biasTryEntry(args []string) int {
	_, h, err := biasThenWait(args[0], args[1])
	if err != nil {
		return fail(err)
	}
	calls := 0
	ok := false
	for end := time.Now().Add(guard); !ok && err == nil && time.Now().Before(end); calls++ {
		ok, err = h.TryLock()
		time.Sleep(10 * time.Microsecond)
	}
	fmt.Println("try", ok, lockResult(err), calls)
	if ok {
		h.Unlock()
	}
	time.Sleep(time.Hour)
	return 0
}

// TestTryLockTakesBiasBack: R is stopped after its claim on the bias of
// an idle holder P, or once P is out ("claimed", "fenced"), before its
// win. P then only calls TryLock: the first answers the claim; once the
// answer has stood reclaimAfter, the lock is free (nobody holds it, and
// P's Lock would take its bias back): P's TryLock must get it, not fail
// for as long as R is stopped.
func TestTryLockTakesBiasBack(t *testing.T) {
	needBias(t)
	for _, step := range []string{"claimed", "fenced"} {
		t.Run(step, func(t *testing.T) {
			name, seg, _ := newTestMutex(t)
			barrier := filepath.Join(t.TempDir(), "go")
			p := testproc.Start(t, "bias-try", name, barrier)
			p.Expect("biased true")
			r := stoppedAt(t, name, step)
			os.WriteFile(barrier, nil, 0o600)
			got := p.ExpectPrefix("try ")
			b := biasWord(seg)
			r.Signal(syscall.SIGCONT)
			rgot := r.ExpectPrefix("got ")
			for _, q := range []*testproc.Proc{r, p} {
				q.Kill()
				q.Wait()
			}
			if !strings.HasPrefix(got, "true ok") {
				t.Fatalf("P's TryLock with R stopped at %q before its win: %q (bias word %#x)", step, got, b)
			}
			if rgot != "ok alone" {
				t.Fatalf("R got %q", rgot)
			}
		})
	}
}

// TestWonRevokerHolderDies: R is stopped once it has won the bias word
// from the hammering holder P ("won", "seizing": before it seized the
// futex word); P is SIGKILLed (between critical sections: it answered R).
// A third process W locks while R stays stopped: the kernel marked P's
// word, and W's take judges P, which voids R's win: W gets nil, alone.
// R, continued, finds its win gone and gets the lock after W, alone.
func TestWonRevokerHolderDies(t *testing.T) {
	needBias(t)
	for _, step := range []string{"won", "seizing"} {
		t.Run(step, func(t *testing.T) {
			name, seg, counter, p := startHammer(t, "-")
			r := stoppedAt(t, name, step)
			if b := biasWord(seg); b&biasTaking == 0 {
				t.Fatalf("R stopped at %q with bias word %#x", step, b)
			}
			c0 := counter.Load()
			time.Sleep(50 * time.Millisecond)
			if c1 := counter.Load(); c1 != c0 {
				t.Fatalf("EXCLUSION?: counter %d -> %d with R's win standing", c0, c1)
			}
			p.Kill()
			p.Wait()
			w := testproc.Start(t, "grab", name, "idle")
			if got := w.ExpectPrefix("got "); got != "ok alone" {
				t.Fatalf("W got %q with R stopped at %q and P dead between critical sections", got, step)
			}
			w.ExpectPrefix("out ")
			r.Signal(syscall.SIGCONT)
			if got := r.ExpectPrefix("got "); got != "ok alone" {
				t.Fatalf("R got %q", got)
			}
			for _, q := range []*testproc.Proc{w, r} {
				q.Kill()
				q.Wait()
			}
			if bad, od := view(seg, offBad).Load(), view(seg, offOwnerDead).Load(); bad != 0 || od != 0 {
				t.Fatalf("violations %d, ErrOwnerDead %d (want 0, 0)", bad, od)
			}
		})
	}
}
