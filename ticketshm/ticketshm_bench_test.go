//go:build linux

package ticketshm_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/backend"
	"github.com/shmkit/shmkit/ticketshm"
	"github.com/shmkit/shmkit/ticketshm/jsonfile"
)

// benchBuyerEntry: args kind, name, barrier. Buys until sold out and
// prints how many it bought.
func benchBuyerEntry(args []string) int {
	st, _, err := backend.OpenBuyer(context.Background(), args[0], args[1], true)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("ready")
	waitForFile(args[2])
	ctx := context.Background()
	n := 0
	for {
		_, err := st.Buy(ctx)
		if errors.Is(err, ticketshm.ErrSoldOut) {
			break
		}
		if err != nil && !errors.Is(err, jsonfile.ErrTorn) {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		n++
	}
	fmt.Println("bought", n)
	return 0
}

// BenchmarkBuy: N buyer processes sell b.N tickets through each backend;
// ops/s counts tickets sold per second, from the start barrier until the
// last buyer has exited. The unlocked JSON store oversells: its ops/s
// counts its (wrong) sales.
func BenchmarkBuy(b *testing.B) {
	for _, kind := range backend.Names {
		for _, procs := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("backend=%s/procs=%d", kind, procs), func(b *testing.B) {
				_, ps, release := startBuyers(b, "bench-buyer", kind, int64(b.N), procs)
				b.ResetTimer()
				start := time.Now()
				release()
				sold := 0
				for _, p := range ps {
					p.MustExit()
					f := strings.Fields(p.Output()[strings.LastIndex(p.Output(), "bought"):])
					n, _ := strconv.Atoi(f[1])
					sold += n
				}
				b.ReportMetric(float64(sold)/time.Since(start).Seconds(), "ops/s")
			})
		}
	}
}

// BenchmarkBuyOneGoroutine is the cost of one Buy with no contention and
// no process boundary: the floor under BenchmarkBuy's per-ticket figures.
// how=counter buys through the shared *Counter (its in-process lock taken
// per buy), how=buyer through a Buyer (taken once).
func BenchmarkBuyOneGoroutine(b *testing.B) {
	for _, mode := range []ticketshm.Mode{ticketshm.Locked, ticketshm.LockFree} {
		for _, how := range []string{"counter", "buyer"} {
			b.Run("mode="+mode.String()+"/how="+how, func(b *testing.B) {
				c, err := ticketshm.OpenOrCreate(context.Background(), storeName(b, backend.ShmMutex), int64(b.N)+1, mode)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				ctx := context.Background()
				var st ticketshm.Store = c
				if how == "buyer" {
					if st, err = c.Buyer(ctx); err != nil {
						b.Fatal(err)
					}
					defer st.Close()
				}
				b.ResetTimer()
				for range b.N {
					if _, err := st.Buy(ctx); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
			})
		}
	}
}

// BenchmarkBuySharedCounter: 8 goroutines of one process buy through one
// *Counter, beside the least a design built on sync must do: 8 goroutines
// decrementing an int64 and writing a ledger byte under a sync.Mutex, in
// this process's memory.
func BenchmarkBuySharedCounter(b *testing.B) {
	const goroutines = 8
	for _, how := range []string{"locked", "lock-free", "sync.Mutex"} {
		b.Run("how="+how, func(b *testing.B) {
			ctx := context.Background()
			total := int64(b.N) + 1
			var buy func() error
			if how == "sync.Mutex" {
				var mu sync.Mutex
				r, ledger := total, make([]byte, total)
				buy = func() error {
					mu.Lock()
					defer mu.Unlock()
					if r == 0 {
						return ticketshm.ErrSoldOut
					}
					ledger[total-r] = 1
					r--
					return nil
				}
			} else {
				mode := ticketshm.Locked
				if how == "lock-free" {
					mode = ticketshm.LockFree
				}
				c, err := ticketshm.OpenOrCreate(ctx, storeName(b, backend.ShmMutex), total, mode)
				if err != nil {
					b.Fatal(err)
				}
				defer c.Close()
				buy = func() error { _, err := c.Buy(ctx); return err }
			}
			b.SetParallelism((goroutines + runtime.GOMAXPROCS(0) - 1) / runtime.GOMAXPROCS(0))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := buy(); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
		})
	}
}
