//go:build linux

package ticketshm_test

import (
	"context"
	"fmt"
	"log"

	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

// Every process that opens "example.tickets" sells from the same 100
// tickets; Audit checks the books.
func ExampleCounter() {
	ctx := context.Background()
	c, err := ticketshm.OpenOrCreate(ctx, "example.tickets", 100, ticketshm.LockFree)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Remove("example.tickets")
	defer c.Close()

	for range 3 {
		t, err := c.Buy(ctx)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("ticket", t)
	}
	left, _ := c.Remaining(ctx)
	a, _ := c.Audit(context.Background())
	fmt.Println(left, "left; audit ok:", a.OK())
	// Output:
	// ticket 1
	// ticket 2
	// ticket 3
	// 97 left; audit ok: true
}
