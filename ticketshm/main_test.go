//go:build linux

package ticketshm_test

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/backend"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
	"github.com/shmkit/shmkit/ticketshm/jsonfile"
)

func TestMain(m *testing.M) {
	testproc.Main(m, map[string]testproc.Entry{
		"buyer":        buyerEntry,
		"buy-forever":  buyForeverEntry,
		"mid":          midEntry,
		"log":          logEntry,
		"bench-buyer":  benchBuyerEntry,
		"log-stages":   logStagesEntry,
		"settle-stop":  settleStopEntry,
		"claim-slot":   claimSlotEntry,
		"open-report":  openReportEntry,
		"intend":       intendEntry,
		"goroutines":   goroutinesEntry,
		"hold-counter": holdCounterEntry,
		"hold-claim":   testproc.HoldClaimEntry,
		"fork-buyer":   forkBuyerEntry,
	})
}

var nameSeq atomic.Int64

// newCounter makes a Counter of total tickets in mode on a fresh segment
// (see storeName) and returns its name and a handle, closed when the test
// ends.
func newCounter(t testing.TB, mode ticketshm.Mode, total int64) (string, *ticketshm.Counter) {
	t.Helper()
	kind := backend.ShmMutex
	if mode == ticketshm.LockFree {
		kind = backend.ShmLockFree
	}
	name := storeName(t, kind)
	c, err := ticketshm.OpenOrCreate(context.Background(), name, total, mode)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return name, c
}

// makeCounter is newCounter with the handle closed at once: the counter
// is left for other processes, and for the test's own opens.
func makeCounter(t testing.TB, mode ticketshm.Mode, total int64) string {
	t.Helper()
	name, c := newCounter(t, mode, total)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	return name
}

// storeName is a fresh segment name or file path for the backend,
// removed when the test ends.
func storeName(t testing.TB, kind string) string {
	name := fmt.Sprintf("tickettest.%d.%d.%d", os.Getpid(), time.Now().UnixNano(), nameSeq.Add(1))
	if backend.IsJSON(kind) {
		name = t.TempDir() + "/db.txt"
	}
	t.Cleanup(func() {
		if err := backend.Remove(kind, name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

func waitForFile(path string) {
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// buyerEntry: args kind, name, barrier. Buys until sold out, retrying torn
// reads, then prints "sold" and its ticket numbers, and "torn N".
func buyerEntry(args []string) int {
	kind, name, barrier := args[0], args[1], args[2]
	st, err := backend.Open(context.Background(), kind, name)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer st.Close()
	fmt.Println("ready")
	waitForFile(barrier)
	var sold []string
	for {
		t, err := st.Buy(context.Background())
		if errors.Is(err, ticketshm.ErrSoldOut) || errors.Is(err, jsonfile.ErrBroken) {
			break // sold out, or the file was torn for good: both end the sale
		}
		if errors.Is(err, jsonfile.ErrTorn) {
			continue // counted by the store
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		sold = append(sold, strconv.FormatInt(t, 10))
	}
	fmt.Println("sold", strings.Join(sold, " "))
	torn := int64(0)
	if u, ok := st.(*jsonfile.UnlockedStore); ok {
		torn = u.Torn()
	}
	fmt.Println("torn", torn)
	return 0
}

// buyForeverEntry: args kind, name [, pace]. Buys until sold out or
// killed; with a pace n, it sleeps 50µs after every n buys.
func buyForeverEntry(args []string) int {
	st, err := backend.Open(context.Background(), args[0], args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	pace := 0
	if len(args) > 2 {
		pace, _ = strconv.Atoi(args[2])
	}
	fmt.Println("running")
	for i := 1; ; i++ {
		if pace > 0 && i%pace == 0 {
			time.Sleep(50 * time.Microsecond)
		}
		if _, err := st.Buy(context.Background()); errors.Is(err, ticketshm.ErrSoldOut) {
			return 0
		} else if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
}

// midEntry: args name, mode. Stops half-way through a buy and waits to be
// killed: Locked, holding the Mutex with the ledger written and remaining
// not; LockFree, after its CAS and before the ledger (BuyHalfway).
func midEntry(args []string) int {
	mode := ticketshm.Locked
	if args[1] == "lock-free" {
		mode = ticketshm.LockFree
	}
	c, err := ticketshm.Open(context.Background(), args[0])
	if err == nil && c.Mode() != mode {
		err = fmt.Errorf("counter is %v, want %v", c.Mode(), mode)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ticketshm.BuyHalfway(c)
	fmt.Println("mid")
	time.Sleep(time.Hour)
	return 0
}

// logEntry: args name, n, then. Buys n tickets from a lock-free Counter;
// with then "half-flush" it writes half its log into the ledger
// (FlushHalfway). Prints "slot S", then "logged", and waits, alive,
// without Close.
func logEntry(args []string) int {
	n, err := strconv.Atoi(args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	c, err := ticketshm.Open(context.Background(), args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	for range n {
		if _, err := c.Buy(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if args[2] == "half-flush" {
		ticketshm.FlushHalfway(c)
	}
	fmt.Println("slot", c.Slot())
	fmt.Println("logged")
	time.Sleep(time.Hour)
	return 0
}

// logStagesEntry: args name, n1, barrier, n2. Buys n1 tickets from a
// lock-free Counter, prints "slot S" and "first", waits for the barrier
// file, buys n2 more, then takes one more ticket with its CAS and stops
// before the commit, as a buyer killed there would; prints "cas-done"
// and waits to be killed.
func logStagesEntry(args []string) int {
	n1, _ := strconv.Atoi(args[1])
	n2, _ := strconv.Atoi(args[3])
	c, err := ticketshm.Open(context.Background(), args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	buy := func(n int) bool {
		for range n {
			if _, err := c.Buy(context.Background()); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return false
			}
		}
		return true
	}
	if !buy(n1) {
		return 1
	}
	fmt.Println("slot", c.Slot())
	fmt.Println("first")
	waitForFile(args[2])
	if !buy(n2) {
		return 1
	}
	if r := ticketshm.Intend(c); !ticketshm.CASed(c, r) {
		fmt.Fprintln(os.Stderr, "CAS lost")
		return 1
	}
	fmt.Println("cas-done")
	time.Sleep(time.Hour)
	return 0
}

// settleStopEntry: args name, slot, barrier. Opens the Counter, whose
// attach settles dead buyers' logs, stopping before it looks at the given
// slot until the barrier file exists ("paused"); then prints its audit as
// "audit <sold> <lost> <ok>", or "error <err>".
func settleStopEntry(args []string) int {
	slot, _ := strconv.Atoi(args[1])
	paused := false
	ticketshm.SetSettleHook(func(s int) {
		if s == slot && !paused {
			paused = true
			fmt.Println("paused")
			waitForFile(args[2])
		}
	})
	c, err := ticketshm.Open(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		time.Sleep(time.Hour)
	}
	a, err := c.Audit(context.Background())
	if err != nil {
		fmt.Println("error", err)
		time.Sleep(time.Hour)
	}
	fmt.Println("audit", a.Sold, a.Lost, a.OK())
	time.Sleep(time.Hour)
	return 0
}

// claimSlotEntry: args name, slot. Opens the Counter's segment without
// the Counter and claims the slot given (if free), prints "slot <i> <gen>"
// and waits to be killed: a process that took a dead buyer's slot and
// does not buy.
func claimSlotEntry(args []string) int {
	seg, err := shm.Open(args[0], ticketshm.Tag)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	i, _ := strconv.Atoi(args[1])
	sl, err := seg.Slot(context.Background(), i)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("slot", sl.Index, sl.Gen)
	time.Sleep(time.Hour)
	return 0
}

// openReportEntry: args name. Opens the Counter and prints "opened" and
// then buys until sold out ("sold <n>"), or prints "error <err>"; then
// waits to be killed.
func openReportEntry(args []string) int {
	c, err := ticketshm.Open(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		time.Sleep(time.Hour)
	}
	fmt.Println("opened")
	n := 0
	for {
		_, err := c.Buy(context.Background())
		if errors.Is(err, ticketshm.ErrSoldOut) {
			break
		}
		if err != nil {
			fmt.Println("error", err)
			time.Sleep(time.Hour)
		}
		n++
	}
	c.Close()
	fmt.Println("sold", n)
	time.Sleep(time.Hour)
	return 0
}

// intendEntry: args name. Opens the lock-free Counter, writes the intent
// of a buy (its log's next entry) without the CAS, says "intended <r>
// <slot>", and waits to be killed.
func intendEntry(args []string) int {
	c, err := ticketshm.Open(context.Background(), args[0])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("intended", ticketshm.Intend(c), c.Slot())
	time.Sleep(time.Hour)
	return 0
}

// holdCounterEntry: args name. Locks the Counter's Mutex, says
// "holding" and waits to be killed.
func holdCounterEntry(args []string) int {
	seg, err := shm.Open(args[0], ticketshm.Tag)
	if err == nil {
		var m *semaphore.Mutex
		if m, err = semaphore.NewMutex(context.Background(), seg, 0); err == nil {
			err = m.Lock()
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("holding")
	time.Sleep(time.Hour)
	return 0
}
