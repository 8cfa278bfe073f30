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
	"github.com/shmkit/shmkit/ticketshm"
	"github.com/shmkit/shmkit/ticketshm/jsonfile"
)

func TestMain(m *testing.M) {
	testproc.Main(m, map[string]testproc.Entry{
		"buyer":       buyerEntry,
		"buy-forever": buyForeverEntry,
		"mid":         midEntry,
		"log":         logEntry,
		"bench-buyer": benchBuyerEntry,
	})
}

var nameSeq atomic.Int64

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

// buyForeverEntry: args kind, name. Buys until sold out or killed.
func buyForeverEntry(args []string) int {
	st, err := backend.Open(context.Background(), args[0], args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("running")
	for {
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
	c, err := ticketshm.Open(args[0], mode)
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
	c, err := ticketshm.Open(args[0], ticketshm.LockFree)
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
