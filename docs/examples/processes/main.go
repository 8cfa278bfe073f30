// Command processes is lesson 1: start, join, is_alive, pid and ppid,
// names, the current process — Python's multiprocessing.Process in Go.
package main

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/shmkit/shmkit/process"
)

// Entries are registered at init: a child is this program re-executed
// with the entry's name, like Python's "spawn" start method.
func init() {
	process.Register("cook", func(args []string) error {
		me := process.Current()
		fmt.Printf("%s: cooking %s (pid %d, parent %d)\n", me.Name, args[0], me.Pid, me.PPid)
		time.Sleep(200 * time.Millisecond)
		return nil
	})
}

func main() {
	process.Main(run)
}

func run() error {
	me := process.Current()
	fmt.Printf("%s: pid %d\n", me.Name, me.Pid)

	cook := &process.Process{Entry: "cook", Args: []string{"rice"}}                 // named Process-1
	wash := &process.Process{Entry: "cook", Args: []string{"soup"}, Name: "souper"} // named by us
	fmt.Println("before start, is_alive:", cook.IsAlive())
	for _, p := range []*process.Process{cook, wash} {
		if err := p.Start(); err != nil {
			return err
		}
	}
	fmt.Println("after start, is_alive:", cook.IsAlive(), "name:", cook.Name)
	for _, p := range []*process.Process{cook, wash} {
		if err := p.Join(context.Background()); err != nil {
			return err
		}
		code, _ := p.ExitCode()
		fmt.Printf("joined %s: exit code %d, is_alive %v, its parent was us: %v\n",
			p.Name, code, p.IsAlive(), os.Getpid() == me.Pid)
	}
	return nil
}
