//go:build linux

package ticketshm_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/backend"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
	"golang.org/x/sys/unix"
)

// startBuyers makes a fresh store of total tickets and starts procs
// processes running entry (args kind, name, barrier), each ready and
// waiting at the barrier; release lets them all go at once.
func startBuyers(tb testing.TB, entry, kind string, total int64, procs int) (name string, ps []*testproc.Proc, release func()) {
	tb.Helper()
	name = storeName(tb, kind)
	if err := backend.Create(context.Background(), kind, name, total); err != nil {
		tb.Fatal(err)
	}
	barrier := filepath.Join(tb.TempDir(), "go")
	for range procs {
		p := testproc.Start(tb, entry, kind, name, barrier)
		p.Expect("ready")
		ps = append(ps, p)
	}
	return name, ps, func() {
		if err := os.WriteFile(barrier, nil, 0o600); err != nil {
			tb.Fatal(err)
		}
	}
}

// sale runs procs buyer processes on a fresh store of total tickets and
// returns every ticket number sold (with repeats) and the torn reads.
func sale(t *testing.T, kind string, total int64, procs int) (tickets []int64, torn int64) {
	t.Helper()
	name, ps, release := startBuyers(t, "buyer", kind, total, procs)
	release()
	for _, p := range ps {
		p.MustExit()
		for _, line := range strings.Split(p.Output(), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 0 && f[0] == "sold":
				for _, s := range f[1:] {
					n, _ := strconv.ParseInt(s, 10, 64)
					tickets = append(tickets, n)
				}
			case len(f) == 2 && f[0] == "torn":
				n, _ := strconv.ParseInt(f[1], 10, 64)
				torn += n
			}
		}
	}
	if !backend.IsJSON(kind) {
		c, err := ticketshm.Open(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		a, err := c.Audit(context.Background())
		if err != nil || !a.OK() || a.Sold != total {
			t.Fatalf("audit %+v, %v", a, err)
		}
	}
	return tickets, torn
}

// TestEightBuyers: the correct backends sell every ticket exactly once.
func TestEightBuyers(t *testing.T) {
	for _, kind := range []string{backend.ShmMutex, backend.ShmLockFree, backend.JSONFlock} {
		t.Run(kind, func(t *testing.T) {
			const total = 3000
			tickets, _ := sale(t, kind, total, 8)
			seen := make(map[int64]bool)
			for _, n := range tickets {
				if seen[n] || n < 1 || n > total {
					t.Fatalf("ticket %d sold twice or out of range", n)
				}
				seen[n] = true
			}
			if len(seen) != total {
				t.Fatalf("%d tickets sold, want %d", len(seen), total)
			}
		})
	}
}

// TestUnlockedShowsTheRace: the unlocked JSON store under the same load is
// caught overselling (a number sold twice, or more sales than tickets) or
// tearing the file, and says so. Each round is a real race; it is retried
// a few times so that the test is about detection, not luck.
func TestUnlockedShowsTheRace(t *testing.T) {
	const total = 2000
	for round := range 10 {
		tickets, torn := sale(t, backend.JSONNoLock, total, 8)
		seen := make(map[int64]int)
		dup := 0
		for _, n := range tickets {
			seen[n]++
			if seen[n] == 2 {
				dup++
			}
		}
		oversold := len(tickets) - total
		t.Logf("round %d: %d sales of %d tickets, %d numbers sold twice, %d torn reads", round, len(tickets), total, dup, torn)
		if dup > 0 || oversold > 0 || torn > 0 {
			return
		}
	}
	t.Fatal("10 rounds of 8 unlocked buyers showed no race at all")
}

// TestKilledBuyers: buyers SIGKILLed at random moments, again and again;
// nothing lost, nothing sold twice, and the sale goes on.
func TestKilledBuyers(t *testing.T) {
	for _, kind := range []string{backend.ShmMutex, backend.ShmLockFree} {
		t.Run(kind, func(t *testing.T) {
			const want = 150
			total := killTestTickets(t)
			kills, rounds, sold := 0, 0, int64(0)
			for kills < want {
				if rounds++; rounds > 50 {
					t.Fatalf("%d counters of %d tickets sold out with only %d kills", rounds-1, total, kills)
				}
				k, n := killRound(t, kind, total, want-kills)
				kills += k
				sold += n
			}
			t.Logf("%d tickets sold across %d kills, %d counter(s) of %d", sold, kills, rounds, total)
		})
	}
}

// killTestTickets sizes a counter for killRound: 400M tickets (400 MB of
// ledger, enough for 150 kills of buyers at full speed on a slow machine)
// or a quarter of what /dev/shm has free, whichever is less.
func killTestTickets(t *testing.T) int64 {
	var fs unix.Statfs_t
	if err := unix.Statfs("/dev/shm", &fs); err != nil {
		t.Fatal(err)
	}
	return min(400_000_000, int64(fs.Bavail)*fs.Bsize/4)
}

// killRound runs 4 buyers on a fresh counter of total tickets and
// SIGKILLs one at a random moment, up to kills times or until the counter
// sells out, starting a new buyer each time. Then it audits: nothing lost,
// nothing sold twice, and the sale goes on where it stopped. It returns
// the kills made and the tickets sold.
func killRound(t *testing.T, kind string, total int64, kills int) (int, int64) {
	t.Helper()
	ctx := context.Background()
	name := storeName(t, kind)
	if err := backend.Create(ctx, kind, name, total); err != nil {
		t.Fatal(err)
	}
	c, err := ticketshm.Open(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ps := make([]*testproc.Proc, 4)
	for i := range ps {
		ps[i] = testproc.Start(t, "buy-forever", kind, name)
		ps[i].Expect("running")
	}
	k := 0
	for ; k < kills; k++ {
		i := rand.IntN(len(ps))
		time.Sleep(time.Duration(rand.IntN(2000)) * time.Microsecond)
		if r, _ := c.Remaining(ctx); r == 0 {
			break // sold out: the buyers are leaving by themselves
		}
		ps[i].Kill()
		code := ps[i].Wait()
		if r, _ := c.Remaining(ctx); code == 0 && r == 0 {
			break // it sold the last ticket and left before the kill
		}
		if code != -9 {
			t.Fatalf("buyer exited %d before the kill", code)
		}
		ps[i] = testproc.Start(t, "buy-forever", kind, name)
		ps[i].Expect("running")
	}
	for _, p := range ps {
		p.Kill()
		p.Wait()
	}
	a, err := c.Audit(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !a.OK() || a.InFlight != 0 {
		t.Fatalf("after %d kills: %+v", k, a)
	}
	if a.Sold == 0 {
		t.Fatal("nothing sold")
	}
	n, err := c.Buy(ctx)
	if a.Remaining == 0 {
		if !errors.Is(err, ticketshm.ErrSoldOut) {
			t.Fatalf("Buy on a sold-out counter = %d, %v", n, err)
		}
	} else if err != nil || n != a.Sold+1 {
		t.Fatalf("next Buy = %d, %v; want ticket %d", n, err, a.Sold+1)
	}
	return k, a.Sold
}

// TestDeathMidBuy: a buyer killed at the worst instruction of each mode.
// Locked: ledger written, remaining not; the next locker completes it.
// LockFree: CAS done, ledger not; the next attach settles it.
func TestDeathMidBuy(t *testing.T) {
	for _, tc := range []struct {
		kind string
		mode ticketshm.Mode
	}{{backend.ShmMutex, ticketshm.Locked}, {backend.ShmLockFree, ticketshm.LockFree}} {
		t.Run(tc.kind, func(t *testing.T) {
			ctx := context.Background()
			name := storeName(t, tc.kind)
			if err := backend.Create(ctx, tc.kind, name, 10); err != nil {
				t.Fatal(err)
			}
			st, err := backend.Open(ctx, tc.kind, name)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if n, err := st.Buy(ctx); n != 1 || err != nil {
				t.Fatalf("first Buy = %d, %v", n, err)
			}
			p := testproc.Start(t, "mid", name, tc.mode.String())
			p.Expect("mid")
			p.Kill()
			p.Wait()
			c, err := ticketshm.Open(context.Background(), name) // attaching settles a dead lock-free buy
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if n, err := st.Buy(ctx); n != 3 || err != nil {
				t.Fatalf("Buy after the death = %d, %v; want ticket 3 (2 went to the dead buyer)", n, err)
			}
			a, err := c.Audit(context.Background())
			if err != nil || !a.OK() || a.Sold != 3 || a.Remaining != 7 {
				t.Fatalf("audit %+v, %v; want 3 sold, 7 left", a, err)
			}
		})
	}
}

// TestBuyLog: the tickets in a lock-free buyer's log, not yet in the
// ledger, belong to it whether it is alive (Audit reads its log), SIGKILLed
// between flushes, or SIGKILLed in the middle of a flush.
func TestBuyLog(t *testing.T) {
	for _, tc := range []struct {
		name string
		n    int
		then string
		kill bool
	}{
		{"alive", 10, "", false},
		{"alive after a flush", ticketshm.LogCap + 3, "", false},
		{"killed with a full log", ticketshm.LogCap - 1, "", true},
		{"killed after a flush", 2*ticketshm.LogCap + 7, "", true},
		{"killed mid-flush", ticketshm.LogCap - 1, "half-flush", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			name := storeName(t, backend.ShmLockFree)
			const total = 1000
			if err := backend.Create(ctx, backend.ShmLockFree, name, total); err != nil {
				t.Fatal(err)
			}
			p := testproc.Start(t, "log", name, strconv.Itoa(tc.n), tc.then)
			p.Expect("logged")
			var slot int
			if _, err := fmt.Sscanf(p.Output(), "slot %d", &slot); err != nil {
				t.Fatalf("%v in %q", err, p.Output())
			}
			if tc.kill {
				p.Kill()
				p.Wait()
			}
			c, err := ticketshm.Open(context.Background(), name)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			a, err := c.Audit(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if !a.OK() || a.Sold != int64(tc.n) || a.PerSlot[slot] != int64(tc.n) || a.InFlight != 0 {
				t.Fatalf("audit: %d sold, %d by slot %d, %d lost, %d oversold, %d in flight; want %d by that slot",
					a.Sold, a.PerSlot[slot], slot, a.Lost, a.Oversold, a.InFlight, tc.n)
			}
			if n, err := c.Buy(ctx); n != int64(tc.n)+1 || err != nil {
				t.Fatalf("next Buy = %d, %v; want %d", n, err, tc.n+1)
			}
			if !tc.kill {
				p.Kill()
				p.Wait()
			}
		})
	}
}

func TestSoldOut(t *testing.T) {
	for _, kind := range backend.Names {
		t.Run(kind, func(t *testing.T) {
			ctx := context.Background()
			name := storeName(t, kind)
			if err := backend.Create(ctx, kind, name, 2); err != nil {
				t.Fatal(err)
			}
			st, err := backend.Open(ctx, kind, name)
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			for range 2 {
				if _, err := st.Buy(ctx); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := st.Buy(ctx); !errors.Is(err, ticketshm.ErrSoldOut) {
				t.Fatalf("third Buy: %v, want ErrSoldOut", err)
			}
			if n, err := st.Remaining(ctx); n != 0 || err != nil {
				t.Fatalf("Remaining = %d, %v", n, err)
			}
		})
	}
}

func TestCounterBadInput(t *testing.T) {
	ctx := context.Background()
	name := storeName(t, backend.ShmMutex)
	c, err := ticketshm.OpenOrCreate(ctx, name, 100, ticketshm.Locked)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := ticketshm.OpenOrCreate(ctx, name, 100, ticketshm.LockFree); !errors.Is(err, ticketshm.ErrModeMismatch) {
		t.Errorf("other mode: %v, want ErrModeMismatch", err)
	}
	if _, err := ticketshm.OpenOrCreate(ctx, name, 99, ticketshm.Locked); !errors.Is(err, ticketshm.ErrTotalMismatch) {
		t.Errorf("other total: %v, want shm.ErrSizeMismatch", err)
	}
	for _, total := range []int64{0, -1, ticketshm.MaxTickets} {
		if _, err := ticketshm.OpenOrCreate(ctx, storeName(t, backend.ShmMutex), total, ticketshm.Locked); err == nil {
			t.Errorf("OpenCounter with %d tickets succeeded", total)
		}
	}

	other := storeName(t, backend.ShmMutex)
	s, err := shm.Create(other, 64, "semaphore.Mutex/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := ticketshm.Open(context.Background(), other); !errors.Is(err, shm.ErrTypeMismatch) || errors.Is(err, ticketshm.ErrLayoutVersion) {
		t.Errorf("another type: %v, want shm.ErrTypeMismatch", err)
	}
	newer := storeName(t, backend.ShmMutex)
	s, err = shm.Create(newer, 80000, "ticketshm.Counter/99", nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := ticketshm.Open(context.Background(), newer); !errors.Is(err, ticketshm.ErrLayoutVersion) {
		t.Errorf("newer layout: %v, want ErrLayoutVersion", err)
	}

	// A segment with the Counter's tag, too small to be one.
	tiny := storeName(t, backend.ShmMutex)
	s, err = shm.Create(tiny, 100, ticketshm.Tag, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := ticketshm.Open(context.Background(), tiny); !errors.Is(err, ticketshm.ErrCorrupt) {
		t.Errorf("a tiny segment: %v, want ErrCorrupt", err)
	}

	// Corrupt words in a Counter segment. Slot 5's log belongs to no live
	// process.
	const log5 = ticketshm.OffAreas + ticketshm.AreaSize*5 + ticketshm.OffLogCount
	for _, tc := range []struct {
		name string
		mode ticketshm.Mode
		off  int
		val  byte
	}{
		{"remaining above total", ticketshm.Locked, ticketshm.OffRemaining + 7, 0x7f},
		{"unknown mode", ticketshm.Locked, ticketshm.OffMode, 9},
		{"reserved", ticketshm.Locked, ticketshm.OffMode + 14, 1},
		{"total", ticketshm.Locked, ticketshm.OffTotal, 11},
		{"a log in a locked counter", ticketshm.Locked, log5 + 8, 3},
		{"a log of 64 buys", ticketshm.LockFree, log5, 64},
		{"a negative log count", ticketshm.LockFree, log5 + 7, 0x80},
		{"a logged buy of an untaken ticket", ticketshm.LockFree, log5, 1}, // entry 0 is 0
	} {
		bad := storeName(t, backend.ShmMutex)
		c, err := ticketshm.OpenOrCreate(ctx, bad, 10, tc.mode)
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		seg, err := shm.Open(bad, ticketshm.Tag)
		if err != nil {
			t.Fatal(err)
		}
		seg.Data()[tc.off] = tc.val
		seg.Close()
		if _, err := ticketshm.Open(context.Background(), bad); !errors.Is(err, ticketshm.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", tc.name, err)
		}
	}
}

// TestCorruptedWhileOpen: a remaining count that another process garbles
// under an open Counter makes Buy fail with ErrCorrupt in both modes; it
// never indexes the ledger with it.
func TestCorruptedWhileOpen(t *testing.T) {
	ctx := context.Background()
	for _, mode := range []ticketshm.Mode{ticketshm.Locked, ticketshm.LockFree} {
		t.Run(mode.String(), func(t *testing.T) {
			name := storeName(t, backend.ShmMutex)
			c, err := ticketshm.OpenOrCreate(ctx, name, 10, mode)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Buy(ctx); err != nil {
				t.Fatal(err)
			}
			seg, err := shm.Open(name, ticketshm.Tag)
			if err != nil {
				t.Fatal(err)
			}
			defer seg.Close()
			for _, garbage := range []int64{11, 1 << 40, -3} {
				v, err := seg.Int64(ticketshm.OffRemaining)
				if err != nil {
					t.Fatal(err)
				}
				v.Store(garbage)
				_, err = c.Buy(ctx)
				if !errors.Is(err, ticketshm.ErrCorrupt) {
					t.Errorf("remaining %d: Buy = %v, want ErrCorrupt", garbage, err)
				}
			}
		})
	}
}
