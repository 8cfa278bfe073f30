//go:build linux

package semaphore

// Tests written by an adversarial review of BiasedMutex.EnterFast and
// ExitFast (the stateless bias path ticketshm's Buy takes), of revoke
// asking the holder's liveness only under its seizure, and of the 2 µs
// spins of biasHot and the revoker. Real processes, real SIGKILL and
// SIGSTOP, forced thread-id and slot reuse.

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

// enterEntries are the child entries of this file (TestMain merges them).
var enterEntries = map[string]func([]string) int{
	"enter-lock":   enterLockEntry,
	"enter-hold":   enterHoldEntry,
	"enter-reopen": enterReopenEntry,
}

// withEnterEntries adds enterEntries to TestMain's entries.
func withEnterEntries(m map[string]testproc.Entry) map[string]testproc.Entry {
	for k, v := range enterEntries {
		m[k] = v
	}
	return m
}

// checkedCS is a checked critical section: mark the holder word (counting a
// violation if someone else is marked), bump the counter with a plain
// load and store (lost updates show in the count), spin, unmark.
func checkedCS(holder, counter, bad interface {
	CompareAndSwap(int64, int64) bool
	Load() int64
	Store(int64)
	Add(int64) int64
}, pid int64, spin int) {
	if !holder.CompareAndSwap(0, pid) {
		bad.Add(1)
	}
	c := counter.Load()
	for i := 0; i < spin; i++ {
		_ = holder.Load()
	}
	counter.Store(c + 1)
	if !holder.CompareAndSwap(pid, 0) {
		bad.Add(1)
	}
}

// lockedCS takes h through Lock (repairing after a dead owner: its mark
// cleared, and counted in ownerDead unless that is nil), runs checkedCS
// and unlocks.
func lockedCS(h *BiasedMutex, holder, counter, bad, ownerDead *atomic.Int64, pid int64, spin int) error {
	err := h.Lock()
	if errors.Is(err, ErrOwnerDead) {
		if ownerDead != nil {
			ownerDead.Add(1)
		}
		holder.Store(0) // the repair: the dead owner's mark
		err = h.Consistent()
	}
	if err != nil {
		return err
	}
	checkedCS(holder, counter, bad, pid, spin)
	return h.Unlock()
}

// enterLockEntry: args record, rounds (0: forever), then options
// spin=<n> (loads inside the critical section), turn=<d> (SetTurn),
// pace=<n> (sleep 50µs every n rounds: an idle holder, revoked at once
// rather than after a turn), barrier=<file> (wait for it before the
// loop). Locks as ticketshm's Buy does: EnterFast first, then Lock;
// unlocks with ExitFast, then Unlock if it says a revoker waits. The
// critical section is checkedCS. Prints "running", and at the end "fast <n>
// slow <n>".
func enterLockEntry(args []string) int {
	seg, l, err := openLocker(args[0], true)
	if err != nil {
		return fail(err)
	}
	h := l.(*BiasedMutex)
	rounds, _ := strconv.Atoi(args[1])
	spin, pace, barrier := 0, 0, ""
	for _, a := range args[2:] {
		k, v, _ := strings.Cut(a, "=")
		switch k {
		case "spin":
			spin, _ = strconv.Atoi(v)
		case "pace":
			pace, _ = strconv.Atoi(v)
		case "turn":
			d, err := time.ParseDuration(v)
			if err != nil {
				return fail(err)
			}
			SetTurn(d)
		case "barrier":
			barrier = v
		}
	}
	holder, counter, bad := view(seg, offHolder), view(seg, offCounter), view(seg, offBad)
	pid := int64(os.Getpid())
	fast, slow := 0, 0
	fmt.Println("running")
	if barrier != "" {
		waitForFile(barrier)
	}
	for i := 0; rounds == 0 || i < rounds; i++ {
		if pace > 0 && i%pace == pace-1 {
			time.Sleep(50 * time.Microsecond)
		}
		if h.EnterFast() {
			fast++
			checkedCS(holder, counter, bad, pid, spin)
			if !h.ExitFast() {
				if err := h.Unlock(); err != nil {
					return fail(fmt.Errorf("Unlock after ExitFast: %w", err))
				}
			}
			continue
		}
		slow++
		if err := lockedCS(h, holder, counter, bad, nil, pid, spin); err != nil {
			return fail(err)
		}
	}
	fmt.Println("fast", fast, "slow", slow)
	return 0
}

// enterHoldEntry: args record, barrier. Bias the lock (Lock, Unlock),
// say "biased <bool>"; enter through EnterFast (say "enterfast false" and
// wait to be killed if it fails), mark itself inside and say "inside
// <alone|...>"; wait for the barrier file; unmark, ExitFast, say
// "exitfast <bool>", Unlock if false (say "unlock <err>"), say "out"; live
// on.
func enterHoldEntry(args []string) int {
	seg, l, err := openLocker(args[0], true)
	if err != nil {
		return fail(err)
	}
	h := l.(*BiasedMutex)
	if err := h.Lock(); err != nil && !errors.Is(err, ErrOwnerDead) {
		return fail(err)
	} else if err != nil {
		view(seg, offHolder).Store(0)
		h.Consistent()
	}
	if err := h.Unlock(); err != nil {
		return fail(err)
	}
	fmt.Println("biased", h.Biased())
	if !h.EnterFast() {
		fmt.Println("enterfast false")
		time.Sleep(time.Hour)
	}
	fmt.Println("inside", enterCS(args[0]))
	waitForFile(args[1])
	view(seg, offHolder).CompareAndSwap(int64(os.Getpid()), 0)
	ok := h.ExitFast()
	fmt.Println("exitfast", ok)
	if !ok {
		fmt.Println("unlock", h.Unlock())
	}
	fmt.Println("out")
	time.Sleep(time.Hour)
	return 0
}

// enterReopenEntry: args record, rounds, cycles. Each cycle attaches a
// BiasedMutex, runs rounds of enterLockEntry's loop, then closes it: even
// cycles by BiasedMutex.Close (the segment stays open and the next cycle
// attaches the record again in this process), odd ones by closing the
// segment (the next cycle opens it again, maybe in another slot). After
// each Close the old handle's EnterFast must say false, and its Lock
// ErrClosed; "BAD <what>" otherwise. Prints "running", then "done".
func enterReopenEntry(args []string) int {
	name, off := record(args[0])
	rounds, _ := strconv.Atoi(args[1])
	cycles, _ := strconv.Atoi(args[2])
	pid := int64(os.Getpid())
	fmt.Println("running")
	if len(args) > 3 {
		waitForFile(args[3])
	}
	seg, err := openTest(name)
	if err != nil {
		return fail(err)
	}
	var old []*BiasedMutex
	for cy := 0; cy < cycles; cy++ {
		h, err := NewBiasedMutex(context.Background(), seg, off)
		if err != nil {
			return fail(fmt.Errorf("cycle %d: %w", cy, err))
		}
		holder, counter, bad := view(seg, offHolder), view(seg, offCounter), view(seg, offBad)
		for i := 0; i < rounds; i++ {
			if h.EnterFast() {
				checkedCS(holder, counter, bad, pid, 0)
				if !h.ExitFast() {
					if err := h.Unlock(); err != nil {
						return fail(err)
					}
				}
				continue
			}
			if err := lockedCS(h, holder, counter, bad, nil, pid, 0); err != nil {
				return fail(err)
			}
		}
		if cy%2 == 0 {
			if err := h.Close(); err != nil {
				return fail(fmt.Errorf("cycle %d: Close: %w", cy, err))
			}
		} else {
			if err := seg.Close(); err != nil {
				return fail(err)
			}
			if seg, err = openTest(name); err != nil {
				return fail(err)
			}
		}
		old = append(old, h)
		for j, o := range old {
			if o.EnterFast() {
				fmt.Println("BAD", "EnterFast of handle", j, "closed, returned true in cycle", cy)
				o.ExitFast()
			}
			if err := o.Lock(); !errors.Is(err, shm.ErrClosed) {
				fmt.Println("BAD", "Lock of closed handle", j, "=", err)
			}
		}
	}
	fmt.Println("done")
	return 0
}

// TestEnterFastExclude: processes entering through EnterFast (as
// Counter.Buy does), mixed with BiasedMutex, Mutex and TryLock hammers,
// idle (paced) ones and short turns: the counter is exact and nobody is
// ever inside with another.
func TestEnterFastExclude(t *testing.T) {
	needBias(t)
	for _, tc := range []struct {
		name   string
		rounds int
		procs  [][]string // entry, then args after record and rounds
	}{
		{"2enter", 3000000, [][]string{{"enter-lock"}, {"enter-lock"}}},
		{"enter-spin-shortturn", 1000000, [][]string{{"enter-lock", "spin=20", "turn=2us"}, {"enter-lock", "spin=20", "turn=1us"}, {"enter-lock", "turn=1us"}}},
		{"enter-paced", 10000, [][]string{{"enter-lock", "spin=5", "pace=7"}, {"enter-lock", "spin=5", "pace=3"}, {"enter-lock"}}},
		{"mixed", 1000000, [][]string{{"enter-lock", "spin=5"}, {"bias-hammer"}, {"hammer"}, {"try-hammer"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name, seg := newTestSegment(t)
			barrier := filepath.Join(t.TempDir(), "go")
			var ps []*testproc.Proc
			for _, p := range tc.procs {
				args := append([]string{name, strconv.Itoa(tc.rounds)}, p[1:]...)
				if p[0] == "enter-lock" {
					args = append(args, "barrier="+barrier)
				}
				pr := testproc.Start(t, p[0], args...)
				pr.Expect("running")
				ps = append(ps, pr)
			}
			os.WriteFile(barrier, nil, 0o600)
			start := time.Now()
			for _, p := range ps {
				p.MustExitWithin(5 * time.Minute)
			}
			t.Logf("%v", time.Since(start))
			for i, p := range ps {
				if l := indexLine(p.Output(), "fast "); l != "" {
					t.Logf("proc %d: fast %s", i, l)
				}
			}
			want := int64(tc.rounds * len(tc.procs))
			if c, bad := view(seg, offCounter).Load(), view(seg, offBad).Load(); c != want || bad != 0 {
				t.Fatalf("counter %d (want %d), violations %d", c, want, bad)
			}
		})
	}
}

// TestStopStorm: EnterFast lockers (some paced, so they are revoked
// idle, through the membarrier), a BiasedMutex hammer, a Mutex hammer and
// a TryLock hammer; one at random is SIGSTOPped for 0-3 ms and continued,
// again and again (stopped inside, between, while revoking, while
// seizing...), and now and then one is SIGKILLed and replaced. Nobody is
// ever inside with another, and the lock ends usable.
func TestStopStorm(t *testing.T) {
	needBias(t)
	events := 1500
	if testing.Short() {
		events = 300
	}
	name, seg := newTestSegment(t)
	specs := [][]string{
		{"enter-lock", "0", "spin=3"},
		{"enter-lock", "0", "spin=3", "turn=5us", "pace=5"},
		{"enter-lock", "0", "pace=2"},
		{"bias-hammer", "0"},
		{"hammer", "0"},
		{"try-hammer", "0"},
	}
	counter := view(seg, offCounter)
	procs, stops, kills := storm(t, name, seg, specs, events, 8)
	// Progress after the storm: every process still runs.
	c0 := counter.Load()
	time.Sleep(200 * time.Millisecond)
	if c1 := counter.Load(); c1 == c0 {
		t.Fatalf("no progress after the storm (counter %d)", c1)
	}
	afterStorm(t, seg, procs)
	t.Logf("%d stops, %d kills, %d critical sections", stops, kills, counter.Load())
}

// storm starts a process per spec (an entry and its arguments after the
// record name; each says "running") and runs testproc.StopStorm over
// them (kill: see there), replacing the killed, checking after every
// event that nobody was inside with anybody.
func storm(t *testing.T, name string, seg *shm.Segment, specs [][]string, events, kill int) (procs []*testproc.Proc, stops, kills int) {
	t.Helper()
	start := func(s []string) *testproc.Proc {
		p := testproc.Start(t, s[0], append([]string{name}, s[1:]...)...)
		p.Expect("running")
		return p
	}
	procs = make([]*testproc.Proc, len(specs))
	for i, s := range specs {
		procs[i] = start(s)
	}
	counter := view(seg, offCounter)
	stops, kills = testproc.StopStorm(t, procs, events, kill, counter.Load,
		func(i int) *testproc.Proc { return start(specs[i]) },
		func(e int) {
			if bad := view(seg, offBad).Load(); bad != 0 {
				t.Fatalf("event %d: mutual exclusion broken %d times", e, bad)
			}
		})
	return procs, stops, kills
}

// afterStorm kills the storm's processes and checks that nobody was
// inside with anybody and that the lock can be had (repaired, if its
// last holder died inside).
func afterStorm(t *testing.T, seg *shm.Segment, procs []*testproc.Proc) {
	t.Helper()
	for _, p := range procs {
		p.Kill()
		p.Wait()
	}
	if bad := view(seg, offBad).Load(); bad != 0 {
		t.Fatalf("mutual exclusion broken %d times", bad)
	}
	m, err := NewMutex(context.Background(), seg, 0)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), guard)
	defer cancel()
	err = m.LockContext(ctx)
	if errors.Is(err, ErrOwnerDead) {
		err = m.Consistent()
	}
	if err != nil {
		t.Fatalf("mutex wedged after the storm: %v", err)
	}
	m.Unlock()
}

// TestEnterFastHolderStopped: a holder inside a critical section entered
// through EnterFast, then SIGSTOPped (it cannot ack): a Mutex locker and
// a BiasedMutex locker revoke (membarrier) and must wait; a TryLock must
// fail. Continued and released, ExitFast says a revoker waits, Unlock
// wakes it, and the lockers get the lock, alone.
func TestEnterFastHolderStopped(t *testing.T) {
	needBias(t)
	for _, kind := range []string{"mutex", "biased"} {
		t.Run(kind, func(t *testing.T) {
			name, seg := newTestSegment(t)
			barrier := filepath.Join(t.TempDir(), "go")
			h := testproc.Start(t, "enter-hold", name, barrier)
			h.Expect("biased true")
			if got := h.ExpectPrefix("inside "); got != "alone" {
				t.Fatalf("holder: inside %q", got)
			}
			h.Signal(syscall.SIGSTOP)
			waitStopped(t, h)
			var w *testproc.Proc
			if kind == "mutex" {
				w = testproc.Start(t, "hold-check", name)
			} else {
				ready := barrier + ".ready"
				os.WriteFile(ready, nil, 0o600)
				w = testproc.Start(t, "attach", name, "-1", "biased", ready)
			}
			try := testproc.Start(t, "try-once", name)
			if got := try.ExpectPrefix("try "); got != "false ok" {
				t.Errorf("EXCLUSION BROKEN: TryLock with the holder stopped inside: %q", got)
			}
			try.Wait()
			neverSays(t, w, "locked ", "a locker got the lock while the EnterFast holder was stopped inside:")
			neverSays(t, w, "got ", "a locker got the lock while the EnterFast holder was stopped inside:")
			if r := biasRevoker(biasWord(seg)); r < 0 && kind == "mutex" {
				t.Logf("no revoker in the bias word %#x", biasWord(seg))
			}
			h.Signal(syscall.SIGCONT)
			os.WriteFile(barrier, nil, 0o600)
			if got := h.ExpectPrefix("exitfast "); got != "false" {
				t.Errorf("ExitFast with a revoker waiting = %s, want false", got)
			}
			h.Expect("out")
			if kind == "mutex" {
				if got := w.ExpectPrefix("locked "); got != "ok alone" {
					t.Fatalf("locker: %q", got)
				}
			} else if got := w.ExpectPrefix("got "); got != "ok" {
				t.Fatalf("locker: %q", got)
			}
			if strings.Contains(h.Output(), "unlock ") && !strings.Contains(h.Output(), "unlock <nil>") {
				t.Fatalf("holder's Unlock after ExitFast: %q", h.Output())
			}
		})
	}
}

// TestEnterReopen: processes that attach, use through EnterFast, and
// close the record again and again (BiasedMutex.Close with the segment
// open, and the segment's Close), against EnterFast lockers that run all
// along: closed handles never enter, and the count is exact.
func TestEnterReopen(t *testing.T) {
	needBias(t)
	name, seg := newTestSegment(t)
	barrier := filepath.Join(t.TempDir(), "go")
	const rounds, cycles, other = 20000, 100, 2000000
	var ps []*testproc.Proc
	for range 2 {
		p := testproc.Start(t, "enter-reopen", name, strconv.Itoa(rounds), strconv.Itoa(cycles), barrier)
		p.Expect("running")
		ps = append(ps, p)
	}
	p := testproc.Start(t, "enter-lock", name, strconv.Itoa(other), "spin=2", "barrier="+barrier)
	p.Expect("running")
	ps = append(ps, p)
	os.WriteFile(barrier, nil, 0o600)
	start := time.Now()
	for _, p := range ps {
		p.MustExitWithin(5 * time.Minute)
		if strings.Contains(p.Output(), "BAD") {
			t.Errorf("%s", p.Output())
		}
	}
	t.Logf("%v; %s", time.Since(start), indexLine(p.Output(), "fast "))
	want := int64(2*rounds*cycles + other)
	if c, bad := view(seg, offCounter).Load(), view(seg, offBad).Load(); c != want || bad != 0 {
		t.Fatalf("counter %d (want %d), violations %d", c, want, bad)
	}
}

// reusedHolderInside sets up, for the revoker step given: P (biased,
// idle, thread id T) and a revoker R stopped at step; P killed; N, a new
// process with P's thread id T (in P's slot if sameSlot, else another),
// locks and is inside. Then R continues. It must not get the lock while
// N holds it; once N dies inside, R gets it with ErrOwnerDead.
func reusedHolderInside(t *testing.T, step string, sameSlot bool) {
	needBias(t)
	testproc.NeedRoot(t)
	name, seg := newTestSegment(t)
	var f *testproc.Proc
	if !sameSlot {
		f = testproc.Start(t, "attach", name, "-1", "none") // keeps a low slot for N
		f.ExpectPrefix("slot ")
		f.Expect("joined")
	}
	p, pslot, ptid := idleBiased(t, name)
	r := stoppedAt(t, name, step)
	t.Logf("R stopped at %s: word %#x bias %#x", step, word(seg), biasWord(seg))
	if f != nil {
		f.Kill()
		f.Wait()
	}
	p.Kill()
	p.Wait()
	barrier := filepath.Join(t.TempDir(), "go")
	n, nslot := startWithTID(t, ptid, int(ptid)-p.Pid(), "hold-check", name, barrier)
	if sameSlot != (nslot == pslot) {
		t.Fatalf("N in slot %d, P was in %d (want same: %v)", nslot, pslot, sameSlot)
	}
	os.WriteFile(barrier, nil, 0o600)
	got := n.ExpectPrefix("locked ")
	t.Logf("N (slot %d, tid %d) locked: %q; word %#x bias %#x", nslot, ptid, got, word(seg), biasWord(seg))
	if !strings.HasSuffix(got, " alone") {
		t.Fatalf("N: %q", got)
	}
	r.Signal(syscall.SIGCONT)
	neverSays(t, r, "got ", "stale revoker R got the lock while N (P's thread id) holds it:")
	time.Sleep(300 * time.Millisecond)
	if rgot := indexLine(r.Output(), "got "); rgot != "" {
		t.Fatalf("EXCLUSION BROKEN: R got %q while N holds the lock", rgot)
	}
	w := word(seg)
	t.Logf("after R resumed: word %#x bias %#x; R said %q", w, biasWord(seg), r.Output())
	if w&tidMask != ptid {
		t.Fatalf("word %#x no longer N's (%d) while N holds it", w, ptid)
	}
	view(seg, offHolder).Store(0) // N dies inside, below: the repair's mark
	n.Kill()
	n.Wait()
	if got := r.ExpectPrefix("got "); got != "ownerdead alone" {
		t.Fatalf("R after N died inside: %q, want \"ownerdead alone\"", got)
	}
}

func TestStaleRevokerReuseInside(t *testing.T) {
	for _, step := range []string{"claimed", "fenced", "won", "seizing"} {
		for _, same := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/sameslot=%v", step, same), func(t *testing.T) {
				reusedHolderInside(t, step, same)
			})
		}
	}
}

// TestSeizedRevokerHolderDies: R seizes the word of a live idle biased
// holder P (its claim acked or fenced) and stops at "seized"; P is
// killed (the kernel leaves the seized word alone: it does not hold P's
// id). N, P's thread id reused, opens the record (its join waits for the
// seizure) and locks. R continues: it must undo (P is dead), and not take
// the lock from N, which gets the lock; R gets it after N dies inside.
func TestSeizedRevokerHolderDies(t *testing.T) {
	needBias(t)
	testproc.NeedRoot(t)
	name, seg := newTestSegment(t)
	p, _, ptid := idleBiased(t, name)
	r := stoppedAt(t, name, "seized")
	if w := word(seg); !isSeized(w&tidMask) || seizedOwner(w&tidMask) != ptid {
		t.Fatalf("word %#x: want R's seizure of P's id %d", w, ptid)
	}
	p.Kill()
	p.Wait()
	t.Logf("P dead: word %#x bias %#x", word(seg), biasWord(seg))
	// N: a child that gets thread id ptid for its robust thread. Its
	// join waits for R's seizure, so it cannot say its id first: look
	// for the id among its threads instead.
	guess := 1
	var n *testproc.Proc
	barrier := filepath.Join(t.TempDir(), "go")
	for try := 0; try < 100 && n == nil; try++ {
		testproc.SetLastPid(int(ptid) - guess - 1)
		c := testproc.Start(t, "hold-check", name, barrier)
		time.Sleep(300 * time.Millisecond)
		if _, err := os.Stat(fmt.Sprintf("/proc/%d/task/%d", c.Pid(), ptid)); err == nil && !strings.Contains(c.Output(), "id ") {
			n = c
			break
		}
		out := c.Output()
		c.Kill()
		c.Wait()
		if l := indexLine(out, "id "); l != "" {
			_, tid := parseID(t, l)
			guess = int(tid) - c.Pid()
		} else {
			guess++
		}
	}
	if n == nil {
		t.Skip("could not start N blocked in join with P's thread id")
	}
	t.Logf("N pid %d has thread %d and waits in join", n.Pid(), ptid)
	r.Signal(syscall.SIGCONT)
	nslot, ntid := parseID(t, n.ExpectPrefix("id "))
	if ntid != ptid {
		t.Fatalf("N's owner id %d, want %d", ntid, ptid)
	}
	os.WriteFile(barrier, nil, 0o600)
	time.Sleep(300 * time.Millisecond)
	rgot := indexLine(r.Output(), "got ")
	ngot := indexLine(n.Output(), "locked ")
	t.Logf("N slot %d: %q; R: %q; word %#x bias %#x", nslot, ngot, rgot, word(seg), biasWord(seg))
	switch {
	case rgot != "" && ngot != "":
		t.Fatalf("EXCLUSION BROKEN: R got %q and N got %q", rgot, ngot)
	case ngot != "":
		if !strings.HasSuffix(ngot, "alone") {
			t.Fatalf("N: %q", ngot)
		}
		view(seg, offHolder).Store(0)
		n.Kill()
		n.Wait()
		if got := r.ExpectPrefix("got "); got != "ownerdead alone" {
			t.Fatalf("R after N died inside: %q", got)
		}
	case rgot != "":
		// R took the dead P's lock first; N waits.
		if !strings.HasSuffix(rgot, "alone") {
			t.Fatalf("R: %q", rgot)
		}
		neverSays(t, n, "locked ", "N got the lock while R holds it:")
	default:
		t.Fatalf("neither R nor N has the lock: word %#x bias %#x\nR: %s\nN: %s", word(seg), biasWord(seg), r.Output(), n.Output())
	}
}

// holdTillEntry: args record, barrier1, barrier2. Say "id <slot>
// <owner id>"; once barrier1 exists, lock (a Mutex; repairing after a
// dead owner), mark itself inside and say "locked <result> <alone|...>";
// once barrier2 exists, unmark, unlock and say "unlocked <err>"; live on.
func holdTillEntry(args []string) int {
	seg, l, err := openLocker(args[0], false)
	if err != nil {
		return fail(err)
	}
	m := l.(*Mutex)
	fmt.Println("id", m.Slot(), m.m.tid)
	waitForFile(args[1])
	err = m.Lock()
	if err == ErrOwnerDead {
		view(seg, offHolder).Store(0)
		m.Consistent()
	}
	fmt.Println("locked", lockResult(err), enterCS(args[0]))
	waitForFile(args[2])
	view(seg, offHolder).CompareAndSwap(int64(os.Getpid()), 0)
	fmt.Println("unlocked", m.Unlock())
	time.Sleep(time.Hour)
	return 0
}

func init() { enterEntries["hold-till"] = holdTillEntry }

// TestStaleRevokerSeizesReusedID: R claims the bias of idle P and stops
// once P is out ("fenced"); P dies; N, with P's thread id (in P's slot or
// another), locks and is inside. R goes on. Its claim is gone (N's settle
// cleared the bias word), so it must not seize N's word: a seizure would
// hold up N's Unlock for as long as R stayed stopped there ("seized").
// revoke asks stands, a load, before it seizes; without it (holds, the
// liveness check, being asked only under the seizure) R seized N's word.
// R gets the lock once N has unlocked.
func TestStaleRevokerSeizesReusedID(t *testing.T) {
	for _, same := range []bool{false, true} {
		t.Run(fmt.Sprintf("sameslot=%v", same), func(t *testing.T) {
			needBias(t)
			testproc.NeedRoot(t)
			name, seg := newTestSegment(t)
			var f *testproc.Proc
			if !same {
				f = testproc.Start(t, "attach", name, "-1", "none")
				f.ExpectPrefix("slot ")
				f.Expect("joined")
			}
			p, pslot, ptid := idleBiased(t, name)
			r := stoppedAt(t, name, "fenced,seized")
			if f != nil {
				f.Kill()
				f.Wait()
			}
			p.Kill()
			p.Wait()
			dir := t.TempDir()
			b1, b2 := filepath.Join(dir, "lock"), filepath.Join(dir, "unlock")
			n, nslot := startWithTID(t, ptid, int(ptid)-p.Pid(), "hold-till", name, b1, b2)
			if same != (nslot == pslot) {
				t.Fatalf("N in slot %d, P was in %d", nslot, pslot)
			}
			os.WriteFile(b1, nil, 0o600)
			if got := n.ExpectPrefix("locked "); got != "ok alone" {
				t.Fatalf("N: %q", got)
			}
			r.Signal(syscall.SIGCONT)
			seized := false
			for deadline := time.Now().Add(2 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
				if strings.Contains(r.Output(), "stopped seized") {
					seized = true
					break
				}
			}
			os.WriteFile(b2, nil, 0o600)
			if seized {
				waitStopped(t, r)
				t.Logf("R stopped with the word seized: %#x (N's id %d) bias %#x", word(seg), ptid, biasWord(seg))
				time.Sleep(300 * time.Millisecond)
				blocked := indexLine(n.Output(), "unlocked ") == ""
				t.Logf("N's Unlock blocked while R is stopped at seized: %v", blocked)
				r.Signal(syscall.SIGCONT)
				t.Errorf("R, its claim gone, seized N's word (P's reused thread id) and held up N's Unlock (blocked: %v)", blocked)
			}
			if got := n.ExpectPrefix("unlocked "); got != "<nil>" {
				t.Fatalf("N's Unlock: %q", got)
			}
			for i := 0; indexLine(r.Output(), "got ") == ""; i++ {
				if i > 10000 {
					t.Fatalf("R never got the lock: %q", r.Output())
				}
				time.Sleep(time.Millisecond)
			}
			if got := indexLine(r.Output(), "got "); got != "ok alone" {
				t.Fatalf("R: %q", got)
			}
		})
	}
}

// idleBiased starts P, which biases the record of segment name to itself
// and then stays between critical sections, and returns it with its slot
// and owner id.
func idleBiased(t *testing.T, name string) (p *testproc.Proc, slot int, tid uint32) {
	t.Helper()
	p = testproc.Start(t, "bias-hold", name, "between")
	slot, tid = parseID(t, p.ExpectPrefix("id "))
	p.Expect("biased true")
	p.Expect("between")
	return p, slot, tid
}

// stoppedAt starts a locker that stops itself at the first of steps (a
// comma-separated list of stepHook steps, see stop-at), and returns it
// once it has stopped there.
func stoppedAt(t *testing.T, name, steps string) *testproc.Proc {
	t.Helper()
	r := testproc.Start(t, "stop-at", name, steps)
	first, _, _ := strings.Cut(steps, ",")
	r.Expect("stopped " + first)
	waitStopped(t, r)
	return r
}
