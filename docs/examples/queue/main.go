// Command queue is lesson 12: the producer-consumer model (生产者消费者模型)
// between processes through a queue in shared memory. Two chefs make
// buns, an eater eats them; the eater is killed (SIGKILL) while holding a
// bun, and that bun is not lost: the next eater gets it.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
)

const (
	buns  = "lesson12.buns"  // chefs -> eaters
	eaten = "lesson12.eaten" // eaters -> main: what each ate
)

// orphanCtx is done when this child's parent dies: a chef waiting for
// room, or an eater for buns, has nobody to work for after that.
func orphanCtx() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	go func() {
		<-process.Parent().Done()
		cancel()
	}()
	return ctx
}

// errParentGone: this child's parent died, so the name it opened may be
// the next run's; it leaves it alone.
var errParentGone = errors.New("the parent is gone: the name may be another run's now")

func init() {
	// chef NAME N: makes N buns.
	process.Register("chef", func(args []string) error {
		ctx := orphanCtx()
		q, err := queue.Open(ctx, buns)
		if err != nil {
			return err
		}
		// Opened by name: a child of an earlier run, killed mid-run, may
		// get here after the next run made the name anew. Go on only
		// while the parent that started us lives.
		if !process.Parent().IsAlive() {
			return errParentGone
		}
		defer q.Close()
		n, _ := strconv.Atoi(args[1])
		for i := 1; i <= n; i++ {
			if err := q.Send(ctx, []byte(fmt.Sprintf("bun %d of %s", i, args[0]))); err != nil {
				return err
			}
		}
		return nil
	})
	// eater NAME [BUN]: eats until the buns run out; dies holding BUN.
	process.Register("eater", func(args []string) error {
		ctx := orphanCtx()
		q, err := queue.Open(ctx, buns)
		if err != nil {
			return err
		}
		defer q.Close()
		report, err := queue.Open(ctx, eaten)
		if err != nil {
			return err
		}
		defer report.Close()
		// Both opened by name: see the chef.
		if !process.Parent().IsAlive() {
			return errParentGone
		}
		for {
			// RecvFunc: the bun leaves the queue only when the
			// function returns nil. Killed inside it, the eater
			// loses nothing: the bun goes back to the queue.
			err := q.RecvFunc(ctx, func(bun []byte) error {
				if len(args) > 1 && string(bun) == args[1] {
					syscall.Kill(os.Getpid(), syscall.SIGKILL)
				}
				return report.Send(ctx, []byte(args[0]+" ate "+string(bun)))
			})
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
		}
	})
}

func main() { process.Main(run) }

func run() error {
	ctx := context.Background()
	// Room for 4 buns: chefs wait while it is full. Room for every report.
	for name, capacity := range map[string]int{buns: 4, eaten: 16} {
		// A queue left by an earlier run killed half way still holds its
		// buns: start from fresh ones.
		if queue.Remove(name) == nil {
			fmt.Fprintln(os.Stderr, "removed /dev/shm/shmkit."+name+", left by an earlier run")
		}
		q, err := queue.Create(ctx, name, capacity, 64)
		if err != nil {
			return err
		}
		defer queue.Remove(name)
		defer q.Close()
	}
	fmt.Println("queues: /dev/shm/shmkit." + buns + " and ." + eaten + ", removed at the end")
	bq, _ := queue.Open(ctx, buns)
	defer bq.Close()
	rq, _ := queue.Open(ctx, eaten)
	defer rq.Close()

	first := &process.Process{Entry: "eater", Args: []string{"eater-1", "bun 3 of chef-1"}}
	chefs := []*process.Process{
		{Entry: "chef", Args: []string{"chef-1", "5"}},
		{Entry: "chef", Args: []string{"chef-2", "5"}},
	}
	for _, p := range append([]*process.Process{first}, chefs...) {
		if err := p.Start(); err != nil {
			return err
		}
	}
	var exit *process.ExitError
	if err := first.Join(ctx); !errors.As(err, &exit) {
		return fmt.Errorf("eater-1 was to be killed: %v", err)
	}
	code, _ := first.ExitCode()
	fmt.Printf("eater-1 died holding bun 3 of chef-1 (exit code %d)\n", code)
	second := &process.Process{Entry: "eater", Args: []string{"eater-2"}}
	if err := second.Start(); err != nil {
		return err
	}
	for _, c := range chefs {
		if err := c.Join(ctx); err != nil {
			return err
		}
	}
	bq.CloseSend() // no more buns: the eater finishes what is queued, then io.EOF
	if err := second.Join(ctx); err != nil {
		return err
	}
	rq.CloseSend()
	var meals []string
	for {
		m, err := rq.RecvMsg(ctx)
		if err == io.EOF {
			break
		}
		if err != nil {
			return err
		}
		meals = append(meals, string(m))
	}
	slices.Sort(meals)
	count := map[string]int{}
	for _, m := range meals {
		_, bun, _ := strings.Cut(m, " ate ")
		count[bun]++
	}
	once := 0
	for _, n := range count {
		if n == 1 {
			once++
		}
	}
	fmt.Printf("10 buns made, %d eaten, %d of them exactly once\n", len(meals), once)
	fmt.Println("bun 3 of chef-1 eaten by eater-2:", slices.Contains(meals, "eater-2 ate bun 3 of chef-1"))
	return nil
}
