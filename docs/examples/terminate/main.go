// Command terminate is lesson 3: join with a timeout, terminate (SIGTERM),
// kill (SIGKILL) and the exit codes Python reports: -15 and -9.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shmkit/shmkit/process"
)

func init() {
	process.Register("sleeper", func([]string) error {
		time.Sleep(time.Hour)
		return nil
	})
	process.Register("fails", func([]string) error {
		return process.Exit(3)
	})
}

func main() { process.Main(run) }

func run() error {
	p := &process.Process{Entry: "sleeper"}
	if err := p.Start(); err != nil {
		return err
	}
	// join(timeout=0.1): a context deadline. The child keeps running.
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := p.Join(ctx)
	fmt.Println("join with a deadline:", err, "| still alive:", p.IsAlive())

	p.Terminate() // SIGTERM
	var exit *process.ExitError
	if err := p.Join(context.Background()); errors.As(err, &exit) {
		fmt.Println("after terminate, exitcode:", exit.Code)
	}

	q := &process.Process{Entry: "sleeper"}
	if err := q.Start(); err != nil {
		return err
	}
	q.Kill() // SIGKILL: cannot be caught
	q.Join(context.Background())
	code, _ := q.ExitCode()
	fmt.Println("after kill, exitcode:", code)

	r := &process.Process{Entry: "fails"}
	if err := r.Start(); err != nil {
		return err
	}
	r.Join(context.Background())
	code, _ = r.ExitCode()
	fmt.Println("a child that exits 3, exitcode:", code)
	return nil
}
