//go:build linux

package ticketshm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

// TestSharedCounter (issue 17): two processes, each with 1000 goroutines
// that open the Counter for themselves (the same *Counter, one process
// slot) and buy until it is sold out, some through a Buyer for runs of
// ten. Every ticket is sold exactly once, to one of two slots, and the
// audit is exact. Before, the lock-free Counter panicked (index out of
// range [63]) and the locked one returned ErrNotOwner, and 150 goroutines
// a process took 150 slots.
func TestSharedCounter(t *testing.T) {
	const procs, goroutines, total = 2, 1000, 60000
	for _, mode := range []ticketshm.Mode{ticketshm.Locked, ticketshm.LockFree} {
		t.Run(mode.String(), func(t *testing.T) {
			name := storeName(t, "shm-mutex")
			c, err := ticketshm.OpenOrCreate(context.Background(), name, total, mode)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			barrier := t.TempDir() + "/go"
			var ps []*testproc.Proc
			for range procs {
				p := testproc.Start(t, "goroutines", name, strconv.Itoa(goroutines), barrier)
				p.Expect("ready")
				ps = append(ps, p)
			}
			if err := os.WriteFile(barrier, nil, 0o644); err != nil {
				t.Fatal(err)
			}
			seen := make([]int, total+1)
			for _, p := range ps {
				p.MustExit()
				out := p.Output()
				for _, f := range strings.Fields(out[strings.LastIndex(out, "sold")+len("sold"):]) {
					n, err := strconv.Atoi(f)
					if err != nil || n < 1 || n > total {
						t.Fatalf("bad ticket %q", f)
					}
					seen[n]++
				}
			}
			for n := 1; n <= total; n++ {
				if seen[n] != 1 {
					t.Fatalf("ticket %d sold %d times", n, seen[n])
				}
			}
			a, err := c.Audit(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			slots := 0
			for _, n := range a.PerSlot {
				if n > 0 {
					slots++
				}
			}
			if a.Sold != total || a.Lost != 0 || a.Oversold != 0 || a.DoubleSold != 0 || a.Remaining != 0 || slots != procs {
				t.Fatalf("audit: %+v with %d slots selling, want all %d sold by %d slots", a, slots, total, procs)
			}
		})
	}
}

// goroutinesEntry: args name, goroutines, barrier. Each goroutine opens
// the Counter, waits for the barrier and buys until sold out; every third
// goroutine buys in runs of ten through a Buyer. Prints "sold" and every
// ticket.
func goroutinesEntry(args []string) int {
	name, barrier := args[0], args[2]
	n, _ := strconv.Atoi(args[1])
	ctx := context.Background()
	var (
		mu   sync.Mutex
		sold []int64
		errs []error
		wg   sync.WaitGroup
	)
	ready := make(chan struct{})
	start := make(chan struct{})
	for g := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c, err := ticketshm.Open(context.Background(), name)
			ready <- struct{}{}
			if err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
				return
			}
			defer c.Close()
			<-start
			var mine []int64
			buy := func(st ticketshm.Store) error {
				t, err := st.Buy(ctx)
				if err == nil {
					mine = append(mine, t)
				}
				return err
			}
			for err := error(nil); err == nil; {
				if g%3 == 0 {
					var b *ticketshm.Buyer
					if b, err = c.Buyer(ctx); err != nil {
						break
					}
					for i := 0; i < 10 && err == nil; i++ {
						err = buy(b)
					}
					b.Close()
				} else {
					err = buy(c)
				}
				if err != nil && !errors.Is(err, ticketshm.ErrSoldOut) {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
			mu.Lock()
			sold = append(sold, mine...)
			mu.Unlock()
		}()
	}
	for range n {
		<-ready
	}
	fmt.Println("ready")
	waitForFile(barrier)
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		fmt.Fprintln(os.Stderr, errs[0])
		return 1
	}
	sort.Slice(sold, func(i, j int) bool { return sold[i] < sold[j] })
	var b strings.Builder
	b.WriteString("sold")
	for _, t := range sold {
		fmt.Fprintf(&b, " %d", t)
	}
	fmt.Println(b.String())
	return 0
}

// TestCloseRacesCalls (issue 16, item 7): goroutines buy, read and audit
// through a Counter while another goroutine closes it. Every call either
// works or returns ErrClosed (the Close waits for calls in flight, never
// unmaps under one), and every ticket a Buy returned is in the ledger.
func TestCloseRacesCalls(t *testing.T) {
	for _, mode := range []ticketshm.Mode{ticketshm.Locked, ticketshm.LockFree} {
		t.Run(mode.String(), func(t *testing.T) {
			ctx := context.Background()
			name := storeName(t, "shm-mutex")
			for round := range 20 {
				c, err := ticketshm.OpenOrCreate(ctx, name, 1_000_000, mode)
				if err != nil {
					t.Fatal(err)
				}
				var wg sync.WaitGroup
				var mu sync.Mutex
				bought := 0
				for g := range 4 {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := 0; ; i++ {
							var err error
							switch (g + i) % 7 {
							case 0:
								_, err = c.Remaining(ctx)
							case 1:
								if i%50 == 1 {
									_, err = c.Audit(context.Background())
								}
							default:
								if _, err = c.Buy(ctx); err == nil {
									mu.Lock()
									bought++
									mu.Unlock()
								}
							}
							if errors.Is(err, ticketshm.ErrClosed) {
								return
							}
							if err != nil {
								t.Errorf("round %d: %v", round, err)
								return
							}
						}
					}()
				}
				time.Sleep(time.Duration(round%5) * time.Millisecond)
				if err := c.Close(); err != nil {
					t.Fatal(err)
				}
				wg.Wait()
				c, err = ticketshm.Open(context.Background(), name)
				if err != nil {
					t.Fatal(err)
				}
				a, err := c.Audit(context.Background())
				c.Close()
				if err != nil {
					t.Fatal(err)
				}
				if a.Lost != 0 || a.Oversold != 0 || a.Sold != a.Total-a.Remaining {
					t.Fatalf("round %d: %+v", round, a)
				}
				if err := shm.Remove(name); err != nil {
					t.Fatal(err)
				}
				if int64(bought) != a.Sold {
					t.Fatalf("round %d: Buy returned %d tickets, the ledger has %d", round, bought, a.Sold)
				}
			}
		})
	}
}

// TestBuyerRules: a Buyer holds the Counter for its goroutine: another
// goroutine's Buy waits and gives up when its ctx ends; the Counter's
// last Close waits for the Buyer's Close; a closed Buyer returns
// ErrClosed.
func TestBuyerRules(t *testing.T) {
	ctx := context.Background()
	name := storeName(t, "shm-mutex")
	c, err := ticketshm.OpenOrCreate(ctx, name, 100, ticketshm.LockFree)
	if err != nil {
		t.Fatal(err)
	}
	b, err := c.Buyer(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := b.Buy(ctx); n != 1 || err != nil {
		t.Fatalf("Buyer.Buy: %d, %v", n, err)
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if _, err := c.Buy(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Buy while a Buyer holds the Counter, ctx ending: %v, want DeadlineExceeded", err)
	}
	closed := make(chan error)
	go func() { closed <- c.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a Buyer held the Counter", err)
	case <-time.After(50 * time.Millisecond):
	}
	if n, err := b.Buy(ctx); n != 2 || err != nil {
		t.Fatalf("Buyer.Buy while Close waits: %d, %v", n, err)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{"Close": b.Close(), "Buy": second(b.Buy(ctx)), "Remaining": second(b.Remaining(ctx))} {
		if !errors.Is(err, ticketshm.ErrClosed) {
			t.Errorf("%s on a closed Buyer: %v, want ErrClosed", what, err)
		}
	}
	if _, err := c.Buyer(ctx); !errors.Is(err, ticketshm.ErrClosed) {
		t.Errorf("Buyer of a closed Counter: %v, want ErrClosed", err)
	}
}

func second(_ int64, err error) error { return err }
