package ticketshm

import (
	"errors"

	"github.com/shmkit/shmkit/shm"
)

// Errors returned by this package, wrapped with the segment's path; test
// them with errors.Is.
var (
	// ErrSoldOut is returned by Buy when no ticket is left.
	ErrSoldOut = errors.New("ticketshm: sold out")

	// ErrLayoutVersion is returned when the segment is a Counter of
	// another layout version than this build's: upgrade the program or
	// recreate the segment.
	ErrLayoutVersion = errors.New("ticketshm: counter layout version not supported")

	// ErrTotalMismatch is returned by OpenOrCreate when an existing
	// Counter holds another number of tickets than the one asked for.
	ErrTotalMismatch = errors.New("ticketshm: counter total mismatch")

	// ErrModeMismatch is returned when an existing Counter was created in
	// another Mode than the one asked for.
	ErrModeMismatch = errors.New("ticketshm: counter mode mismatch")

	// ErrClosed is returned by a Store's methods after its Close. It is
	// shm.ErrClosed, so one test covers every store and the segments
	// underneath.
	ErrClosed = shm.ErrClosed

	// ErrCorrupt is returned when the counter's words are impossible
	// (remaining above total, unknown mode, a ticket owned by no slot).
	ErrCorrupt = errors.New("ticketshm: corrupt counter")
)
