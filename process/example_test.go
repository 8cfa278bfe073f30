//go:build linux

package process_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shmkit/shmkit/process"
)

func init() {
	process.Register("greet", func(args []string) error {
		fmt.Println("hello from", process.Current().Name, "with", args)
		return nil
	})
	process.Register("nap", func([]string) error {
		time.Sleep(time.Hour)
		return nil
	})
}

// Start and Join, as Python's p.start(); p.join().
func ExampleProcess() {
	p := &process.Process{Entry: "greet", Args: []string{"rice"}, Name: "cook"}
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
	p := &process.Process{Entry: "nap"}
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	p.Terminate()
	var exit *process.ExitError
	err := p.Join(context.Background())
	fmt.Println(errors.As(err, &exit), exit.Code)
	// Output: true -15
}

// ActiveChildren and String, as Python's active_children() and repr.
func ExampleActiveChildren() {
	p := &process.Process{Entry: "nap", Name: "napper"}
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	for _, c := range process.ActiveChildren() {
		fmt.Println(c.Name, c.IsAlive())
	}
	p.Terminate()
	p.Join(context.Background())
	fmt.Println(len(process.ActiveChildren()), strings.Contains(p.String(), "stopped exitcode=-SIGTERM"))
	// Output:
	// napper true
	// 0 true
}

func init() {
	process.Register("report-parent", func([]string) error {
		parent := process.Parent()
		fmt.Println("my parent is", parent.Name(), "alive:", parent.IsAlive())
		return nil
	})
}

// A child asks for its parent, as with Python's parent_process(); the
// program that called Main has none.
func ExampleParent() {
	fmt.Println("main's parent:", process.Parent())
	p := &process.Process{Entry: "report-parent"}
	if err := p.Start(); err != nil {
		fmt.Println(err)
		return
	}
	p.Join(context.Background())
	// Output:
	// main's parent: <nil>
	// my parent is MainProcess alive: true
}
