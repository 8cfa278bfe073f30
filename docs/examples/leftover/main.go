// Command leftover is lesson 7's last part: a lock-free buyer is killed
// (SIGKILL) with ten buys in its log, and the program exits leaving the
// Counter segment in /dev/shm, for shmctl to look at, audit, repair and
// remove.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

const name = "lesson7.tickets"

// errParentGone: this child's parent died, so the name it opened may be
// the next run's; it leaves it alone.
var errParentGone = errors.New("the parent is gone: the name may be another run's now")

func init() {
	process.Register("buyer", func([]string) error {
		c, err := ticketshm.Open(context.Background(), name)
		if err != nil {
			return err
		}
		// Opened by name: a child of an earlier run, killed mid-run, may
		// get here after the next run made the name anew. Go on only
		// while the parent that started us lives.
		if !process.Parent().IsAlive() {
			return errParentGone
		}
		for range 10 {
			if _, err := c.Buy(context.Background()); err != nil {
				return err
			}
		}
		// Killed before its Close: its ten buys are in its log, not
		// yet in the ledger, and nobody else has opened the counter
		// since to settle them.
		return syscall.Kill(os.Getpid(), syscall.SIGKILL)
	})
}

func main() { process.Main(run) }

func run() error {
	// This program leaves its counter behind on purpose, for shmctl to
	// look at; a second run starts from a fresh one.
	if shm.Remove(name) == nil {
		fmt.Fprintln(os.Stderr, "removed /dev/shm/shmkit."+name+", left by an earlier run")
	}
	c, err := ticketshm.Create(context.Background(), name, 1000, ticketshm.LockFree)
	if err != nil {
		return err
	}
	if err := c.Close(); err != nil {
		return err
	}
	p := &process.Process{Entry: "buyer"}
	if err := p.Start(); err != nil {
		return err
	}
	var exit *process.ExitError
	if err := p.Join(context.Background()); !errors.As(err, &exit) {
		return fmt.Errorf("the buyer was to be killed: %v", err)
	}
	code, _ := p.ExitCode()
	fmt.Printf("buyer: exit code %d (killed by SIGKILL after 10 buys)\n", code)
	fmt.Println("left /dev/shm/shmkit." + name + " behind: see it with go run ./cmd/shmctl ls")
	return nil
}
