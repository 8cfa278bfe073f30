//go:build linux

package semaphore

import (
	"context"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Waiting, and turns.
//
// A contended lock is taken in turns: the process that has it keeps it
// while others wait (its critical sections run back to back, with the
// lock's cache lines in its cache, through its bias if it has one), and a
// waiter that has waited a turn asks for it: a hand-off (a plain lock) or
// a revocation (a biased one), which the holder answers at its next
// unlock or lock, in about a microsecond when it runs. A turn is the
// throughput against the wait: a hand-over costs a microsecond or two of
// nobody buying, and a process arriving at a random moment waits a
// fraction of a turn. SetTurn sets it. DefaultTurn is where the curve
// measured on a 2-core VM pays best. With 2 buyers, the part of the mean
// wait that gaps under 100 µs make was 6.66 µs at a turn of 20 µs, 3.83 µs
// at 10 µs, 2.72 µs at 5 µs, 1.78 µs at 3 µs and 1.47 µs at 1 µs, glibc's
// robust mutex's 0.21-3.71 µs in the same runs (part 2 of
// docs/runs/handover.txt). But the whole mean wait, ten sales pooled,
// was 13.41 µs and 17.04 µs at 3 µs against 11.44 µs and 9.62 µs at 10 µs,
// glibc's 6.90-13.42 µs: at the shorter turn the gaps over a millisecond
// (the machine's stalls) made twice as much of it (part 2 of
// docs/runs/handover-pooled.txt). A revoker stalled between its claim and
// its commit held up the holder that answered it, where a stalled glibc
// waiter holds up nobody; now the revoker wins the bias word before it
// commits, and until then the holder takes its bias back once its answer
// has stood 20 µs (bias_linux.go). The 3 µs turn did not pay with that
// either: 14.90 µs and 10.31 µs against 12.15 µs and 14.30 µs at 10 µs
// (part 1 of docs/runs/takeback.txt, where the machine's stalls decide).
//
// While it waits its turn a waiter does not touch the lock's cache lines
// (that would slow the holder down) and does not sleep in Go's timers (an
// idle Go process's timer sleeps last a millisecond at least): it yields
// its CPU (sched_yield), to the holder if they share one, and looks at
// the clock. A yield that gave the CPU away means it shares one with a
// busy process, which would run out its time slice: it sleeps the rest of
// its wait in nanosleep, whose timer wakes it. A waiter with nothing to
// wait for but an unlock (a long critical section, a hand-off asked for,
// or another waiter next) sleeps on the futex.

// DefaultTurn is the turn a waiter lets the holder have before it asks
// for the lock.
const DefaultTurn = 10 * time.Microsecond

var turn atomic.Int64

func init() { turn.Store(int64(DefaultTurn)) }

// SetTurn sets the turn of this process's waiters, from 1µs to 10ms (a
// shorter turn: shorter waits, more hand-overs, less throughput under
// contention; see the package doc's # Mutex fairness), and returns the
// previous one. Each process sets its own: it is how long its waiters
// wait before they ask.
func SetTurn(d time.Duration) time.Duration {
	d = min(max(d, time.Microsecond), 10*time.Millisecond)
	return time.Duration(turn.Swap(int64(d)))
}

// turnNs is this process's turn: SetTurn's, or crowdedTurn while its
// CPU is crowded.
func turnNs() int64 {
	if crowded() {
		return max(turn.Load(), int64(crowdedTurn))
	}
	return turn.Load()
}

// Crowded CPUs. With more runnable processes than CPUs, a waiter that
// yields its CPU gives it away for a while (another process's time slice:
// milliseconds), and short turns only multiply the switches: every waiter
// takes its turn at the scheduler's pace anyway. So waiters keep a score
// of their yields: one that gave the CPU away adds crowdedLong, one that
// did not takes one off. While the score is above crowdedScore, which a
// lone slow yield (an interrupt, a kernel thread) does not reach, this
// process is crowded: its turns last crowdedTurn at least, and it sleeps
// out its waits instead of yielding.
//
// A yield gave the CPU away if it took longer than crowdedYield and the
// kernel switched the thread out meanwhile: its count of involuntary
// context switches moved. A long yield without a switch is the machine
// stalling the thread (a hypervisor taking the vCPU away), which no turn
// length helps: on the 2-vCPU VM measured, a waiter alone on its CPU had
// 93-118 yields over crowdedYield in 400 ms, 3-6 of them switches
// (docs/runs/yields.txt). Each counted toward crowding, and a few close
// together put the process in turns of a millisecond, which the other
// process waited out.
const (
	crowdedYield = int64(20 * time.Microsecond) // a yield this long may have given the CPU away
	crowdedLong  = 8
	crowdedScore = 16
	crowdedTurn  = time.Millisecond
)

var crowdScore atomic.Int64

// longYields counts the yields that took longer than crowdedYield, and
// gaveAway those of them that gave the CPU away (tests).
var longYields, gaveAway atomic.Int64

func crowded() bool { return crowdScore.Load() > crowdedScore }

// noteYield scores a yield: gave, it gave the CPU away.
func noteYield(gave bool) {
	if gave {
		gaveAway.Add(1)
		if crowdScore.Add(crowdedLong) > 4*crowdedScore {
			crowdScore.Store(4 * crowdedScore)
		}
	} else if crowdScore.Load() > 0 {
		crowdScore.Add(-1)
	}
}

// coolDown takes crowdedLong off the score after a sleep, down to 0: a
// score far below 0 would hide a crowded CPU for as many yields.
func coolDown() {
	for {
		c := crowdScore.Load()
		if c <= 0 || crowdScore.CompareAndSwap(c, max(c-crowdedLong, 0)) {
			return
		}
	}
}

// yield gives this thread's CPU to another runnable thread, if one waits
// for it, and returns at once otherwise (about 0.6 µs on the VM measured).
func yield() {
	yields.Add(1)
	unix.Syscall(unix.SYS_SCHED_YIELD, 0, 0, 0)
}

// yields counts yield's calls (tests).
var yields atomic.Int64

// waitUntil waits until CLOCK_MONOTONIC reaches deadline (monoNow's
// clock), or ctx is done, yielding its CPU meanwhile; on a crowded CPU it
// sleeps instead. It touches no shared memory.
func waitUntil(ctx context.Context, deadline int64) error {
	// On one thread, whose switches it counts.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	lost, yielded := false, false
	switches := involuntarySwitches()
	for {
		now := monoNow()
		if now >= deadline {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		if deadline-now < int64(spinTail) && yielded && !lost && !crowded() {
			// The end of a wait alone on a CPU: a yield would overshoot
			// it. Not of a nap of a moment (that is a yield), nor on a
			// crowded CPU, where a spin keeps the CPU from the process
			// we wait for: with 8 buyers on 2 CPUs, spinning there cost
			// the lock most of its throughput.
			continue
		}
		if deadline-now >= int64(minSleep) && (lost || crowded()) {
			if err := sleepUntil(ctx, deadline); err != nil {
				return err
			}
			coolDown() // asleep, it learns nothing
			return nil
		}
		yield()
		yielded = true
		gave := false
		if monoNow()-now > crowdedYield {
			longYields.Add(1)
			s := involuntarySwitches()
			gave = s != switches || s < 0
			switches = s
		}
		noteYield(gave)
		// A yield that gave the CPU away shares it with a busy process
		// (the holder, perhaps), which runs to the end of its time slice
		// unless something wakes: sleep the rest, and let the timer's
		// wake-up take the CPU back.
		lost = lost || gave
	}
}

// involuntarySwitches is how many times the kernel has switched this
// thread out while it could run (a yield that let another thread run
// counts), or -1 if it cannot tell. A variable for the tests.
var involuntarySwitches = func() int64 {
	var ru unix.Rusage
	if unix.Getrusage(unix.RUSAGE_THREAD, &ru) != nil {
		return -1
	}
	return ru.Nivcsw
}

// spinTail is the end of a wait that waitUntil spins out on the clock
// instead of yielding, on a CPU of its own: a yield takes about 0.4 µs,
// and a turn's end overshot by one is a hand-over late by as much.
const spinTail = time.Microsecond

// minSleep is the shortest wait worth a sleep rather than yields: a
// nanosleep lasts 50-80µs at least on the VMs measured.
const minSleep = 50 * time.Microsecond

// sleepUntil sleeps in nanosleep(2), with its thread's timer slack at a
// microsecond, until deadline or ctx is done (looked at every ms). The
// thread's slack is put back afterwards: the thread goes on to run other
// goroutines, whose timers are none of the lock's business.
func sleepUntil(ctx context.Context, deadline int64) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if slack, err := unix.PrctlRetInt(unix.PR_GET_TIMERSLACK, 0, 0, 0, 0); err == nil && slack != 1000 {
		unix.Prctl(unix.PR_SET_TIMERSLACK, 1000, 0, 0, 0)
		defer unix.Prctl(unix.PR_SET_TIMERSLACK, uintptr(slack), 0, 0, 0)
	}
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		left := deadline - monoNow()
		if left <= 0 {
			return nil
		}
		ts := unix.NsecToTimespec(min(left, int64(time.Millisecond)))
		unix.Nanosleep(&ts, nil)
	}
}

// nap sleeps for about d: precisely for the short ones, which
// time.Sleep rounds up to a millisecond in an idle Go process. Under
// 50µs it yields, at least once (a nap of a moment is a yield: the
// process napping may wait for one that needs its CPU), until the time is
// up; longer, it sleeps in nanosleep(2) with its thread's timer slack at a
// microsecond. It returns early with ctx's error.
func nap(ctx context.Context, d time.Duration) error {
	deadline := monoNow() + int64(d)
	if d < minSleep {
		yield()
		return waitUntil(ctx, deadline)
	}
	return sleepUntil(ctx, deadline)
}
