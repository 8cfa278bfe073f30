//go:build linux

package jsonfile_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/shmkit/shmkit/ticketshm"
	"github.com/shmkit/shmkit/ticketshm/jsonfile"
)

// The course notes' db.txt with its lock: each Buy is flock, read,
// decrement, write, unlock.
func ExampleFlockStore() {
	dir, _ := os.MkdirTemp("", "jsonfile")
	defer os.RemoveAll(dir)
	db := filepath.Join(dir, "db.txt")
	if err := jsonfile.Reset(db, 2); err != nil {
		log.Fatal(err)
	}
	s, err := jsonfile.OpenFlock(db)
	if err != nil {
		log.Fatal(err)
	}
	defer s.Close()

	ctx := context.Background()
	for {
		t, err := s.Buy(ctx)
		if errors.Is(err, ticketshm.ErrSoldOut) {
			fmt.Println("sold out")
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("ticket", t)
	}
	content, _ := os.ReadFile(db)
	fmt.Println(string(content))
	// Output:
	// ticket 2
	// ticket 1
	// sold out
	// {"count": 0}
}
