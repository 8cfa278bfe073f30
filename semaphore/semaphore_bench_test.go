//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// The benchmark segment: a Mutex record, a glibc robust mutex, a counter,
// a start flag, a done count and each process's share of the work.
const (
	benchTag     = "semaphore.bench/1"
	offPthread   = MutexSize
	offBenchCtr  = offPthread + 64
	offStart     = offBenchCtr + 8
	offDone      = offBenchCtr + 16
	offShares    = offBenchCtr + 64
	benchMaxProc = 16
	benchSize    = offShares + 8*benchMaxProc
)

var _ [offPthread - MutexSize]struct{}

func openBench(name string) (*shm.Segment, error) {
	return shm.OpenOrCreate(context.Background(), name, benchSize, benchTag, func(s *shm.Segment) error {
		return initPthread(s.Data()[offPthread : offPthread+64])
	})
}

// contendEntry: args name, backend, limit, index. Waits for the start
// flag, increments the shared counter until it reaches limit through the
// backend, records its share and counts itself done.
func contendEntry(args []string) int {
	seg, err := openBench(args[0])
	if err != nil {
		return fail(err)
	}
	limit, _ := strconv.ParseInt(args[2], 10, 64)
	idx, _ := strconv.Atoi(args[3])
	ctr := view(seg, offBenchCtr)
	var m interface {
		Lock() error
		Unlock() error
	}
	switch args[1] {
	case "shm-mutex":
		m, err = NewMutex(context.Background(), seg, 0)
	case "shm-biased":
		m, err = NewBiasedMutex(context.Background(), seg, 0)
	}
	if err != nil {
		return fail(err)
	}
	fmt.Println("ready")
	for view(seg, offStart).Load() == 0 {
		time.Sleep(20 * time.Microsecond)
	}
	var mine int64
	switch args[1] {
	case "shm-mutex", "shm-biased":
		for {
			if err := m.Lock(); err != nil {
				return fail(err)
			}
			if ctr.Load() >= limit {
				m.Unlock()
				break
			}
			ctr.Store(ctr.Load() + 1)
			mine++
			if err := m.Unlock(); err != nil {
				return fail(err)
			}
		}
	case "go-cas":
		for v := ctr.Load(); v < limit; v = ctr.Load() {
			if ctr.CompareAndSwap(v, v+1) {
				mine++
			}
		}
	case "c-robust":
		mine, err = pthreadContend(seg.Data()[offPthread:offPthread+64], seg.Data()[offBenchCtr:], limit)
	case "c-cas":
		mine, err = casContend(seg.Data()[offBenchCtr:], limit)
	default:
		err = fmt.Errorf("unknown backend %q", args[1])
	}
	if err != nil {
		return fail(err)
	}
	view(seg, offShares+8*idx).Store(mine)
	view(seg, offDone).Add(1)
	return 0
}

// BenchmarkMutexUncontended: one Lock+Unlock per op by one goroutine,
// the Mutex and the BiasedMutex against glibc's robust process-shared mutex (the loop in C) and
// sync.Mutex.
func BenchmarkMutexUncontended(b *testing.B) {
	seg, err := openBench(tempName(b))
	if err != nil {
		b.Fatal(err)
	}
	defer seg.Close()
	b.Run("backend=shm-mutex", func(b *testing.B) {
		m, err := NewMutex(context.Background(), seg, 0)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("backend=shm-biased", func(b *testing.B) {
		seg, err := openBench(tempName(b)) // a record with no Mutex user in this process
		if err != nil {
			b.Fatal(err)
		}
		defer seg.Close()
		m, err := NewBiasedMutex(context.Background(), seg, 0)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			m.Lock()
			m.Unlock()
		}
	})
	b.Run("backend=c-robust", func(b *testing.B) {
		if err := pthreadLockUnlock(seg.Data()[offPthread:offPthread+64], 1); err != nil {
			b.Skip(err)
		}
		b.ResetTimer()
		if err := pthreadLockUnlock(seg.Data()[offPthread:offPthread+64], b.N); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("backend=sync.Mutex", func(b *testing.B) {
		var mu sync.Mutex
		for b.Loop() {
			mu.Lock()
			//lint:ignore SA2001 an empty critical section is the point
			mu.Unlock()
		}
	})
}

// BenchmarkMutexContended: N processes increment one shared counter under
// the lock until it reaches b.N; reports ops/s and the smallest and
// largest share of the work a process got, relative to a fair share (1.0).
// go-cas and c-cas are the same counter with no lock: one CAS per op.
func BenchmarkMutexContended(b *testing.B) {
	for _, backend := range []string{"shm-mutex", "shm-biased", "c-robust", "go-cas", "c-cas"} {
		for _, procs := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("backend=%s/procs=%d", backend, procs), func(b *testing.B) {
				benchContended(b, backend, procs)
			})
		}
	}
}

func benchContended(b *testing.B, backend string, procs int) {
	if !haveCgo && backend[0] == 'c' {
		b.Skip("built without cgo")
	}
	name := tempName(b)
	seg, err := openBench(name)
	if err != nil {
		b.Fatal(err)
	}
	defer seg.Close()
	var ps []*testproc.Proc
	for i := range procs {
		p := testproc.Start(b, "contend", name, backend, strconv.Itoa(b.N), strconv.Itoa(i))
		p.Expect("ready")
		ps = append(ps, p)
	}
	done := view(seg, offDone)
	b.ResetTimer()
	start := time.Now()
	view(seg, offStart).Store(1)
	for done.Load() < int64(procs) {
		time.Sleep(50 * time.Microsecond)
	}
	elapsed := time.Since(start)
	b.StopTimer()
	for _, p := range ps {
		p.MustExit()
	}
	if got := view(seg, offBenchCtr).Load(); got != int64(b.N) {
		b.Fatalf("counter %d, want %d", got, b.N)
	}
	fair := float64(b.N) / float64(procs)
	lo, hi := 1e9, 0.0
	for i := range procs {
		share := float64(view(seg, offShares+8*i).Load()) / fair
		lo, hi = min(lo, share), max(hi, share)
	}
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "ops/s")
	b.ReportMetric(lo, "min_share")
	b.ReportMetric(hi, "max_share")
}

// benchHoldEntry: args name, backend. Lock the backend's mutex in the
// benchmark segment, say "locked", wait to be killed.
func benchHoldEntry(args []string) int {
	seg, err := openBench(args[0])
	if err != nil {
		return fail(err)
	}
	switch args[1] {
	case "shm-mutex":
		m, err := NewMutex(context.Background(), seg, 0)
		if err != nil {
			return fail(err)
		}
		if err := m.Lock(); err != nil && !errors.Is(err, ErrOwnerDead) {
			return fail(err)
		}
	case "c-robust":
		if err := pthreadLock(seg.Data()[offPthread : offPthread+64]); err != nil {
			return fail(err)
		}
	}
	fmt.Println("locked")
	time.Sleep(time.Hour)
	return 0
}

// BenchmarkTakeover: a child holds the mutex, the benchmark's waiter is
// blocked in Lock, the child is SIGKILLed; the time from the kill to the
// waiter's ErrOwnerDead (EOWNERDEAD for glibc). Reports the median and
// 99th percentile in µs; run it with -benchtime 200x or so.
func BenchmarkTakeover(b *testing.B) {
	for _, backend := range []string{"shm-mutex", "c-robust"} {
		b.Run("backend="+backend, func(b *testing.B) {
			if !haveCgo && backend == "c-robust" {
				b.Skip("built without cgo")
			}
			name := tempName(b)
			seg, err := openBench(name)
			if err != nil {
				b.Fatal(err)
			}
			defer seg.Close()
			m, err := NewMutex(context.Background(), seg, 0)
			if err != nil {
				b.Fatal(err)
			}
			lock := func() error {
				err := m.Lock()
				if errors.Is(err, ErrOwnerDead) {
					if err := m.Consistent(); err != nil {
						return err
					}
					return m.Unlock()
				}
				m.Unlock()
				return fmt.Errorf("lock returned %v, want ErrOwnerDead", err)
			}
			if backend == "c-robust" {
				lock = func() error { return pthreadTakeover(seg.Data()[offPthread : offPthread+64]) }
			}
			lat := make([]time.Duration, 0, b.N)
			for range b.N {
				b.StopTimer()
				p := testproc.Start(b, "bench-hold", name, backend)
				p.Expect("locked")
				done := make(chan error)
				var took time.Time
				go func() {
					err := lock()
					took = time.Now()
					done <- err
				}()
				time.Sleep(2 * time.Millisecond) // let the waiter block
				b.StartTimer()
				killed := time.Now()
				p.Kill()
				if err := <-done; err != nil {
					b.Fatal(err)
				}
				lat = append(lat, took.Sub(killed))
				p.Wait()
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50_us")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99_us")
		})
	}
}
