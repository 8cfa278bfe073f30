// Command isolation is lesson 2: the course notes' `money = 100`, which a
// child sets to 666 without the parent seeing it; and the same int in a
// shared-memory segment, which the parent does see.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
)

var money = 100 // every process starts with its own copy

const (
	name = "lesson2.money" // the file /dev/shm/shmkit.lesson2.money
	tag  = "lesson2.Money/1"
)

// errParentGone: this child's parent died, so the name it opened may be
// the next run's; it leaves it alone.
var errParentGone = errors.New("the parent is gone: the name may be another run's now")

func init() {
	process.Register("task", func([]string) error {
		money = 666 // Python's `global money; money = 666`: this process's copy
		fmt.Println("child: money =", money)

		seg, err := shm.Open(name, tag)
		if err != nil {
			return err
		}
		// Opened by name: a child of an earlier run, killed mid-run, may
		// get here after the next run made the name anew. Go on only
		// while the parent that started us lives.
		if !process.Parent().IsAlive() {
			return errParentGone
		}
		defer seg.Close()
		shared, err := seg.Int64(0)
		if err != nil {
			return err
		}
		shared.Store(666) // this one the parent sees
		return nil
	})
}

func main() { process.Main(run) }

func run() error {
	// A run killed before its deferred Remove leaves the file behind, and
	// Create would find the name taken: start from a fresh one.
	if shm.Remove(name) == nil {
		fmt.Fprintln(os.Stderr, "removed /dev/shm/shmkit."+name+", left by an earlier run")
	}
	seg, err := shm.Create(name, 8, tag, func(s *shm.Segment) error {
		v, err := s.Int64(0)
		if err == nil {
			v.Store(100)
		}
		return err
	})
	if err != nil {
		return err
	}
	defer shm.Remove(name) // the name goes; the mapping stays until Close
	defer seg.Close()
	fmt.Println("shared: /dev/shm/shmkit." + name + ", removed at the end")

	p := &process.Process{Entry: "task"}
	if err := p.Start(); err != nil {
		return err
	}
	if err := p.Join(context.Background()); err != nil {
		return err
	}
	shared, err := seg.Int64(0)
	if err != nil {
		return err
	}
	fmt.Println("parent: money =", money, "(the child changed its own copy)")
	fmt.Println("parent: shared =", shared.Load(), "(the child's store, through /dev/shm)")
	return nil
}
