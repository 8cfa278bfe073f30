// Command terminate is lesson 3: join and what it waits for (the notes'
// 发送邮件, with join inside the start loop and after it), join with a
// timeout, terminate (SIGTERM) and is_alive right after it, kill
// (SIGKILL), and the exit codes Python reports: -15, -9 and 3.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shmkit/shmkit/process"
)

func init() {
	process.Register("mail", func(args []string) error {
		time.Sleep(300 * time.Millisecond) // sending takes a while
		fmt.Printf("mail %s sent\n", args[0])
		return nil
	})
	process.Register("sleeper", func([]string) error {
		// Sleep an hour, but not as an orphan: a child whose parent died
		// (killed, say, before it could terminate us) has nobody to work for.
		select {
		case <-time.After(time.Hour):
		case <-process.Parent().Done():
		}
		return nil
	})
	process.Register("fails", func([]string) error {
		return process.Exit(3)
	})
}

func main() { process.Main(run) }

func run() error {
	ctx := context.Background()

	// The notes' mails: join inside the start loop waits for each child
	// before starting the next, so the three are sent one at a time.
	start := time.Now()
	for i := range 3 {
		p := &process.Process{Entry: "mail", Args: []string{fmt.Sprint(i)}}
		if err := p.Start(); err != nil {
			return err
		}
		if err := p.Join(ctx); err != nil {
			return err
		}
	}
	fmt.Println("join inside the loop: one at a time, at least 3 x 300 ms:", time.Since(start) >= 900*time.Millisecond)

	// Start them all, then join them all: the three are sent together.
	start = time.Now()
	var ps []*process.Process
	for i := 3; i < 6; i++ {
		p := &process.Process{Entry: "mail", Args: []string{fmt.Sprint(i)}}
		if err := p.Start(); err != nil {
			return err
		}
		ps = append(ps, p)
	}
	together := true
	for _, p := range ps {
		together = together && p.IsAlive()
	}
	for _, p := range ps {
		fmt.Println(p) // the notes print each before its join: started or stopped
		if err := p.Join(ctx); err != nil {
			return err
		}
	}
	fmt.Printf("join after the loop: all sent in %d ms; all three were running at once: %v\n", time.Since(start).Milliseconds(), together)

	p := &process.Process{Entry: "sleeper"}
	if err := p.Start(); err != nil {
		return err
	}
	// join(timeout=0.1): a context deadline. The child keeps running.
	tctx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := p.Join(tctx)
	fmt.Println("join with a deadline:", err, "| still alive:", p.IsAlive())

	p.Terminate() // SIGTERM: asks the kernel, which takes a moment
	fmt.Println("right after terminate, is_alive:", p.IsAlive())
	var exit *process.ExitError
	if err := p.Join(ctx); errors.As(err, &exit) {
		fmt.Println("after join, is_alive:", p.IsAlive(), "| exitcode:", exit.Code)
	}

	q := &process.Process{Entry: "sleeper"}
	if err := q.Start(); err != nil {
		return err
	}
	q.Kill() // SIGKILL: cannot be caught
	q.Join(ctx)
	code, _ := q.ExitCode()
	fmt.Println("after kill, exitcode:", code)

	r := &process.Process{Entry: "fails"}
	if err := r.Start(); err != nil {
		return err
	}
	r.Join(ctx)
	code, _ = r.ExitCode()
	fmt.Println("a child that exits 3, exitcode:", code)
	return nil
}
