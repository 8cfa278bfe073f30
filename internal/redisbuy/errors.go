package redisbuy

import (
	"errors"
	"fmt"

	"github.com/shmkit/shmkit/ticketshm"
)

// Errors returned by this package, wrapped with the key; test them with
// errors.Is. ticketshm/redisstore exports them under the same names, and
// their text names that package, the one users import.
var (
	// ErrNoCounter is returned when the key does not hold a counter: make
	// it with Init.
	ErrNoCounter = errors.New("redisstore: no ticket counter at this key (create it with Init)")

	// ErrWrongType is returned when the key holds a value of another Redis
	// type, or a hash that is not a ticket counter.
	ErrWrongType = errors.New("redisstore: key holds something else than a ticket counter")

	// ErrCorrupt is returned when the counter's fields are impossible:
	// a total or remaining that is not a whole number from 0 to 2^53,
	// or remaining above total. It is ticketshm's ErrCorrupt.
	ErrCorrupt = ticketshm.ErrCorrupt

	// ErrAuth is returned when the server refuses the client: NOAUTH,
	// WRONGPASS or NOPERM. Nothing was sold.
	ErrAuth = errors.New("redisstore: the Redis server refused the client's credentials")

	// ErrUnavailable is returned when the server could not be reached
	// while Buy retried, and no attempt of the purchase reached it:
	// nothing changed.
	ErrUnavailable = errors.New("redisstore: Redis server unavailable")

	// ErrUncertain is wrapped by *UncertainError: a purchase may or may
	// not have happened. The next Buy on the same Store settles it.
	ErrUncertain = errors.New("redisstore: purchase outcome unknown")

	// ErrExists is returned by Init when a counter with another total
	// exists at the key and replace is false.
	ErrExists = errors.New("redisstore: a counter with another total exists at this key (pass replace to overwrite)")

	// ErrTooLarge is returned by Init for a total above MaxTotal.
	ErrTooLarge = errors.New("redisstore: more tickets than a Redis script counts exactly (2^53)")
)

// UncertainError is returned by Buy when a purchase was sent and no
// answer came back before the Store gave up retrying it: the server may
// have sold a ticket for it. The purchase stays pending on its Store:
// the next Buy there sends the same purchase again and returns its
// ticket if it was sold, or buys one now if it was not.
type UncertainError struct {
	Key      string
	Purchase string // the purchase id: the Store's id and its purchase number
	Err      error  // the last failure
}

func (e *UncertainError) Error() string {
	return fmt.Sprintf("%s: %v: purchase %s: %v; the Store's next Buy settles it", e.Key, ErrUncertain, e.Purchase, e.Err)
}

// Unwrap returns ErrUncertain and the last failure.
func (e *UncertainError) Unwrap() []error { return []error{ErrUncertain, e.Err} }
