//go:build !linux

package ticketshm

import (
	"context"
	"errors"

	"github.com/shmkit/shmkit/shm"
)

// The Counter lives in a shm segment and locks with package semaphore:
// Linux only. Elsewhere every entry point fails with errors.ErrUnsupported.

// Counter is a ticket counter in shared memory (Linux only).
type Counter struct{}

var _ Store = (*Counter)(nil)

// Open fails with errors.ErrUnsupported: Counter is Linux only.
func Open(ctx context.Context, name string) (*Counter, error) { return nil, errors.ErrUnsupported }

// Create fails with errors.ErrUnsupported: Counter is Linux only.
func Create(ctx context.Context, name string, total int64, mode Mode) (*Counter, error) {
	return nil, errors.ErrUnsupported
}

// OpenOrCreate fails with errors.ErrUnsupported: Counter is Linux only.
func OpenOrCreate(ctx context.Context, name string, total int64, mode Mode) (*Counter, error) {
	return nil, errors.ErrUnsupported
}

func (c *Counter) Buy(context.Context) (int64, error)       { return 0, errors.ErrUnsupported }
func (c *Counter) Remaining(context.Context) (int64, error) { return 0, errors.ErrUnsupported }
func (c *Counter) Audit(context.Context) (Audit, error)     { return Audit{}, errors.ErrUnsupported }
func (c *Counter) Mode() Mode                               { return 0 }
func (c *Counter) Total() int64                             { return 0 }
func (c *Counter) Slot() int                                { return 0 }
func (c *Counter) Close() error                             { return errors.ErrUnsupported }
func (c *Counter) Populate(context.Context) error           { return errors.ErrUnsupported }

// Buyer is a Counter held by one goroutine (Linux only).
type Buyer struct{}

var _ Store = (*Buyer)(nil)

// Buyer fails with errors.ErrUnsupported: Counter is Linux only.
func (c *Counter) Buyer(context.Context) (*Buyer, error)  { return nil, errors.ErrUnsupported }
func (b *Buyer) Buy(context.Context) (int64, error)       { return 0, errors.ErrUnsupported }
func (b *Buyer) Remaining(context.Context) (int64, error) { return 0, errors.ErrUnsupported }
func (b *Buyer) Close() error                             { return errors.ErrUnsupported }

// Inspect fails with errors.ErrUnsupported: Counter is Linux only.
func Inspect(seg *shm.Segment) (Inspection, error) { return Inspection{}, errors.ErrUnsupported }

// Repair fails with errors.ErrUnsupported: Counter is Linux only.
func Repair(ctx context.Context, name string) (Repaired, error) {
	return Repaired{}, errors.ErrUnsupported
}

// Remove fails with errors.ErrUnsupported: Counter is Linux only.
func Remove(name string) error { return errors.ErrUnsupported }
