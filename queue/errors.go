package queue

import (
	"errors"

	"github.com/shmkit/shmkit/shm"
)

// Errors returned by this package, wrapped with the segment's path and
// detail; test them with errors.Is. Recv returns io.EOF bare, as a reader
// does, once the queue is closed for sending and drained.
var (
	// ErrTooBig is returned by Send for a message longer than the
	// queue's maximum message size: nothing is sent, nothing truncated.
	ErrTooBig = errors.New("queue: message larger than the queue's maximum size")

	// ErrShortBuffer is returned by Recv for a buffer shorter than the
	// message: nothing is received, the message stays first in line.
	ErrShortBuffer = errors.New("queue: buffer shorter than the queue's maximum message size")

	// ErrSendClosed is returned by Send once any process called
	// CloseSend: a message sent before it is still delivered.
	ErrSendClosed = errors.New("queue: closed for sending")

	// ErrClosed is returned by every method of a closed Queue handle, and
	// of a zero Queue. It is shm.ErrClosed, as ticketshm.ErrClosed is and
	// as package semaphore returns: one errors.Is covers every handle.
	ErrClosed = shm.ErrClosed

	// ErrCapacityMismatch and ErrSizeMismatch are returned by
	// OpenOrCreate when the existing queue was made with another
	// capacity or maximum message size.
	ErrCapacityMismatch = errors.New("queue: capacity mismatch")
	ErrSizeMismatch     = errors.New("queue: maximum message size mismatch")

	// ErrCorrupt is returned when the queue's words cannot have been
	// written by this package: an impossible capacity, a cell in a state
	// the protocol never makes, a message longer than the maximum.
	// Recreate the queue.
	ErrCorrupt = errors.New("queue: corrupt queue")

	// ErrLayoutVersion is returned when the segment is a queue of another
	// layout version (another build of shmkit made it).
	ErrLayoutVersion = errors.New("queue: segment of another layout version")
)
