//go:build linux

package forkexec_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shmkit/shmkit/internal/forkexec"
)

func init() {
	forkexec.Register("greet", func(args []string) error {
		fmt.Println("hello from", forkexec.Current().Name, "with", args)
		return nil
	})
	forkexec.Register("nap", func([]string) error {
		time.Sleep(time.Hour)
		return nil
	})
}

// Start and Join, as Python's p.start(); p.join().
func ExampleProcess() {
	p := &forkexec.Process{Entry: "greet", Args: []string{"rice"}, Name: "cook"}
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	err := p.Join(context.Background())
	code, _ := p.ExitCode()
	fmt.Println("joined:", err, code)
	// Output:
	// hello from cook with [rice]
	// joined: <nil> 0
}

// Terminate and the exit code Python reports for a signal.
func ExampleProcess_Terminate() {
	p := &forkexec.Process{Entry: "nap"}
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	p.Terminate()
	var exit *forkexec.ExitError
	err := p.Join(context.Background())
	fmt.Println(errors.As(err, &exit), exit.Code)
	// Output: true -15
}
