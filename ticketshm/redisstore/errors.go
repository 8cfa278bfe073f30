package redisstore

import (
	"github.com/shmkit/shmkit/internal/redisbuy"
	"github.com/shmkit/shmkit/ticketshm"
)

// Errors returned by this package, wrapped with the key; test them with
// errors.Is.
var (
	// ErrNoCounter is returned when the key does not hold a counter: make
	// it with Init.
	ErrNoCounter = redisbuy.ErrNoCounter

	// ErrWrongType is returned when the key holds a value of another Redis
	// type, or a hash that is not a ticket counter.
	ErrWrongType = redisbuy.ErrWrongType

	// ErrCorrupt is returned when the counter's fields are impossible:
	// a total or remaining that is not a whole number from 0 to 2^53
	// (a float, an exponent, a sign, leading zeros), or remaining above
	// total. Nothing is sold from such a counter. It is ticketshm's
	// ErrCorrupt, so one test covers every store.
	ErrCorrupt = ticketshm.ErrCorrupt

	// ErrAuth is returned when the server refuses the client: NOAUTH (a
	// password is required) or WRONGPASS. Nothing was sold.
	ErrAuth = redisbuy.ErrAuth

	// ErrUnavailable is returned when the server could not be reached
	// while Buy retried, and no attempt of the purchase reached it:
	// nothing changed.
	ErrUnavailable = redisbuy.ErrUnavailable

	// ErrUncertain is wrapped by *UncertainError: a purchase may or may
	// not have happened. The next Buy on the same Store settles it.
	ErrUncertain = redisbuy.ErrUncertain

	// ErrExists is returned by Init when a counter with another total
	// exists at the key and replace is false.
	ErrExists = redisbuy.ErrExists

	// ErrTooLarge is returned by Init for a total above MaxTotal.
	ErrTooLarge = redisbuy.ErrTooLarge
)

// UncertainError is returned by Buy when a purchase was sent and no
// answer came back before the Store gave up retrying it (its context
// ended, or the server stayed away longer than the Store's retry time):
// the server may have sold a ticket for it. The purchase stays pending on
// its Store: the next Buy there sends the same purchase again and returns
// its ticket if it was sold, or buys one now if it was not; the server
// keeps the Store's last purchase for that. Dropping the Store instead
// leaves a ticket sold that no caller received, which Audit counts as
// sold.
type UncertainError struct {
	Key      string
	Purchase string // the purchase id: the Store's id and its purchase number
	Err      error  // the last failure
}

func (e *UncertainError) Error() string {
	return (&redisbuy.UncertainError{Key: e.Key, Purchase: e.Purchase, Err: e.Err}).Error()
}

// Unwrap returns ErrUncertain and the last failure.
func (e *UncertainError) Unwrap() []error { return []error{ErrUncertain, e.Err} }

// public turns the protocol's *UncertainError into this package's; other
// errors pass as they are.
func public(err error) error {
	if ue, ok := err.(*redisbuy.UncertainError); ok {
		return &UncertainError{Key: ue.Key, Purchase: ue.Purchase, Err: ue.Err}
	}
	return err
}
