// Command robust is lesson 8: a process takes a robust Mutex and is
// SIGKILLed holding it; the next locker gets the lock with ErrOwnerDead,
// repairs, calls Consistent, and the mutex works again. Without
// Consistent it would be ErrNotRecoverable for everyone.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

const name = "lesson8.lock"

func init() {
	process.Register("owner", func([]string) error {
		m, err := semaphore.OpenMutex(context.Background(), name)
		if err != nil {
			return err
		}
		if err := m.Lock(); err != nil {
			return err
		}
		fmt.Println("owner: locked; now half-way through an update...")
		os.Stdout.Sync()
		for {
			time.Sleep(time.Hour) // ...when SIGKILL arrives
		}
	})
}

func main() { process.Main(run) }

func run() error {
	m, err := semaphore.OpenMutex(context.Background(), name)
	if err != nil {
		return err
	}
	defer shm.Remove(name)
	defer m.Close()

	owner := &process.Process{Entry: "owner", Daemon: true}
	if err := owner.Start(); err != nil {
		return err
	}
	for { // wait until the owner holds the lock
		if ok, _ := m.TryLock(); !ok {
			break
		}
		m.Unlock()
		time.Sleep(time.Millisecond)
	}
	fmt.Println("main: the lock is held; killing its owner")
	owner.Kill()

	err = m.Lock() // returns as soon as the kernel marks the owner dead
	fmt.Println("main: Lock returned ErrOwnerDead:", errors.Is(err, semaphore.ErrOwnerDead))
	// ... repair what the lock protects, then:
	if err := m.Consistent(); err != nil {
		return err
	}
	if err := m.Unlock(); err != nil {
		return err
	}
	fmt.Println("main: Consistent, Unlock; Lock again:", m.Lock(), "| Unlock:", m.Unlock())
	err = owner.Join(context.Background())
	fmt.Println("main: the owner's end:", err)
	return nil
}
