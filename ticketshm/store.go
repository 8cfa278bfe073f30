package ticketshm

import "context"

// Store is a ticket sale: the interface every backend implements (shared
// memory with a lock or without, the course notes' JSON file with flock or
// without, later Redis). The bench and the lessons use only Store.
//
// Every Store of this module is safe for concurrent use by many
// goroutines unless its doc says otherwise (a Buyer is one goroutine's),
// and each process opens its own.
type Store interface {
	// Remaining reports how many tickets are left. It may be stale by the
	// time it returns.
	Remaining(ctx context.Context) (int64, error)

	// Buy buys one ticket and returns its number, or ErrSoldOut. A correct
	// store never returns one number twice.
	Buy(ctx context.Context) (ticket int64, err error)

	// Close releases the store's resources (not the tickets).
	Close() error
}
