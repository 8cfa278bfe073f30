// Command zombies is lesson 5: a child that exited and was not waited for
// is a zombie (state Z in /proc); package process reaps every child it starts;
// an orphan is reparented, here to us, a subreaper.
package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"

	"github.com/shmkit/shmkit/process"
)

func init() {
	process.Register("quick", func([]string) error { return nil })
	// parent starts a grandchild and exits without waiting for it.
	process.Register("parent", func([]string) error {
		g := &process.Process{Entry: "grandchild"}
		if err := g.Start(); err != nil {
			return err
		}
		fmt.Println("orphan: the grandchild is", g.Pid())
		os.Exit(0) // skip Main's join: leave it behind, an orphan
		return nil
	})
	process.Register("grandchild", func([]string) error {
		time.Sleep(300 * time.Millisecond)
		return nil
	})
}

// state is the process state letter in /proc/pid/stat ("" once gone).
func state(pid int) string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return "gone"
	}
	s := string(b)
	return strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[0]
}

func ppid(pid int) int {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	s := string(b)
	n, _ := strconv.Atoi(strings.Fields(s[strings.LastIndexByte(s, ')')+1:])[1])
	return n
}

func main() { process.Main(run) }

func run() error {
	// 1. A zombie: os/exec without Wait.
	cmd := exec.Command("true")
	if err := cmd.Start(); err != nil {
		return err
	}
	for deadline := time.Now().Add(5 * time.Second); state(cmd.Process.Pid) != "Z" && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond) // until `true` has exited
	}
	fmt.Println("zombie: os/exec child not waited for, state:", state(cmd.Process.Pid))
	cmd.Wait()
	fmt.Println("zombie: after Wait, state:", state(cmd.Process.Pid))

	// 2. package process reaps as soon as the child exits.
	p := &process.Process{Entry: "quick"}
	if err := p.Start(); err != nil {
		return err
	}
	<-p.Done()
	fmt.Println("process: exited child, state:", state(p.Pid()))

	// 3. An orphan: its parent exits first; a subreaper adopts it.
	if err := process.SetSubreaper(); err != nil {
		return err
	}
	var out strings.Builder
	parent := &process.Process{Entry: "parent", Stdout: &out}
	if err := parent.Start(); err != nil {
		return err
	}
	if err := parent.Join(context.Background()); err != nil {
		return err
	}
	gc, _ := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(out.String(), "orphan: the grandchild is")))
	fmt.Println("orphan: its parent exited; new parent is us:", ppid(gc) == os.Getpid())
	code, err := process.ReapOrphan(gc)
	fmt.Println("orphan: reaped by the subreaper, exit code", code, err)
	return nil
}
