// Command ticketgrab is lesson 6: the course notes' 抢票 on db.txt. Eight
// buyers with no lock oversell and tear the file; with flock they sell
// each ticket once.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/ticketshm"
	"github.com/shmkit/shmkit/ticketshm/jsonfile"
)

const tickets = 2000

func init() {
	// buyer: args mode, path. Prints how many tickets it bought.
	process.Register("buyer", func(args []string) error {
		var st ticketshm.Store
		var err error
		if args[0] == "flock" {
			st, err = jsonfile.OpenFlock(args[1])
		} else {
			st, err = jsonfile.OpenUnlocked(args[1])
		}
		if err != nil {
			return err
		}
		defer st.Close()
		bought := 0
		for {
			_, err := st.Buy(context.Background())
			switch {
			case errors.Is(err, ticketshm.ErrSoldOut), errors.Is(err, jsonfile.ErrBroken):
				// Sold out, or torn for good by unlocked writers.
				fmt.Println(bought)
				return nil
			case errors.Is(err, jsonfile.ErrTorn):
				// A writer between truncate and write: read again.
			case err != nil:
				return err
			default:
				bought++
			}
		}
	})
}

func main() { process.Main(run) }

// sale runs 8 buyers on a fresh db.txt and returns the tickets they
// bought in all.
func sale(mode, path string) (int, error) {
	if err := jsonfile.Reset(path, tickets); err != nil {
		return 0, err
	}
	outs := make([]*numbers, 8)
	ps := make([]*process.Process, 8)
	for i := range ps {
		outs[i] = new(numbers)
		ps[i] = &process.Process{Entry: "buyer", Args: []string{mode, path}, Stdout: outs[i]}
		if err := ps[i].Start(); err != nil {
			return 0, err
		}
	}
	total := 0
	for i, p := range ps {
		if err := p.Join(context.Background()); err != nil {
			return 0, err
		}
		total += outs[i].n
	}
	return total, nil
}

// numbers keeps the last number written to it.
type numbers struct{ n int }

func (w *numbers) Write(b []byte) (int, error) {
	if n, err := strconv.Atoi(string(b[:len(b)-1])); err == nil {
		w.n = n
	}
	return len(b), nil
}

func run() error {
	dir, err := os.MkdirTemp("", "ticketgrab")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "db.txt")

	for round := 1; round <= 5; round++ {
		sold, err := sale("nolock", path)
		if err != nil {
			return err
		}
		content, _ := os.ReadFile(path)
		if sold != tickets || !jsonOK(path) {
			fmt.Printf("no lock: %d tickets, %d sold, db.txt now %q: oversold or torn\n", tickets, sold, content)
			break
		}
		fmt.Printf("no lock: round %d happened to come out right; again\n", round)
	}

	sold, err := sale("flock", path)
	if err != nil {
		return err
	}
	content, _ := os.ReadFile(path)
	fmt.Printf("flock: %d tickets, %d sold, db.txt now %s\n", tickets, sold, content)
	return nil
}

func jsonOK(path string) bool {
	st, err := jsonfile.OpenFlock(path)
	if err != nil {
		return false
	}
	defer st.Close()
	n, err := st.Remaining(context.Background())
	return err == nil && n == 0
}
