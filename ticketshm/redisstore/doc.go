// Package redisstore is the ticket sale on a Redis server: the same
// ticketshm.Store as the shared-memory Counter, for buyers on more than
// one host. A program moves from one host to many by changing one
// constructor; the bench (-backends redis) shows what the network costs.
//
// # Basics
//
//	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379"})
//	err := redisstore.Init(ctx, rdb, "tickets", 100, false) // no-op if it exists
//	st, err := redisstore.New(ctx, rdb, "tickets", "buyer-7")
//	t, err := st.Buy(ctx) // ticket number, or ticketshm.ErrSoldOut
//
// New takes a go-redis client rather than an address: one client (its
// pool, authentication, TLS, timeouts and retry policy) serves every Store
// of a process, and the caller decides how to reach the server. The tests
// and the bench use redis.NewClient(&redis.Options{Addr: addr,
// MaxRetries: -1}).
//
// # Layout
//
// The counter is one Redis hash at key:
//
//	field       value
//	total       tickets the counter was made with
//	remaining   tickets left: Buy decrements it
//	sold:<id>   tickets sold to buyer id (the ledger)
//
// Buy is one Lua script, atomic on the server: if remaining > 0 it
// decrements remaining and increments sold:<id>, and returns the ticket
// number total-remaining+1. Two buyers never get the same number and
// remaining never goes below zero, however many clients race. Audit checks
// that the ledger and remaining add up to total.
//
// # Failures
//
// A buyer killed mid-purchase either ran the script or did not: the server
// has no half-done purchase to repair. A Buy whose connection breaks after
// it was sent (a server restart, a network fault) returns an error wrapping
// ErrUncertain: the purchase may have happened, and the ledger says
// whether. (go-redis retries a command after a network error unless
// Options.MaxRetries is -1; a retried purchase that had run is a second
// ticket for the same buyer, counted in the ledger like any other.) With
// appendfsync always, a purchase whose reply arrived
// survives a server crash. An unreachable server gives ErrUnavailable; a
// key holding another type, ErrWrongType; a missing counter, ErrNoCounter;
// a context that ends first, its error.
package redisstore
