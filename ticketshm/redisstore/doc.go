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
// of a process, and the caller decides how to reach the server. Its
// retries are safe (see below); turning them off (MaxRetries: -1) lets
// Buy alone retry, and lets a Buy that gives up say when nothing was
// sold: go-redis returns its last attempt's error only, which cannot
// tell whether an earlier attempt reached the server, so through a
// client that retries, a purchase that failed is always uncertain.
//
// The bench reaches the server without go-redis: every buyer is a
// process of its own, and go-redis (with package net, crypto/tls, x509)
// would slow each one's start. It runs this same purchase, scripts,
// retries and errors (internal/redisbuy, which this package wraps), over
// a small client of its own (internal/resp).
//
// # Layout
//
// The counter is one Redis hash at key:
//
//	field         value
//	total         tickets the counter was made with, 1 to 2^53
//	remaining     tickets left: Buy decrements it
//	sold:<id>     tickets sold to buyer id (the ledger)
//	last:<store>  "<n> <ticket>": the last purchase of one Store (its
//	              number n) and the ticket it bought
//
// Buy is one Lua script, atomic on the server: if remaining > 0 it
// decrements remaining, increments sold:<id> and records the purchase in
// last:<store>, all in one HSET, and returns the ticket number
// total-remaining+1. Two buyers never get the same number and remaining
// never goes below zero, however many clients race. Audit checks that the ledger and remaining
// add up to total. The script needs Redis 7 (its #!lua flags make the
// server refuse it whole when out of memory, never half run).
//
// Counts are checked before anything is written: a total or remaining
// that is not a whole number from 0 to 2^53 (Lua counts in doubles, exact
// to 2^53), remaining above total, or a buyer's sold:<id> that is not
// such a number below total, is ErrCorrupt, and nothing is sold.
//
// # Failures, and exactly once
//
// A purchase has an id: its Store's random id and a number. A retry of
// the same purchase, after a connection broke or the server restarted
// mid-call, finds the Store's last purchase recorded with its ticket and
// returns that ticket instead of selling another. So Buy retries freely
// (while its context allows, or DefaultRetry), and go-redis's own retries
// are harmless too. When Buy gives up it tells which it was: nothing sold
// (ErrUnavailable: no attempt reached the server; ctx's error before
// anything was sent), or not known (*UncertainError, wrapping
// ErrUncertain, naming the purchase): then the purchase stays pending on
// its Store and the next Buy settles it first, returning its ticket if it
// was sold. With appendfsync always, a purchase whose reply arrived
// survives a server crash; one that was lost with the crash is made again
// by the retry. A purchase is one command in the append-only file, so a
// crash in the middle of writing it loses it whole: a purchase of three
// commands, wrapped in MULTI/EXEC, came back half made after the next
// restart on Redis 7.0, whose loader cuts a torn block after its last
// whole command.
//
// A buyer killed mid-purchase either ran the script or did not: the
// server has no half-done purchase to repair; a ticket it bought and
// never received counts as sold to it in the ledger. NOAUTH and WRONGPASS
// are ErrAuth; a key holding another type, ErrWrongType; a missing
// counter, ErrNoCounter.
//
// A Store is safe for concurrent use; its calls take turns, one purchase
// in flight at a time. After Close its methods return an error wrapping
// ticketshm.ErrClosed.
package redisstore
