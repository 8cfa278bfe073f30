//go:build linux

package semaphore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

// Every process that opens "example.lock" shares the Mutex. Do locks it,
// runs the function and unlocks; the function is told when the previous
// owner died holding the lock, and repairs what it protects first. The
// segment outlives the program, as a lock other processes use must: it is
// not removed here (shmctl rm removes it once no process has it open).
func ExampleMutex_Do() {
	m, err := semaphore.OpenOrCreateMutex(context.Background(), "example.lock")
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()

	err = m.Do(context.Background(), func(ownerDied bool) error {
		if ownerDied {
			// Repair what the lock protects here. Returning nil marks
			// it consistent; an error leaves the lock not recoverable.
			log.Print("repairing what a dead owner left")
		}
		fmt.Println("locked")
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	// Output: locked
}

// At most two holders across all processes; a holder that dies gives its
// permits back.
func ExampleSemaphore() {
	s, err := semaphore.OpenOrCreateSemaphore(context.Background(), "example.sem", 2)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Remove("example.sem")
	defer s.Close()

	if err := s.Acquire(context.Background(), 2); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.TryAcquire(1), s.Held(), s.Available())
	if err := s.Release(2); err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Available())
	// Output:
	// false 2 0
	// 2
}

// A counter of one's own in a segment, guarded by a BiasedMutex at offset
// 0: while this process is the only one locking, each Lock and Unlock is
// a couple of plain stores; a locker in another process takes the lock
// from it as from an Unlock.
func ExampleBiasedMutex() {
	const counterAt = semaphore.MutexSize // after the Mutex record
	seg, err := shm.OpenOrCreate(context.Background(), "example.biased", counterAt+8, "example.Biased/2", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Remove("example.biased")
	defer seg.Close()
	m, err := semaphore.NewBiasedMutex(context.Background(), seg, 0)
	if err != nil {
		log.Fatal(err)
	}
	n, err := seg.Int64(counterAt)
	if err != nil {
		log.Fatal(err)
	}
	for range 1000 {
		err := m.Lock()
		if errors.Is(err, semaphore.ErrOwnerDead) {
			err = m.Consistent() // a one-word counter needs no repair
		}
		if err != nil {
			log.Fatal(err)
		}
		n.Store(n.Load() + 1)
		if err := m.Unlock(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(n.Load())
	// Output: 1000
}

// ExampleBiasedMutex_EnterFast: a critical section that begins and ends
// in one function, with nothing in it that can fail, takes the bias
// without any bookkeeping first (as ticketshm's locked Buy does), and
// falls back on Lock and Unlock when the bias is not this process's.
func ExampleBiasedMutex_EnterFast() {
	const counterAt = semaphore.MutexSize // after the Mutex record
	seg, err := shm.OpenOrCreate(context.Background(), "example.enterfast", counterAt+8, "example.Biased/2", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Remove("example.enterfast")
	defer seg.Close()
	m, err := semaphore.NewBiasedMutex(context.Background(), seg, 0)
	if err != nil {
		log.Fatal(err)
	}
	defer m.Close()
	n, err := seg.Int64(counterAt)
	if err != nil {
		log.Fatal(err)
	}
	add := func() error {
		if m.EnterFast() {
			n.Store(n.Load() + 1)
			if !m.ExitFast() {
				return m.Unlock() // a locker of another process waits: wake it
			}
			return nil
		}
		err := m.Lock()
		if errors.Is(err, semaphore.ErrOwnerDead) {
			err = m.Consistent() // a one-word counter needs no repair
		}
		if err != nil {
			return err
		}
		n.Store(n.Load() + 1)
		return m.Unlock()
	}
	for range 1000 {
		if err := add(); err != nil {
			log.Fatal(err)
		}
	}
	fmt.Println(n.Load())
	// Output: 1000
}
