// Command daemon is lesson 4: a heartbeat daemon reports "alive" while a
// worker runs, and is terminated when the main program is done; a daemon
// may not start children.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
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
	// The heartbeat first, and the worker once the heartbeat has said
	// its first two lines, so that they come first; after that the two
	// run at once and their lines interleave as they will.
	started := make(chan struct{})
	hb := &process.Process{Entry: "heartbeat", Daemon: true, Stdout: &lines{n: 2, done: started}}
	if err := hb.Start(); err != nil {
		return err
	}
	<-started
	w := &process.Process{Entry: "worker"}
	if err := w.Start(); err != nil {
		return err
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

// lines passes a child's output on and closes done after n lines.
type lines struct {
	n    int
	done chan struct{}
}

func (l *lines) Write(b []byte) (int, error) {
	os.Stdout.Write(b)
	for _, c := range b {
		if c == '\n' {
			if l.n--; l.n == 0 {
				close(l.done)
			}
		}
	}
	return len(b), nil
}
