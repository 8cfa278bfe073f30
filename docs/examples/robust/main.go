// Command robust is lesson 8: a process takes a robust Mutex and is
// SIGKILLed holding it; the next locker gets the lock with ErrOwnerDead,
// repairs, calls Consistent, and the mutex works again. Without
// Consistent it would be ErrNotRecoverable for everyone. Then the same
// with Mutex.Do, the form to write: a repair that succeeds, one that
// fails, and Reset.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

const name = "lesson8.lock"

// errParentGone: this child's parent died, so the name it opened may be
// the next run's; it leaves it alone.
var errParentGone = errors.New("the parent is gone: the name may be another run's now")

func init() {
	process.Register("owner", func([]string) error {
		m, err := semaphore.OpenMutex(context.Background(), name)
		if err != nil {
			return err
		}
		// Opened by name: a child of an earlier run, killed mid-run, may
		// get here after the next run made the name anew. Go on only
		// while the parent that started us lives.
		if !process.Parent().IsAlive() {
			return errParentGone
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
	// A lock left by an earlier run killed half way may be held by its
	// dead owner, or not recoverable: this run starts from a fresh one.
	if shm.Remove(name) == nil {
		fmt.Fprintln(os.Stderr, "removed /dev/shm/shmkit."+name+", left by an earlier run")
	}
	m, err := semaphore.CreateMutex(context.Background(), name)
	if err != nil {
		return err
	}
	defer shm.Remove(name)
	defer m.Close()
	fmt.Println("lock: /dev/shm/shmkit." + name + ", removed at the end")

	owner, err := killHolder(m)
	if err != nil {
		return err
	}
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

	// The same, written as it should be: Do locks, tells the function
	// whether to repair, marks it consistent when it returns nil, and
	// always unlocks.
	ctx := context.Background()
	repair := func(fail error) func(bool) error {
		return func(ownerDied bool) error {
			fmt.Print("main: Do: ownerDied ", ownerDied, "; ")
			if ownerDied {
				return fail // the repair's outcome
			}
			return nil
		}
	}
	if err := killAndJoin(m); err != nil {
		return err
	}
	fmt.Println("returned", m.Do(ctx, repair(nil)))
	fmt.Println("returned", m.Do(ctx, repair(nil)))

	// A repair that fails leaves the lock not recoverable, for every
	// process, until someone who knows the state is sound resets it.
	if err := killAndJoin(m); err != nil {
		return err
	}
	diskFull := errors.New("disk full")
	err = m.Do(ctx, repair(diskFull))
	fmt.Println("returned the repair's error:", errors.Is(err, diskFull), "| not recoverable:", errors.Is(err, semaphore.ErrNotRecoverable))
	err = m.Do(ctx, repair(nil))
	fmt.Println("main: the next Do returns ErrNotRecoverable:", errors.Is(err, semaphore.ErrNotRecoverable), "| Reset:", m.Reset())
	fmt.Println("returned", m.Do(ctx, repair(nil)))
	return nil
}

// killHolder starts an owner, waits until it says it holds m, and
// SIGKILLs it. Its output comes through us (lineSignal), so its line is
// printed before ours.
func killHolder(m *semaphore.Mutex) (*process.Process, error) {
	said := make(chan struct{}, 1)
	owner := &process.Process{Entry: "owner", Daemon: true, Stdout: lineSignal{os.Stdout, said}}
	if err := owner.Start(); err != nil {
		return nil, err
	}
	select {
	case <-said:
	case <-owner.Done():
		return nil, fmt.Errorf("the owner ended before it took the lock: %w", owner.Join(context.Background()))
	}
	fmt.Println("main: the lock is held; killing its owner")
	owner.Kill()
	return owner, nil
}

// lineSignal writes to w, then tells said that something was written.
type lineSignal struct {
	w    io.Writer
	said chan<- struct{}
}

func (l lineSignal) Write(p []byte) (int, error) {
	n, err := l.w.Write(p)
	select {
	case l.said <- struct{}{}:
	default:
	}
	return n, err
}

// killAndJoin is killHolder, then the owner's end, which is known.
func killAndJoin(m *semaphore.Mutex) error {
	owner, err := killHolder(m)
	if err != nil {
		return err
	}
	owner.Join(context.Background()) // killed by signal 9
	return nil
}
