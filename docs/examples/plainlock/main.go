// Command plainlock is lesson 8's first program: the course notes' Lock
// (互斥锁) — a plain lock shared by processes, the notes' f(l, i) under it
// — then the deadlock the notes warn of (a process terminated while it
// holds the lock), then a robust semaphore.Mutex, which cures it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
)

const (
	name = "lesson8.plain" // /dev/shm/shmkit.lesson8.plain
	tag  = "lesson8.PlainLock/2"
	// The segment: the plain lock's word at 0, a robust Mutex at offMutex.
	offMutex = semaphore.RecordAlign
	size     = offMutex + semaphore.MutexSize
)

// plainLock is the simplest lock processes can share: one 32-bit word in
// shared memory, 0 when free and 1 when held. Lock swaps 0 for 1 in one
// atomic compare-and-swap, so two processes can never both see 0 and both
// take it; while the word is 1 it sleeps a little and tries again.
// Unlock stores 0. (Python's multiprocessing.Lock is a POSIX semaphore,
// which sleeps in the kernel instead of polling, but holds the same one
// fact: taken or not, and nothing about who took it.)
type plainLock struct{ word *atomic.Uint32 }

func (l plainLock) Lock(ctx context.Context) error {
	for !l.word.CompareAndSwap(0, 1) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
	return nil
}

func (l plainLock) Unlock() { l.word.Store(0) }

// errParentGone: this child's parent died, so the name it opened may be
// the next run's; it leaves it alone.
var errParentGone = errors.New("the parent is gone: the name may be another run's now")

// openLock opens the segment by its name and the lock in it: the Go form
// of the notes' args=(lock,). Python pickles the lock's handle for the
// child; a Go child is a new program and finds the lock by name.
func openLock() (*shm.Segment, plainLock, error) {
	seg, err := shm.Open(name, tag)
	if err != nil {
		return nil, plainLock{}, err
	}
	// Opened by name: a child of an earlier run, killed mid-run, may get
	// here after the next run made the name anew. Go on only while the
	// parent that started us lives.
	if !process.Parent().IsAlive() {
		seg.Close()
		return nil, plainLock{}, errParentGone
	}
	word, err := seg.Uint32(0)
	return seg, plainLock{word}, err
}

func init() {
	// f I: the notes' f(l, i): print under the lock.
	process.Register("f", func(args []string) error {
		seg, l, err := openLock()
		if err != nil {
			return err
		}
		defer seg.Close()
		if err := l.Lock(context.Background()); err != nil {
			return err
		}
		defer l.Unlock() // the notes' try/finally: l.release()
		fmt.Println("hello world", args[0])
		return nil
	})
	// holder KIND: takes the plain lock or the robust Mutex, says so, and
	// holds it until terminated. (A daemon: it goes with main, should main
	// be killed first.)
	process.Register("holder", func(args []string) error {
		seg, l, err := openLock()
		if err != nil {
			return err
		}
		defer seg.Close()
		if args[0] == "plain" {
			if err := l.Lock(context.Background()); err != nil {
				return err
			}
		} else {
			m, err := semaphore.NewMutex(context.Background(), seg, offMutex)
			if err != nil {
				return err
			}
			if err := m.Lock(); err != nil {
				return err
			}
		}
		fmt.Printf("holder: took the %s lock; now half-way through an update...\n", args[0])
		os.Stdout.Sync()
		for {
			time.Sleep(time.Hour) // until terminated
		}
	})
}

func main() { process.Main(run) }

func run() error {
	// A lock left by an earlier run killed half way may still say held.
	if shm.Remove(name) == nil {
		fmt.Fprintln(os.Stderr, "removed /dev/shm/shmkit."+name+", left by an earlier run")
	}
	seg, err := shm.Create(name, size, tag, nil) // zeros: both locks free
	if err != nil {
		return err
	}
	defer shm.Remove(name)
	defer seg.Close()
	fmt.Println("locks: /dev/shm/shmkit." + name + ", removed at the end")
	word, err := seg.Uint32(0)
	if err != nil {
		return err
	}
	l := plainLock{word}

	// 1. The notes: for num in range(10): Process(target=f, args=(lock, num)).start()
	var ps []*process.Process
	for i := range 10 {
		p := &process.Process{Entry: "f", Args: []string{strconv.Itoa(i)}}
		if err := p.Start(); err != nil {
			return err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.Join(context.Background()); err != nil {
			return err
		}
	}

	// 2. The deadlock: terminate a process while it holds the lock.
	if err := terminateHolder("plain"); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	err = l.Lock(ctx)
	fmt.Println("main: Lock, waiting up to 1 s:", err, "| the word still says held:", word.Load() == 1)
	fmt.Println("main: without the deadline every process would wait for it forever")

	// 3. The cure: a robust Mutex is freed by the kernel when its
	// holder dies, and the next holder is told to repair.
	m, err := semaphore.NewMutex(context.Background(), seg, offMutex)
	if err != nil {
		return err
	}
	if err := terminateHolder("robust"); err != nil {
		return err
	}
	err = m.Do(context.Background(), func(ownerDied bool) error {
		fmt.Println("main: robust Mutex: Do ran; the holder died holding it:", ownerDied)
		return nil // repaired: the lock is consistent again
	})
	fmt.Println("main: robust Mutex: Do returned", err)
	return nil
}

// terminateHolder starts a holder of the lock, waits until it holds it,
// and terminates it (SIGTERM), as the notes' p.terminate().
func terminateHolder(kind string) error {
	ready := make(chan struct{})
	h := &process.Process{Entry: "holder", Args: []string{kind}, Daemon: true, Stdout: lineWriter{ready}}
	if err := h.Start(); err != nil {
		return err
	}
	<-ready
	h.Terminate()
	h.Join(context.Background())
	code, _ := h.ExitCode()
	fmt.Printf("main: terminated the holder of the %s lock, exit code %d\n", kind, code)
	return nil
}

// lineWriter passes the holder's line on and says it came.
type lineWriter struct{ ready chan struct{} }

func (w lineWriter) Write(b []byte) (int, error) {
	os.Stdout.Write(b)
	select {
	case <-w.ready:
	default:
		close(w.ready)
	}
	return len(b), nil
}
