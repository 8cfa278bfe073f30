// Command lockfree is lesson 9: the same ticket sale with a lock and with
// one compare-and-swap; both sell every ticket once, and Audit proves it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

const tickets = 2_000_000

// errParentGone: this child's parent died, so the name it opened may be
// the next run's; it leaves it alone.
var errParentGone = errors.New("the parent is gone: the name may be another run's now")

func init() {
	process.Register("buyer", func(args []string) error {
		c, err := ticketshm.Open(context.Background(), args[0])
		if err != nil {
			return err
		}
		// Opened by name: a child of an earlier run, killed mid-run, may
		// get here after the next run made the name anew. Go on only
		// while the parent that started us lives.
		if !process.Parent().IsAlive() {
			return errParentGone
		}
		defer c.Close()
		for {
			if _, err := c.Buy(context.Background()); errors.Is(err, ticketshm.ErrSoldOut) {
				return nil
			} else if err != nil {
				return err
			}
		}
	})
}

func main() { process.Main(run) }

func run() error {
	for _, mode := range []ticketshm.Mode{ticketshm.Locked, ticketshm.LockFree} {
		name := "lesson9." + mode.String()
		// A counter left by an earlier run killed half way has sold
		// tickets already: start from a fresh one.
		if shm.Remove(name) == nil {
			fmt.Fprintln(os.Stderr, "removed /dev/shm/shmkit."+name+", left by an earlier run")
		}
		c, err := ticketshm.Create(context.Background(), name, tickets, mode)
		if err != nil {
			return err
		}
		fmt.Println("counter: /dev/shm/shmkit." + name + ", removed at the end")
		start := time.Now()
		var ps []*process.Process
		for range 4 {
			p := &process.Process{Entry: "buyer", Args: []string{name}}
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
		elapsed := time.Since(start) // includes starting the processes
		a, err := c.Audit(context.Background())
		if err != nil {
			return err
		}
		fmt.Printf("%-9s: 4 buyers sold %d of %d, lost %d, oversold %d, audit ok: %v (%.0f ms with spawning)\n",
			mode, a.Sold, a.Total, a.Lost, a.Oversold, a.OK(), float64(elapsed.Milliseconds()))
		c.Close()
		shm.Remove(name)
	}
	return nil
}
