// Command ticketgrab is lesson 6: the course notes' 抢票 on db.txt, as
// they wrote it. Fifteen buyers, {"count": 10}: joined one by one inside
// the start loop (serial, and correct without a lock); all at once
// without a lock (oversold); all at once with a lock around get (correct,
// and concurrent where it may be).
package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/shmkit/shmkit/process"
)

const (
	buyers  = 15
	tickets = 10
)

// The notes sleep 1 s (and 1.5 s) to stand for the network; a tenth of
// and a fiftieth keep the lesson quick and the race wide open.
const (
	network = 50 * time.Millisecond
	pause   = 20 * time.Millisecond
)

func init() {
	// buyer: args path, lock ("none" or "flock"). The notes' task():
	// search, then get.
	process.Register("buyer", func(args []string) error {
		path, lock := args[0], args[1]
		if err := search(path); err != nil {
			return err
		}
		if lock == "flock" {
			// mutex.acquire(): an exclusive flock on db.txt, released
			// (mutex.release()) when the file is closed, or by the
			// kernel if this process dies.
			f, err := os.Open(path)
			if err != nil {
				return err
			}
			defer f.Close()
			if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
				return err
			}
		}
		return get(path)
	})
}

// search is the notes' search(): look at what is left (in parallel, harmless).
func search(path string) error {
	time.Sleep(pause)
	n, err := count(path)
	if err != nil {
		return err
	}
	fmt.Printf("%s: %d left\n", process.Current().Name, n)
	return nil
}

// get is the notes' get(): read, wait for the network, write one less.
func get(path string) error {
	me := process.Current().Name
	n, err := count(path)
	if err != nil {
		return err
	}
	time.Sleep(network)
	if n <= 0 {
		fmt.Printf("%s: sold out\n", me)
		return nil
	}
	// Python's open('db.txt', 'wt') and json.dump: truncate, then write.
	if err := os.WriteFile(path, fmt.Appendf(nil, `{"count": %d}`, n-1), 0o644); err != nil {
		return err
	}
	time.Sleep(pause)
	fmt.Printf("%s: got a ticket\n", me)
	return nil
}

// count is json.load(f)["count"]. A reader that comes between another
// buyer's truncate and its write finds an empty file, where Python's
// json.load raises; that buyer says so and gets nothing.
func count(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	var db struct {
		Count *int `json:"count"`
	}
	if err := json.Unmarshal(b, &db); err != nil || db.Count == nil {
		return 0, fmt.Errorf("db.txt is %q: torn by a writer", b)
	}
	return *db.Count, nil
}

func main() { process.Main(run) }

func run() error {
	// Each run has a directory of its own: buyers of a run killed a moment
	// ago may still be writing to theirs. Directories such runs left
	// behind are removed (their buyers, if any are left, fail and end).
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), "shmkit.lesson6.*"))
	for _, d := range old {
		os.RemoveAll(d)
		fmt.Fprintln(os.Stderr, "removed", d+", left by an earlier run")
	}
	dir, err := os.MkdirTemp("", "shmkit.lesson6.")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "db.txt")
	fmt.Printf("db.txt: %s, removed at the end\n", path)

	// 1. As the notes run it: start and join inside the loop. One buyer
	// at a time, so no lock is needed, and nothing runs at once.
	if err := reset(path); err != nil {
		return err
	}
	for range buyers {
		p := &process.Process{Entry: "buyer", Args: []string{path, "none"}}
		if err := p.Start(); err != nil {
			return err
		}
		if err := p.Join(context.Background()); err != nil {
			return err
		}
	}

	// 2. All at once, no lock; 3. all at once, get under the lock.
	for _, lock := range []string{"none", "flock"} {
		if err := reset(path); err != nil {
			return err
		}
		got, soldOut, torn, err := allAtOnce(path, lock)
		if err != nil {
			return err
		}
		db, _ := os.ReadFile(path)
		left, err := count(path)
		verdict := "correct"
		switch {
		case err != nil:
			verdict = "torn for good"
		case got > tickets-left:
			verdict = "oversold"
		}
		if torn > 0 {
			verdict += ", and torn reads"
		}
		fmt.Printf("all at once, lock %s: %d buyers, %d got a ticket, %d sold out, %d torn reads; db.txt now %s: %s\n",
			lock, buyers, got, soldOut, torn, db, verdict)
	}
	return nil
}

// reset writes the notes' db.txt.
func reset(path string) error {
	return os.WriteFile(path, fmt.Appendf(nil, `{"count": %d}`, tickets), 0o644)
}

// allAtOnce starts every buyer, then joins them, and counts what their
// output says.
func allAtOnce(path, lock string) (got, soldOut, torn int, err error) {
	outs := make([]bytes.Buffer, buyers)
	ps := make([]*process.Process, buyers)
	for i := range ps {
		ps[i] = &process.Process{Entry: "buyer", Args: []string{path, lock}, Stdout: &outs[i], Stderr: &outs[i]}
		if err := ps[i].Start(); err != nil {
			return 0, 0, 0, err
		}
	}
	for i, p := range ps {
		err := p.Join(context.Background())
		out := outs[i].String()
		switch {
		case strings.Contains(out, "torn by a writer"):
			torn++
		case err != nil:
			return 0, 0, 0, fmt.Errorf("%s: %w\n%s", p.Name, err, out)
		case strings.Contains(out, "got a ticket"):
			got++
		case strings.Contains(out, "sold out"):
			soldOut++
		}
	}
	return got, soldOut, torn, nil
}
