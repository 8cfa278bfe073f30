//go:build linux

package shm

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

// BenchmarkOpen: open, validate and map an existing segment, then close it.
func BenchmarkOpen(b *testing.B) {
	name := tempName(b)
	s, err := Create(name, 4096, testTag, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	for b.Loop() {
		s, err := Open(name, testTag)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkOpenOrCreate: the same through OpenOrCreate, which also takes
// and drops the init lock.
func BenchmarkOpenOrCreate(b *testing.B) {
	name := tempName(b)
	for b.Loop() {
		s, err := OpenOrCreate(context.Background(), name, 4096, testTag, nil)
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
}

// BenchmarkAdd: atomic adds on one shared word, from N goroutines of this
// process (goroutines=N) and from N processes (procs=N), reporting ops/s.
func BenchmarkAdd(b *testing.B) {
	for _, n := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("goroutines=%d", n), func(b *testing.B) {
			s, err := Create(tempName(b), 64, testTag, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			v, _ := s.Uint64(0)
			start := time.Now()
			var wg sync.WaitGroup
			for g := range n {
				wg.Go(func() {
					for range b.N/n + boolInt(g < b.N%n) {
						v.Add(1)
					}
				})
			}
			wg.Wait()
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "ops/s")
			if v.Load() != uint64(b.N) {
				b.Fatalf("counter %d, want %d", v.Load(), b.N)
			}
		})
	}
	for _, n := range []int{1, 2, 4, 8} {
		b.Run(fmt.Sprintf("procs=%d", n), func(b *testing.B) {
			name := tempName(b)
			s, err := Create(name, 64, testTag, nil)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			per := max(b.N/n, 1)
			b.ResetTimer()
			start := time.Now()
			var procs []*testproc.Proc
			for range n {
				procs = append(procs, testproc.Start(b, "add-counter", name, strconv.Itoa(per)))
			}
			for _, p := range procs {
				p.MustExit()
			}
			// Includes process start-up: compare procs=N runs with
			// each other, not with goroutines=N.
			b.ReportMetric(float64(per*n)/time.Since(start).Seconds(), "ops/s")
			v, _ := s.Uint64(0)
			if v.Load() != uint64(per*n) {
				b.Fatalf("counter %d, want %d", v.Load(), per*n)
			}
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
