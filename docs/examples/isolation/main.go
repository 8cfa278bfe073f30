// Command isolation is lesson 2: a child changes a package variable and
// the parent does not see it; a shared-memory segment is what they share.
package main

import (
	"context"
	"fmt"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
)

var tickets = 10 // every process starts with its own copy

const segName = "lesson2.shared"

func init() {
	process.Register("child", func([]string) error {
		tickets = 0 // only this process's copy
		fmt.Println("child: tickets =", tickets)

		seg, err := shm.Open(segName, "lesson2/1")
		if err != nil {
			return err
		}
		defer seg.Close()
		shared, err := seg.Int64(0)
		if err != nil {
			return err
		}
		shared.Add(-1) // the parent sees this one
		return nil
	})
}

func main() { process.Main(run) }

func run() error {
	seg, err := shm.Create(segName, 8, "lesson2/1", func(s *shm.Segment) error {
		v, err := s.Int64(0)
		if err == nil {
			v.Store(10)
		}
		return err
	})
	if err != nil {
		return err
	}
	defer shm.Remove(segName)
	defer seg.Close()

	p := &process.Process{Entry: "child"}
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
	fmt.Println("parent: tickets =", tickets, "(unchanged: the child had its own copy)")
	fmt.Println("parent: shared =", shared.Load(), "(the child's decrement, through /dev/shm)")
	return nil
}
