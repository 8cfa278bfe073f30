//go:build linux

package semaphore

import (
	"context"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"golang.org/x/sys/unix"
)

// The tests below were written by the fourth adversarial review, which
// reproduced each failure with real processes on the code before the fix
// (its first stopped the holder with gdb; here a step hook does it).

// TestSettleWaitsForSeizure: settle marked the word OWNER_DIED with a CAS
// from whatever it loaded, which could be a seized value: a seizer that
// read our id while it was a dead process's. The seizer's commit and undo
// are CASes from its seized value, so both failed and the word stayed
// seized for good, every process alive and waiting. Now settle waits the
// seizure out and marks only our own id.
//
//  1. D dies with its id T left in the word (the exit race).
//  2. C finds T dead after a slice and stops at "seizing" (it read T).
//  3. N gets thread id T, joins (T -> OWNER_DIED) and locks: take moves
//     the word to T, and N stops at "settling".
//  4. C goes on: T -> seized(C, T); it stops at "seized".
//  5. N goes on: settle, dirty.
//  6. C goes on: T is N's, alive: it undoes.
func TestSettleWaitsForSeizure(t *testing.T) {
	testproc.NeedRoot(t)
	name, seg := newTestSegment(t)
	d := testproc.Start(t, "attach", name, "-1", "mutex")
	_, dtid := parseID(t, d.ExpectPrefix("id "))
	guess := int(dtid) - d.Pid()
	d.Kill()
	d.Wait()
	binary.LittleEndian.PutUint32(seg.Data()[offWord:], dtid)
	c := testproc.Start(t, "stop-at", name, "seizing,seized")
	c.Expect("stopped seizing")
	waitStopped(t, c)

	barrier := filepath.Join(t.TempDir(), "go")
	n, _ := startWithTID(t, dtid, guess, "stop-at", name, "settling", barrier)
	os.WriteFile(barrier, nil, 0o600)
	n.Expect("stopped settling")
	waitStopped(t, n)
	if w := word(seg); w&^waitersBit != dtid {
		t.Fatalf("N stopped in settle with the word %#x, want its id %d", w, dtid)
	}
	c.Signal(syscall.SIGCONT)
	c.Expect("stopped seized")
	waitStopped(t, c)
	if sv := word(seg); !isSeized(sv&tidMask) || seizedOwner(sv&tidMask) != dtid {
		t.Fatalf("word %#x: want C's seizure of %d", sv, dtid)
	}
	n.Signal(syscall.SIGCONT) // settle: waits for C now
	c.Signal(syscall.SIGCONT) // C: T is N's: undo
	if got := n.ExpectPrefix("got "); got != "ownerdead alone" {
		t.Fatalf("N got %q", got)
	}
	if w := word(seg); w&tidMask != dtid || w&ownerDiedBit == 0 {
		t.Fatalf("word %#x, want N's id with OWNER_DIED", w)
	}
	view(seg, offHolder).Store(0) // N dies inside, below
	n.Kill()
	n.Wait()
	if got := c.ExpectPrefix("got "); got != "ownerdead alone" {
		t.Fatalf("C got %q", got)
	}
}

// ctxWithdrawEntry: args record, timeout. Say "id <slot> <owner id>" and
// "waiting", then LockContext with that timeout. At the first
// "take-handed-off" step made after the context is done, say "stopped
// take-handed-off withdraw=<whether withdraw made it>" and stop. When
// LockContext returns say "got <result>"; hold.
func ctxWithdrawEntry(args []string) int {
	_, l, err := openLocker(args[0], false)
	if err != nil {
		return fail(err)
	}
	m := l.(*Mutex)
	d, _ := time.ParseDuration(args[1])
	tctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	ctx := clockCtx{tctx, time.Now().Add(d)}
	stopped := false
	stepHook = func(step string) {
		if step != "take-handed-off" || stopped || ctx.Err() == nil {
			return
		}
		stopped = true
		fmt.Println("stopped take-handed-off withdraw=" + strconv.FormatBool(calledFrom("withdraw")))
		stopSelf()
	}
	fmt.Println("id", m.Slot(), m.m.tid)
	fmt.Println("waiting")
	fmt.Println("got", lockResult(m.LockContext(ctx)))
	time.Sleep(time.Hour)
	return 0
}

// clockCtx is a context whose Err reads the clock: done the moment its
// deadline passes, even in a process just continued after a stop, before
// its timer goroutine has run.
type clockCtx struct {
	context.Context
	deadline time.Time
}

func (c clockCtx) Err() error {
	if !time.Now().Before(c.deadline) {
		return context.DeadlineExceeded
	}
	return c.Context.Err()
}

// calledFrom reports whether a function named name is on the calling
// goroutine's stack.
func calledFrom(name string) bool {
	pc := make([]uintptr, 64)
	frames := runtime.CallersFrames(pc[:runtime.Callers(1, pc)])
	for {
		f, more := frames.Next()
		if strings.HasSuffix(f.Function, "."+name) {
			return true
		}
		if !more {
			return false
		}
	}
}

// inFutexWait reports whether a thread of pid sleeps in a shared
// FUTEX_WAIT (op 0: the runtime's own sleeps are FUTEX_WAIT_PRIVATE), as
// a lock call sleeping on the word does.
func inFutexWait(pid int) bool {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/syscall", pid))
	for _, f := range tasks {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		fs := strings.Fields(string(b))
		if len(fs) > 2 && fs[0] == strconv.Itoa(unix.SYS_FUTEX) && fs[2] == "0x0" {
			return true
		}
	}
	return false
}

// TestWithdrawKeepsRepair: a waiter whose context ran out after it was
// granted the lock withdraws (mutex.withdraw). It checked once that the
// grant was its own, then took whatever it found free or left by a dead
// owner and unlocked it, ignoring take's ErrOwnerDead. So if the grant
// went meanwhile (a stale taker of an orphaned grant took the handed-off
// word, which clears it) and that taker died inside its critical section,
// the waiter unlocked the dirty lock without Consistent: not recoverable
// for everyone, and nobody repaired. (With the word already not
// recoverable, it looped for ever.) Now it acts only while the grant
// stands and leaves a dirty lock OWNER_DIED for the next locker.
//
//  1. A grant to W0, which is killed: the word is handed off to nobody. L
//     finds the orphan and stops at "take-handed-off" (it read handedOff).
//  2. We take the orphan. W (LockContext, 1.5s) asks and sleeps on the
//     word; we SIGSTOP it there and let its deadline pass.
//  3. We Unlock: granted to W (alive), the word handed off.
//  4. W continues: ctx done, withdraw: the grant is its own, the word
//     handed off: it stops at "take-handed-off".
//  5. L continues: its CAS lands on the same handed-off value, it clears
//     W's grant and is inside. L is killed there: OWNER_DIED.
//  6. W continues: its CAS fails, and its grant is gone.
func TestWithdrawKeepsRepair(t *testing.T) {
	for _, sub := range []string{"ownerdead", "notrecoverable"} {
		t.Run(sub, func(t *testing.T) {
			name, seg, m := newTestMutex(t)
			l := orphanTaker(t, name, seg)
			lsaw := word(seg)

			if err := m.Lock(); err != nil { // the orphan
				t.Fatal(err)
			}
			start := time.Now()
			const timeout = 1500 * time.Millisecond
			w := testproc.Start(t, "ctx-withdraw", name, timeout.String())
			wslot, _ := parseID(t, w.ExpectPrefix("id "))
			waitHandoff(t, seg, func(h uint32) bool { return h == uint32(wslot+1) })
			for i := 0; ; i++ {
				time.Sleep(20 * time.Millisecond)
				w.Signal(syscall.SIGSTOP)
				waitStopped(t, w)
				if inFutexWait(w.Pid()) {
					break
				}
				if i > 50 || time.Since(start) > timeout/2 {
					t.Fatal("could not stop W asleep on the word")
				}
				w.Signal(syscall.SIGCONT)
			}
			time.Sleep(time.Until(start.Add(timeout + 100*time.Millisecond))) // W's deadline passes, W stopped
			if err := m.Unlock(); err != nil {
				t.Fatal(err)
			}
			if h := handoffWord(seg); word(seg)&tidMask != handedOff || h != uint32(wslot+1)|grantedBit {
				t.Fatalf("word %#x, hand-off %#x: want handed off to W", word(seg), h)
			}
			w.Signal(syscall.SIGCONT)
			if got := w.ExpectPrefix("stopped take-handed-off "); got != "withdraw=true" {
				t.Fatalf("W stopped taking the handed-off word with %s: not in withdraw", got)
			}
			waitStopped(t, w)
			if word(seg) != lsaw {
				t.Fatalf("word %#x, L read %#x: not the value this test needs", word(seg), lsaw)
			}
			l.Signal(syscall.SIGCONT)
			if got := l.ExpectPrefix("got "); got != "ok alone" {
				t.Fatalf("L got %q", got)
			}
			l.Kill() // inside its critical section
			l.Wait()
			if wv := word(seg); wv&ownerDiedBit == 0 || wv&tidMask != 0 {
				t.Fatalf("word %#x after L died inside: want OWNER_DIED", wv)
			}
			if sub == "notrecoverable" {
				if err := m.Lock(); err != ErrOwnerDead {
					t.Fatalf("Lock after L died inside: %v, want ErrOwnerDead", err)
				}
				view(seg, offHolder).Store(0)
				m.Unlock() // without Consistent: not recoverable, as the caller chose
			}
			w.Signal(syscall.SIGCONT)
			if got := w.ExpectPrefix("got "); !strings.HasPrefix(got, "error ") {
				t.Fatalf("W's LockContext returned %q after its deadline", got)
			}
			want := "ownerdead"
			if sub == "notrecoverable" {
				want = "notrecoverable"
			}
			y := testproc.Start(t, "lock-report", name, "consistent")
			if got := y.ExpectPrefix("got "); got != want {
				t.Fatalf("the next Lock got %q, want %s (word %#x)", got, want, word(seg))
			}
		})
	}
}
