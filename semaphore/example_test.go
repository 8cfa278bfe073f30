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

// Every process that opens "example.lock" shares the Mutex; the one that
// locks it after an owner died repairs the state first.
func ExampleMutex() {
	m, err := semaphore.OpenMutex(context.Background(), "example.lock")
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Remove("example.lock")
	defer m.Segment().Close()

	err = m.Lock()
	if errors.Is(err, semaphore.ErrOwnerDead) {
		// repair what the lock protects, then:
		err = m.Consistent()
	}
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("locked")
	if err := m.Unlock(); err != nil {
		log.Fatal(err)
	}
	// Output: locked
}

// At most two holders across all processes; a holder that dies gives its
// permits back.
func ExampleSemaphore() {
	s, err := semaphore.OpenSemaphore(context.Background(), "example.sem", 2)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Remove("example.sem")
	defer s.Segment().Close()

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
