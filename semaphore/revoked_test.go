//go:build linux

package semaphore

// Tests written by an adversarial review of 8bfeec5: a revoked holder
// acks its revoker's claim before it asks whether the revoker lives (and
// asks only after revokerGrace), and a waiter that just lost the bias
// treats its revoker as busy for a turn (mutex.fresh). Real processes,
// real SIGKILL and SIGSTOP, forced slot reuse.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// offOwnerDead counts the ErrOwnerDead results rv-hammer and grab got.
const offOwnerDead = offTest + 48

func init() {
	enterEntries["rv-hammer"] = rvHammerEntry
	enterEntries["grab"] = grabEntry
}

// rvHammerEntry: args record, turn ("-": the default). A BiasedMutex
// locked and unlocked (Lock/Unlock) in a loop around checkedCS; an
// ErrOwnerDead is counted at offOwnerDead and repaired. Says "running".
func rvHammerEntry(args []string) int {
	seg, l, err := openLocker(args[0], true)
	if err != nil {
		return fail(err)
	}
	if args[1] != "-" {
		d, err := time.ParseDuration(args[1])
		if err != nil {
			return fail(err)
		}
		SetTurn(d)
	}
	h := l.(*BiasedMutex)
	holder, counter, bad, od := view(seg, offHolder), view(seg, offCounter), view(seg, offBad), view(seg, offOwnerDead)
	pid := int64(os.Getpid())
	fmt.Println("running")
	for {
		if err := lockedCS(h, holder, counter, bad, od, pid, 2); err != nil {
			return fail(err)
		}
	}
}

// grabEntry: args record, mode. Lock once through a BiasedMutex (revoking
// whoever holds the bias), mark itself inside and say "got <result>
// <alone|VIOLATION>". inside: stay inside until killed. idle: unmark,
// Unlock (the bias stays here), say "out <Biased()>", live on. exit: the
// same, then exit 0.
func grabEntry(args []string) int {
	seg, l, err := openLocker(args[0], true)
	if err != nil {
		return fail(err)
	}
	h := l.(*BiasedMutex)
	holder, bad, od := view(seg, offHolder), view(seg, offBad), view(seg, offOwnerDead)
	pid := int64(os.Getpid())
	res := "ok"
	err = h.Lock()
	if errors.Is(err, ErrOwnerDead) {
		od.Add(1)
		holder.Store(0)
		res = "ownerdead"
		err = h.Consistent()
	}
	if err != nil {
		return fail(err)
	}
	alone := "alone"
	if !holder.CompareAndSwap(0, pid) {
		bad.Add(1)
		alone = fmt.Sprintf("VIOLATION: %d inside", holder.Load())
	}
	view(seg, offCounter).Add(1)
	if q, ok := strings.CutPrefix(args[1], "quick-"); ok {
		return grabQuick(seg, h, q)
	}
	fmt.Println("got", res, alone)
	if args[1] == "inside" {
		time.Sleep(time.Hour)
		return 0
	}
	if !holder.CompareAndSwap(pid, 0) {
		bad.Add(1)
	}
	if err := h.Unlock(); err != nil {
		return fail(err)
	}
	fmt.Println("out", h.Biased())
	if args[1] == "exit" {
		return 0
	}
	time.Sleep(time.Hour)
	return 0
}

// grabQuick: grab's quick modes, run at once after the Lock that revoked
// P, inside P's fresh window: leave, Unlock (biased to us again if P did
// not ask yet), then kill: SIGKILL ourselves between critical sections;
// stop: SIGSTOP ourselves there; inside-kill, inside-stop: lock again
// (through the bias, if it is ours), mark ourselves inside and SIGKILL or
// SIGSTOP ourselves there; idle: stay between critical sections.
func grabQuick(seg *shm.Segment, h *BiasedMutex, mode string) int {
	holder, bad := view(seg, offHolder), view(seg, offBad)
	pid := int64(os.Getpid())
	if !holder.CompareAndSwap(pid, 0) {
		bad.Add(1)
	}
	if err := h.Unlock(); err != nil {
		return fail(err)
	}
	if strings.HasPrefix(mode, "inside-") {
		if err := h.Lock(); err != nil {
			return fail(err)
		}
		if !holder.CompareAndSwap(0, pid) {
			bad.Add(1)
		}
		view(seg, offCounter).Add(1)
	}
	switch mode {
	case "kill", "inside-kill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
	case "stop", "inside-stop":
		stopSelf()
	}
	fmt.Println("quick", mode, h.Biased())
	time.Sleep(time.Hour)
	return 0
}

// progresses waits until the counter moved on by n: a hang guard, not a
// time limit on the protocol.
func progresses(t *testing.T, c interface{ Load() int64 }, n int64, what string) {
	t.Helper()
	before := c.Load()
	for deadline := time.Now().Add(guard); c.Load() < before+n; {
		if time.Now().After(deadline) {
			t.Fatalf("WEDGED: %s: counter stuck at %d", what, c.Load())
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// cpuTicks is utime+stime of pid, in clock ticks.
func cpuTicks(t *testing.T, pid int) int64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+1:]))
	u, _ := strconv.ParseInt(f[11], 10, 64)
	s, _ := strconv.ParseInt(f[12], 10, 64)
	return u + s
}

// wonRevoker starts a stop-at revoker that stops at "won": it has won the
// bias word (taking) from the running holder, and not yet taken the
// futex word. From then on the holder cannot take its bias back: it waits.
func wonRevoker(t *testing.T, name string, seg *shm.Segment) (*testproc.Proc, int) {
	t.Helper()
	return stoppedWinner(t, name, seg, "won")
}

// stoppedWinner starts a stop-at revoker that stops at step, one where it
// has won the bias word, and returns it and its slot.
func stoppedWinner(t *testing.T, name string, seg *shm.Segment, step string) (*testproc.Proc, int) {
	t.Helper()
	r := stoppedAt(t, name, step)
	b := biasWord(seg)
	if b&biasTaking == 0 || biasRevoker(b) < 0 {
		t.Fatalf("R stopped at %q with bias word %#x: want it taking", step, b)
	}
	return r, biasRevoker(b)
}

// TestWonRevokerDies: a revoker R is stopped just after it won the bias
// word from the holder H (a BiasedMutex hammer), before it took the futex
// word; then R is SIGKILLed. With H running (kill), and with H stopped in its
// grace while R's slot index is taken by a new process N that does not
// attach the record (reuse-none), attaches it (reuse-mutex) or attaches it
// biased and locks (reuse-biased): H goes on, nobody is inside with
// anybody, nobody is told ErrOwnerDead, and the lock is usable.
func TestWonRevokerDies(t *testing.T) {
	needBias(t)
	for _, how := range []string{"kill", "reuse-none", "reuse-mutex", "reuse-biased"} {
		t.Run(how, func(t *testing.T) {
			name, seg, counter, h := startHammer(t, "-")
			r, rslot := wonRevoker(t, name, seg)
			if how != "kill" {
				h.Signal(syscall.SIGSTOP)
				waitStopped(t, h)
			}
			b0 := biasWord(seg)
			r.Kill()
			r.Wait()
			var n *testproc.Proc
			barrier := filepath.Join(t.TempDir(), "go")
			if how != "kill" {
				kind := strings.TrimPrefix(how, "reuse-")
				args := []string{name, fmt.Sprint(rslot), kind}
				if kind == "biased" {
					args = append(args, barrier)
				}
				n = testproc.Start(t, "attach", args...)
				if got := n.ExpectPrefix("slot "); !strings.HasPrefix(got, fmt.Sprint(rslot)+" ") {
					t.Fatalf("N got slot %q, want %d", got, rslot)
				}
				n.Expect("joined")
				t.Logf("bias word %#x at R's death, %#x after N joined", b0, biasWord(seg))
				h.Signal(syscall.SIGCONT)
			}
			progresses(t, counter, 1000, "holder after its won revoker died")
			if n != nil && how == "reuse-biased" {
				os.WriteFile(barrier, nil, 0o600)
				if got := n.ExpectPrefix("got "); got != "ok" {
					t.Fatalf("N: got %q", got)
				}
				n.Kill()
				n.Wait()
				progresses(t, counter, 1000, "holder after N")
			}
			h.Kill()
			h.Wait()
			wantOD := int64(0)
			if how == "reuse-biased" {
				wantOD = 1 // N dies holding the lock
			}
			if bad, od := view(seg, offBad).Load(), view(seg, offOwnerDead).Load(); bad != 0 || od != wantOD {
				t.Fatalf("violations %d, ErrOwnerDead %d (want 0, %d)", bad, od, wantOD)
			}
			if err := lockGuarded(t, seg); err != nil && err != ErrOwnerDead {
				t.Fatalf("Lock after: %v", err)
			}
		})
	}
}

// TestWonRevokerStopped: R stopped after it won the bias word ("won"), or
// with the futex word seized once its check that the win stands said yes
// ("decided"), for good: H waits (R is about to take the word) and nobody
// else gets in; H's CPU while it waits is logged. R continued takes the
// lock alone; killed inside, the next one is told ErrOwnerDead, once. (A
// revoker that checked a claim or an ack instead of a win, which H can
// take back at any moment, would be inside with H after "decided".)
func TestWonRevokerStopped(t *testing.T) {
	needBias(t)
	for _, step := range []string{"won", "decided"} {
		t.Run(step, func(t *testing.T) { wonRevokerStopped(t, step) })
	}
}

func wonRevokerStopped(t *testing.T, step string) {
	name, seg, counter, h := startHammer(t, "-")
	r, _ := stoppedWinner(t, name, seg, step)
	c0, cpu0 := counter.Load(), cpuTicks(t, h.Pid())
	time.Sleep(time.Second)
	c1, cpu1 := counter.Load(), cpuTicks(t, h.Pid())
	t.Logf("holder waiting on a stopped revoker that won: %d ticks of CPU in 1 s; counter %d -> %d", cpu1-cpu0, c0, c1)
	// Waiting costs the holder little CPU: it naps, longer as the wait
	// lasts. (With naps of 100 µs for good, it used 31-36 ticks of 100;
	// now 4-7 under -race. A busy machine can only lower the count.)
	if cpu1-cpu0 >= 20 {
		t.Errorf("the holder used %d ticks of CPU (of 100) in 1 s waiting on a stopped revoker", cpu1-cpu0)
	}
	if c1 != c0 {
		t.Fatalf("EXCLUSION?: the counter moved (%d -> %d) with the revoker's win standing", c0, c1)
	}
	resumedDiesInside(t, seg, counter, r, h)
}

// resumedDiesInside continues R, stopped in its lock call, which must get
// the lock alone; kills it inside; and checks that the hammer H goes on,
// nobody was inside with anybody, and the one death inside was reported
// once (H repairs).
func resumedDiesInside(t *testing.T, seg *shm.Segment, counter *atomic.Int64, r, h *testproc.Proc) {
	t.Helper()
	r.Signal(syscall.SIGCONT)
	if got := r.ExpectPrefix("got "); got != "ok alone" {
		t.Fatalf("R: %q", got)
	}
	r.Kill() // inside
	r.Wait()
	progresses(t, counter, 1000, "holder after R died inside")
	h.Kill()
	h.Wait()
	if bad, od := view(seg, offBad).Load(), view(seg, offOwnerDead).Load(); bad != 0 || od != 1 {
		t.Fatalf("violations %d, ErrOwnerDead %d (want 0, 1)", bad, od)
	}
}

// TestHolderTakesBiasBack: R stopped after its claim ("claimed") or once
// the holder H is out ("fenced": H answered, or R's membarrier found it
// out), before it won the bias word: H, which answers the claim and then
// waits for R to take the word, takes its bias back after reclaimAfter
// and goes on, nobody inside with it. R continued finds its win gone,
// claims again and takes the lock alone. Without the take-back, H waits
// for R for as long as R is stopped.
func TestHolderTakesBiasBack(t *testing.T) {
	needBias(t)
	for _, step := range []string{"claimed", "fenced"} {
		t.Run(step, func(t *testing.T) {
			name, seg, counter, h := startHammer(t, "-")
			r := stoppedAt(t, name, step)
			progresses(t, counter, 100000, "holder with its revoker stopped at "+step)
			if b := biasWord(seg); biasRevoker(b) >= 0 {
				t.Fatalf("bias word %#x: the stopped revoker's claim stands while the holder goes on", b)
			}
			resumedDiesInside(t, seg, counter, r, h)
		})
	}
}

// TestWonRevokerChurn: again and again, a revoker stopped after its win
// is killed and the next one (which takes the lowest free slot: the dead
// one's index) revokes at once; the holder never stops for good.
func TestWonRevokerChurn(t *testing.T) {
	needBias(t)
	name, seg := newTestSegment(t)
	counter := view(seg, offCounter)
	h := testproc.Start(t, "rv-hammer", name, "-")
	h.Expect("running")
	reused := 0
	for i := range 100 {
		progresses(t, counter, 200, fmt.Sprintf("round %d", i))
		r, rslot := wonRevoker(t, name, seg)
		r.Kill()
		r.Wait()
		n := testproc.Start(t, "stop-at", name, "won")
		if s, _ := parseID(t, n.ExpectPrefix("id ")); s == rslot {
			reused++
		}
		n.Expect("stopped won")
		waitStopped(t, n)
		n.Signal(syscall.SIGCONT)
		if got := n.ExpectPrefix("got "); got != "ok alone" && got != "ownerdead alone" {
			t.Fatalf("round %d: N %q", i, got)
		}
		view(seg, offHolder).Store(0)
		n.Kill() // inside: the hammer repairs
		n.Wait()
	}
	progresses(t, counter, 1000, "after the churn")
	h.Kill()
	h.Wait()
	if bad := view(seg, offBad).Load(); bad != 0 {
		t.Fatalf("violations %d", bad)
	}
	t.Logf("slot reused %d/100; ErrOwnerDead %d; %d sections", reused, view(seg, offOwnerDead).Load(), counter.Load())
}

// TestFreshHolder: P, a BiasedMutex hammer with a turn of turn, loses the
// bias to R (grab), which then dies inside, is stopped inside, goes idle,
// goes idle and is stopped, goes idle and is killed, or exits: all while
// P counts R as fresh (a turn of 50 ms). P goes on (but not while R is
// inside), gets ErrOwnerDead exactly when R died inside, and nobody is
// inside with anybody.
func TestFreshHolder(t *testing.T) {
	needBias(t)
	for _, turn := range []string{"-", "50ms"} {
		for _, mode := range []string{"inside-kill", "inside-stop", "idle", "idle-stop", "idle-kill", "exit"} {
			t.Run(strings.Trim(turn, "-")+"/"+mode, func(t *testing.T) {
				for round := range 5 {
					name, seg, counter, p := startHammer(t, turn)
					how, _, _ := strings.Cut(mode, "-")
					r := testproc.Start(t, "grab", name, how)
					if got := r.ExpectPrefix("got "); got != "ok alone" {
						t.Fatalf("R: %q", got)
					}
					wantOD := int64(0)
					switch mode {
					case "inside-kill":
						r.Kill()
						r.Wait()
						wantOD = 1
					case "inside-stop":
						r.Signal(syscall.SIGSTOP)
						waitStopped(t, r)
						stoppedInside(t, counter, r)
						wantOD = 1
					case "idle":
						r.ExpectPrefix("out ")
					case "idle-stop":
						r.ExpectPrefix("out ")
						r.Signal(syscall.SIGSTOP)
						waitStopped(t, r)
					case "idle-kill":
						r.ExpectPrefix("out ")
						r.Kill()
						r.Wait()
					case "exit":
						r.ExpectPrefix("out ")
						if code := r.Wait(); code != 0 {
							t.Fatalf("R exited %d", code)
						}
					}
					endRound(t, seg, p, r, round, wantOD, "P after R "+mode)
				}
			})
		}
	}
}

// TestFreshHolderQuick: R revokes P's bias and, at once (within P's
// fresh window: the turn), unlocks and dies, or stops, between critical
// sections or inside one taken again through its new bias, or goes idle.
// P goes on (not while R is inside), is told ErrOwnerDead exactly when R
// died inside, and nobody is inside with anybody.
func TestFreshHolderQuick(t *testing.T) {
	needBias(t)
	for _, turn := range []string{"-", "50ms"} {
		for _, mode := range []string{"kill", "stop", "inside-kill", "inside-stop", "idle"} {
			t.Run(strings.Trim(turn, "-")+"/"+mode, func(t *testing.T) {
				for round := range 10 {
					name, seg, counter, p := startHammer(t, turn)
					r := testproc.Start(t, "grab", name, "quick-"+mode)
					wantOD := int64(0)
					switch mode {
					case "kill", "inside-kill":
						if code := r.Wait(); code != -9 {
							t.Fatalf("R exited %d:\n%s", code, r.Output())
						}
						if mode == "inside-kill" {
							wantOD = 1
						}
					case "stop", "inside-stop":
						waitStopped(t, r)
						if mode == "inside-stop" {
							stoppedInside(t, counter, r)
							wantOD = 1
						}
					case "idle":
						r.ExpectPrefix("quick ")
					}
					endRound(t, seg, p, r, round, wantOD, "P after R quick-"+mode)
				}
			})
		}
	}
}

var _ = context.Background

func init() { enterEntries["midclaim"] = midClaimEntry }

// midClaimEntry: args name, slot. Plays a process stopped in the middle
// of shm's slot claim (claimLocked): it holds the attach lock and slot's
// lock byte and has written its pid into the slot's entry, but has not
// bumped the generation yet. Says "claiming" and waits to be killed.
func midClaimEntry(args []string) int {
	path, err := shm.Path(args[0])
	if err != nil {
		return fail(err)
	}
	i, _ := strconv.Atoi(args[1])
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return fail(err)
	}
	for _, off := range []int64{1<<62 + 1, 1<<62 + 4096 + int64(i)} {
		lk := syscall.Flock_t{Type: syscall.F_WRLCK, Whence: 0, Start: off, Len: 1}
		if err := syscall.FcntlFlock(f.Fd(), 37 /* F_OFD_SETLK */, &lk); err != nil {
			return fail(err)
		}
	}
	var b [4]byte
	pid := uint32(os.Getpid())
	b[0], b[1], b[2], b[3] = byte(pid), byte(pid>>8), byte(pid>>16), byte(pid>>24)
	if _, err := f.WriteAt(b[:], int64(shm.HeaderSize+shm.SlotEntrySize*i+8)); err != nil {
		return fail(err)
	}
	fmt.Println("claiming")
	time.Sleep(time.Hour)
	return 0
}

// TestWonRevokerSlotMidClaim: R dies after its win, and a process
// N is stopped in the middle of claiming R's slot index (lock byte held,
// its pid in the entry, generation not bumped yet): shm.Alive says R's
// old Slot lives (documented: "for a moment after another process claimed
// sl's index ... it is true of a dead Slot"), so R's claim is not undone
// until N's claim finishes or N dies. This logs what happens; it fails
// only on a wedge after N is gone, or on a violation.
func TestWonRevokerSlotMidClaim(t *testing.T) {
	needBias(t)
	name, seg, counter, h := startHammer(t, "-")
	r, rslot := wonRevoker(t, name, seg)
	h.Signal(syscall.SIGSTOP)
	waitStopped(t, h)
	r.Kill()
	r.Wait()
	n := testproc.Start(t, "midclaim", name, fmt.Sprint(rslot))
	n.Expect("claiming")
	h.Signal(syscall.SIGCONT)
	c0 := counter.Load()
	time.Sleep(300 * time.Millisecond)
	c1 := counter.Load()
	t.Logf("with N stopped mid-claim of R's slot %d: counter %d -> %d, bias word %#x", rslot, c0, c1, biasWord(seg))
	n.Kill()
	n.Wait()
	progresses(t, counter, 1000, "holder after N died mid-claim")
	h.Kill()
	h.Wait()
	if bad := view(seg, offBad).Load(); bad != 0 {
		t.Fatalf("violations %d", bad)
	}
	if err := lockGuarded(t, seg); err != nil && err != ErrOwnerDead {
		t.Fatalf("Lock after: %v", err)
	}
}

func init() { enterEntries["die-at"] = dieAtEntry }

// dieAtEntry: args record, step. Lock the record (a plain Mutex) and
// SIGKILL itself at once at that step of the revocation: at "fenced"
// after an ack, the holder is a few microseconds into its wait for the
// win; at "won", for the take.
func dieAtEntry(args []string) int {
	seg, l, err := openLocker(args[0], false)
	if err != nil {
		return fail(err)
	}
	acked := view(seg, offTest+56)
	stepHook = func(step string) {
		if step == args[1] {
			if step == "fenced" && biasWord(seg)&biasAck != 0 {
				acked.Add(1)
			}
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
		}
	}
	fmt.Println("locking")
	fmt.Println("got", lockResult(l.Lock()))
	time.Sleep(time.Hour)
	return 0
}

// TestRevokerDiesInGrace: a revoker SIGKILLs itself at a step of
// its revocation (right after the holder's ack at "fenced", the holder
// then waiting for the win; after the win at "won", for the take), 40
// times per step against a BiasedMutex
// hammer: the hammer goes on, nobody is inside with anybody, and nobody
// is told ErrOwnerDead (the revoker never returned from its Lock).
func TestRevokerDiesInGrace(t *testing.T) {
	needBias(t)
	for _, step := range []string{"claimed", "fenced", "won", "seizing", "seized", "decided", "taken"} {
		t.Run(step, func(t *testing.T) {
			name, seg := newTestSegment(t)
			counter := view(seg, offCounter)
			h := testproc.Start(t, "rv-hammer", name, "-")
			h.Expect("running")
			for i := range 40 {
				progresses(t, counter, 500, fmt.Sprintf("round %d", i))
				r := testproc.Start(t, "die-at", name, step)
				if code := r.Wait(); code != -9 {
					t.Fatalf("round %d: revoker exited %d:\n%s", i, code, r.Output())
				}
			}
			progresses(t, counter, 1000, "after the deaths")
			h.Kill()
			h.Wait()
			if bad, od := view(seg, offBad).Load(), view(seg, offOwnerDead).Load(); bad != 0 || od != 0 {
				t.Fatalf("violations %d, ErrOwnerDead %d (want 0, 0)", bad, od)
			}
			if err := lockGuarded(t, seg); err != nil && err != ErrOwnerDead { // the hammer was killed, maybe inside
				t.Fatalf("Lock after: %v", err)
			}
			t.Logf("%d of 40 died right after an ack", view(seg, offTest+56).Load())
		})
	}
}

// stoppedInside: R is stopped inside its critical section; nobody else
// may get in meanwhile (the counter stays still for a while), and R is
// then killed there.
func stoppedInside(t *testing.T, counter interface{ Load() int64 }, r *testproc.Proc) {
	t.Helper()
	c0 := counter.Load()
	time.Sleep(200 * time.Millisecond)
	if c1 := counter.Load(); c1 != c0 {
		t.Fatalf("EXCLUSION BROKEN: counter %d -> %d while R was stopped inside", c0, c1)
	}
	r.Kill()
	r.Wait()
}

// endRound ends a round of P hammering and R grabbing: P must go on, then
// both are killed, and the segment must show no violation and wantOD
// ErrOwnerDead results.
func endRound(t *testing.T, seg *shm.Segment, p, r *testproc.Proc, round int, wantOD int64, what string) {
	t.Helper()
	progresses(t, view(seg, offCounter), 1000, what)
	p.Kill()
	p.Wait()
	r.Kill()
	r.Wait()
	if bad, od := view(seg, offBad).Load(), view(seg, offOwnerDead).Load(); bad != 0 || od != wantOD {
		t.Fatalf("round %d: violations %d, ErrOwnerDead %d (want 0, %d)", round, bad, od, wantOD)
	}
}

// startHammer starts a hammering BiasedMutex user (rv-hammer, turn "-"
// for the default) on a new test segment and waits until it runs.
func startHammer(t *testing.T, turn string) (string, *shm.Segment, *atomic.Int64, *testproc.Proc) {
	t.Helper()
	name, seg := newTestSegment(t)
	counter := view(seg, offCounter)
	p := testproc.Start(t, "rv-hammer", name, turn)
	p.Expect("running")
	progresses(t, counter, 1000, "hammer start")
	return name, seg, counter, p
}

// TestAckedOnTheWayOut: a biased holder P (this process) answers a
// revoker R's claim on its way out of a critical section (Unlock), and R
// takes the lock before P looks at the bias word again. P's next Lock
// must know that R took it (lostTo), so that R is owed its turn
// (mutex.fresh). P used to know only a revoker it had answered in
// revoked, and took a quick revoker's lock back a few microseconds into
// its turn: quick, since a revocation stopped asking the kernel whether
// the holder lives.
func TestAckedOnTheWayOut(t *testing.T) {
	needBias(t)
	name, seg, h := newBiased(t)
	defer h.Close()
	if err := h.Lock(); err != nil {
		t.Fatal(err)
	}
	h.Unlock()
	if !h.Biased() {
		t.Fatal("not biased after a lock alone")
	}
	if err := h.Lock(); err != nil { // through the bias: inside
		t.Fatal(err)
	}
	r := testproc.Start(t, "grab", name, "idle")
	until := func(what string, done func(b uint64) bool) uint64 {
		t.Helper()
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
			if b := biasWord(seg); done(b) {
				return b
			}
			if time.Now().After(end) {
				t.Fatalf("no %s: bias word %#x", what, biasWord(seg))
			}
		}
	}
	rslot := biasRevoker(until("claim", func(b uint64) bool { return biasRevoker(b) >= 0 }))
	if err := h.Unlock(); err != nil { // answers the claim on its way out
		t.Fatal(err)
	}
	until("revocation", func(b uint64) bool { return biasHolder(b) != h.Slot() })
	if got := r.ExpectPrefix("got "); got != "ok alone" {
		t.Fatalf("R got %q", got)
	}
	r.ExpectPrefix("out ")
	if err := h.Lock(); err != nil {
		t.Fatal(err)
	}
	defer h.Unlock()
	if h.m.lostTo != rslot {
		t.Errorf("after losing the bias to slot %d, lostTo is %d: its turn is not owed", rslot, h.m.lostTo)
	}
}
