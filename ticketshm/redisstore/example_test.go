package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/redis/go-redis/v9"

	"github.com/shmkit/shmkit/ticketshm"
	"github.com/shmkit/shmkit/ticketshm/redisstore"
)

// A buyer on any host that reaches the server. (No Output: it needs a
// Redis server; the tests start one.)
func ExampleStore() {
	ctx := context.Background()
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", MaxRetries: -1})
	defer rdb.Close()
	// Make the counter once; an existing one is kept.
	if err := redisstore.Init(ctx, rdb, "concert", 100, false); err != nil {
		log.Fatal(err)
	}
	st, err := redisstore.New(ctx, rdb, "concert", "host-a.buyer-1")
	if err != nil {
		log.Fatal(err) // ErrUnavailable, ErrWrongType, ErrNoCounter: errors.Is
	}
	for {
		t, err := st.Buy(ctx)
		if errors.Is(err, ticketshm.ErrSoldOut) {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println("ticket", t)
	}
}
