// Command processes is lesson 1: the course notes' 做饭 and 洗衣服 in two
// processes — start, join, is_alive, pid and ppid, names, arguments given
// as Python's args and kwargs, and the notes' two ways to write a child
// (方法一, a function; 方法二, a class with run).
package main

import (
	"context"
	"flag"
	"fmt"
	"strconv"
	"time"

	"github.com/shmkit/shmkit/process"
)

// Entries are registered at init, before main: a child is this program
// started again with the entry's name, and it must find the entry before
// it would run main's code. Python's `if __name__ == '__main__':` guards
// the same thing from the other side.
func init() {
	process.Register("cook", cook)
	process.Register("wash", func(args []string) error {
		n, err := strconv.Atoi(args[0]) // args=(3,): every argument is a string
		if err != nil {
			return err
		}
		return washer{times: n}.Run()
	})
}

// cook is 方法一: a function, Python's target=cook. Its arguments come as
// flags, the Go form of kwargs={"num": 4}.
func cook(args []string) error {
	fs := flag.NewFlagSet("cook", flag.ContinueOnError)
	num := fs.Int("num", 1, "how many times")
	if err := fs.Parse(args); err != nil {
		return err
	}
	me := process.Current()
	for i := range *num {
		fmt.Printf("%s: cooking... %d of %d (pid %d, parent %s %d)\n", me.Name, i+1, *num, me.Pid, process.Parent().Name(), me.PPid)
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// washer is 方法二: the notes subclass Process and override run. Go has no
// subclasses; a type with a Run method, built in the child from its
// arguments, is the same idea.
type washer struct{ times int }

func (w washer) Run() error {
	for i := range w.times {
		fmt.Printf("%s: washing... %d of %d\n", process.Current().Name, i+1, w.times)
		time.Sleep(50 * time.Millisecond)
	}
	return nil
}

// main is Python's `if __name__ == '__main__':` block: in a child, Main
// runs the child's entry instead of run.
func main() { process.Main(run) }

func run() error {
	me := process.Current()
	fmt.Printf("%s: pid %d\n", me.Name, me.Pid)

	cooking := &process.Process{Entry: "cook", Args: []string{"-num", "4"}} // kwargs={"num": 4}; named Process-1
	washing := &process.Process{Entry: "wash", Args: []string{"3"}, Name: "washer"}
	fmt.Println("before start, is_alive:", cooking.IsAlive())
	for _, p := range []*process.Process{cooking, washing} {
		if err := p.Start(); err != nil {
			return err
		}
	}
	fmt.Println("after start, is_alive:", cooking.IsAlive(), cooking)
	for _, p := range []*process.Process{cooking, washing} {
		if err := p.Join(context.Background()); err != nil {
			return err
		}
	}
	for _, p := range []*process.Process{cooking, washing} {
		code, _ := p.ExitCode()
		fmt.Printf("joined %s: exit code %d, is_alive %v, %v\n", p.Name, code, p.IsAlive(), p)
	}
	return nil
}
