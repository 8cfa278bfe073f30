// Command daemon is lesson 4: a heartbeat daemon reports "alive" while a
// worker runs, and is terminated when the main program is done; a daemon
// may not start children.
package main

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shmkit/shmkit/process"
)

func init() {
	process.Register("heartbeat", func([]string) error {
		p := &process.Process{Entry: "worker"}
		if err := p.Start(); errors.Is(err, process.ErrDaemonChildren) {
			fmt.Println("heartbeat: a daemon cannot have children:", err)
		}
		for {
			fmt.Println("heartbeat: alive")
			time.Sleep(100 * time.Millisecond)
		}
	})
	process.Register("worker", func([]string) error {
		for i := range 3 {
			fmt.Println("worker: step", i+1)
			time.Sleep(400 * time.Millisecond) // time for heartbeats, even on a busy machine
		}
		return nil
	})
}

func main() { process.Main(run) }

func run() error {
	hb := &process.Process{Entry: "heartbeat", Daemon: true}
	w := &process.Process{Entry: "worker"}
	for _, p := range []*process.Process{hb, w} {
		if err := p.Start(); err != nil {
			return err
		}
	}
	if err := w.Join(context.Background()); err != nil {
		return err
	}
	// Returning from run is Python's interpreter exit: Main terminates
	// the heartbeat daemon (and would join any other child). Were this
	// program SIGKILLed, the kernel would kill the daemon (Pdeathsig).
	fmt.Println("main: the worker is done; returning terminates the daemon")
	return nil
}
