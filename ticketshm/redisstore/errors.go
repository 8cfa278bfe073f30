package redisstore

import "errors"

// Errors returned by this package, wrapped with the key; test them with
// errors.Is.
var (
	// ErrNoCounter is returned when the key does not hold a counter: make
	// it with Init.
	ErrNoCounter = errors.New("redisstore: no ticket counter at this key (create it with Init)")

	// ErrWrongType is returned when the key holds a value of another Redis
	// type, or a hash that is not a ticket counter.
	ErrWrongType = errors.New("redisstore: key holds something else than a ticket counter")

	// ErrUnavailable is returned when the server cannot be reached: the
	// request was not sent, nothing changed.
	ErrUnavailable = errors.New("redisstore: Redis server unavailable")

	// ErrUncertain is returned when the connection failed after a purchase
	// was sent: it may or may not have happened. Audit (the ledger) knows.
	ErrUncertain = errors.New("redisstore: purchase outcome unknown (connection lost after sending)")

	// ErrExists is returned by Init when a counter with another total
	// exists at the key and replace is false.
	ErrExists = errors.New("redisstore: a counter with another total exists at this key (pass replace to overwrite)")
)
