package ctxlock

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// TestExclusion has goroutines, some with contexts that expire while
// they wait, increment a plain counter under the lock: the race detector
// and the count catch a lock that admits two.
func TestExclusion(t *testing.T) {
	var m Mutex
	var n, failed int
	var fmu sync.Mutex
	var wg sync.WaitGroup
	const goroutines, rounds = 16, 2000
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range rounds {
				ctx := context.Background()
				var cancel context.CancelFunc = func() {}
				if (g+i)%3 == 0 {
					ctx, cancel = context.WithTimeout(ctx, time.Duration(i%5)*time.Microsecond)
				}
				if err := m.Lock(ctx); err != nil {
					cancel()
					if !errors.Is(err, context.DeadlineExceeded) {
						t.Errorf("Lock: %v", err)
					}
					fmu.Lock()
					failed++
					fmu.Unlock()
					continue
				}
				n++
				m.Unlock()
				cancel()
			}
		}()
	}
	wg.Wait()
	if n+failed != goroutines*rounds {
		t.Fatalf("%d locked + %d gave up, want %d in all", n, failed, goroutines*rounds)
	}
	if !m.TryLock() {
		t.Fatal("lock not free after every goroutine unlocked")
	}
	m.Unlock()
}

// TestWaiterWoken: a waiter with no deadline is woken by Unlock, however
// many waiters gave up before it (their tokens must not be lost).
func TestWaiterWoken(t *testing.T) {
	var m Mutex
	if err := m.Lock(context.Background()); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := m.Lock(ctx); !errors.Is(err, context.Canceled) {
			t.Fatalf("Lock with a cancelled ctx on a held lock: %v", err)
		}
	}
	got := make(chan error)
	go func() { got <- m.Lock(context.Background()) }()
	for m.waiters.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	m.Unlock()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	m.Unlock()
}

func TestUnlockUnlocked(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("Unlock of an unlocked Mutex did not panic")
		}
	}()
	var m Mutex
	m.Unlock()
}

var shared int

func BenchmarkUncontended(b *testing.B) {
	var m Mutex
	ctx := context.Background()
	for range b.N {
		_ = m.Lock(ctx)
		shared++
		m.Unlock()
	}
}

func BenchmarkSyncMutex(b *testing.B) {
	var m sync.Mutex
	for range b.N {
		m.Lock()
		shared++
		m.Unlock()
	}
}

func BenchmarkContended(b *testing.B) {
	var m Mutex
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			_ = m.Lock(ctx)
			m.Unlock()
		}
	})
}
