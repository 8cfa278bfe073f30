// Command biased is lesson 8's second program: a BiasedMutex keeps the lock
// with the process that uses it; another process takes it back (revokes
// the bias) when the owner is between critical sections, waits while it is
// inside one, and after the owner's death gets ErrOwnerDead only if it died
// inside.
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

const (
	name = "lesson8.biased"
	tag  = "lesson8.Biased/2"
	// The segment: the Mutex record, then a word the owner raises when
	// it is where main wants it.
	offReady = semaphore.MutexSize
	size     = offReady + 64
)

func open() (*shm.Segment, error) {
	return shm.Open(name, tag)
}

// errParentGone: this child's parent died, so the name it opened may be
// the next run's; it leaves it alone.
var errParentGone = errors.New("the parent is gone: the name may be another run's now")

func init() {
	// owner: lock and unlock a million times through a BiasedMutex, then
	// stay between critical sections ("between") or inside one ("inside").
	process.Register("owner", func(args []string) error {
		seg, err := open()
		if err != nil {
			return err
		}
		// Opened by name: a child of an earlier run, killed mid-run, may
		// get here after the next run made the name anew. Go on only
		// while the parent that started us lives.
		if !process.Parent().IsAlive() {
			return errParentGone
		}
		m, err := semaphore.NewBiasedMutex(context.Background(), seg, 0)
		if err != nil {
			return err
		}
		const n = 1_000_000
		for range n {
			if err := m.Lock(); err != nil && !errors.Is(err, semaphore.ErrOwnerDead) {
				return err
			} else if err != nil {
				m.Consistent()
			}
			if err := m.Unlock(); err != nil {
				return err
			}
		}
		fmt.Printf("owner: %d lock+unlock pairs, biased to this process: %v\n", n, m.Biased())
		if args[0] == "inside" {
			if err := m.Lock(); err != nil {
				return err
			}
		}
		os.Stdout.Sync()
		ready, err := seg.Int64(offReady)
		if err != nil {
			return err
		}
		ready.Store(1)
		for {
			time.Sleep(time.Hour) // until killed
		}
	})
}

func main() { process.Main(run) }

func run() error {
	// One left by an earlier run killed half way: start from a fresh one.
	if shm.Remove(name) == nil {
		fmt.Fprintln(os.Stderr, "removed /dev/shm/shmkit."+name+", left by an earlier run")
	}
	seg, err := shm.Create(name, size, tag, nil)
	if err != nil {
		return err
	}
	defer shm.Remove(name)
	defer seg.Close()
	fmt.Println("lock: /dev/shm/shmkit." + name + ", removed at the end")
	m, err := semaphore.NewMutex(context.Background(), seg, 0)
	if err != nil {
		return err
	}
	ready, err := seg.Int64(offReady)
	if err != nil {
		return err
	}
	start := func(where string) (*process.Process, error) {
		ready.Store(0)
		p := &process.Process{Entry: "owner", Args: []string{where}, Daemon: true}
		if err := p.Start(); err != nil {
			return nil, err
		}
		for ready.Load() == 0 {
			time.Sleep(time.Millisecond)
		}
		return p, nil
	}

	// 1. The owner is alive, between critical sections: Lock takes the
	// lock from it at once.
	owner, err := start("between")
	if err != nil {
		return err
	}
	fmt.Println("main: owner idle; Lock revokes its bias:", m.Lock(), "| Unlock:", m.Unlock())
	owner.Kill()
	owner.Join(context.Background())

	// 2. The owner is inside a critical section: Lock waits for it to
	// leave (here, until the deadline); killed there, it leaves
	// ErrOwnerDead.
	if owner, err = start("inside"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	fmt.Println("main: owner inside; LockContext waits:", m.LockContext(ctx))
	owner.Kill()
	owner.Join(context.Background())
	err = m.Lock()
	fmt.Println("main: owner killed inside; Lock returned ErrOwnerDead:", errors.Is(err, semaphore.ErrOwnerDead))
	if err := m.Consistent(); err != nil { // ... after repairing what it guards
		return err
	}
	if err := m.Unlock(); err != nil {
		return err
	}

	// 3. Killed between critical sections, the owner leaves a lock that
	// is simply free: nothing was half done.
	if owner, err = start("between"); err != nil {
		return err
	}
	owner.Kill()
	owner.Join(context.Background())
	fmt.Println("main: owner killed between; Lock:", m.Lock(), "| Unlock:", m.Unlock())
	return nil
}
