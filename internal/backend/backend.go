//go:build linux

// Package backend opens the ticket stores of shmkit by name, for the
// harness and the tests: one switch instead of one per caller.
package backend

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
	"github.com/shmkit/shmkit/ticketshm/jsonfile"
)

// The backend names, as the bench's -backends flag spells them.
const (
	ShmMutex    = "shm-mutex"
	ShmLockFree = "shm-lockfree"
	JSONFlock   = "json-flock"
	JSONNoLock  = "json-nolock"
	Redis       = "redis" // name is "host:port/key"
)

// Names lists the backends this package opens on this host alone, in the
// bench's order; Redis needs a server besides.
var Names = []string{ShmMutex, ShmLockFree, JSONFlock, JSONNoLock}

// ErrUnknown is returned for a backend name this package does not know.
var ErrUnknown = errors.New("backend: unknown backend")

// IsRedis reports whether the backend keeps its count on a Redis server
// (name is then "host:port/key").
func IsRedis(kind string) bool { return kind == Redis }

// IsJSON reports whether the backend keeps its count in a JSON file (name
// is then a file path) rather than a shm segment (a segment name).
func IsJSON(kind string) bool { return kind == JSONFlock || kind == JSONNoLock }

func mode(kind string) ticketshm.Mode {
	if kind == ShmLockFree {
		return ticketshm.LockFree
	}
	return ticketshm.Locked
}

// Create makes a fresh store with total tickets, replacing an old one.
func Create(ctx context.Context, kind, name string, total int64) error {
	switch kind {
	case ShmMutex, ShmLockFree:
		if err := shm.Remove(name); err != nil && !errors.Is(err, shm.ErrInvalidName) && !isNotExist(err) {
			return err
		}
		c, err := ticketshm.OpenOrCreate(ctx, name, total, mode(kind))
		if err != nil {
			return err
		}
		if err := c.Close(); err != nil {
			shm.Remove(name) // made here, and no caller will remove it
			return err
		}
		return nil
	case JSONFlock, JSONNoLock:
		return jsonfile.Reset(name, total)
	case Redis:
		return createRedis(ctx, name, total)
	}
	return fmt.Errorf("%w %q (known: %v)", ErrUnknown, kind, append(Names, Redis))
}

// Open opens an existing store made by Create.
func Open(ctx context.Context, kind, name string) (ticketshm.Store, error) {
	switch kind {
	case ShmMutex, ShmLockFree:
		c, err := ticketshm.Open(ctx, name)
		if err != nil {
			return nil, err
		}
		if c.Mode() != mode(kind) {
			c.Close()
			return nil, fmt.Errorf("%s: %w: it is %v, the %s backend wants %v", name, ticketshm.ErrModeMismatch, c.Mode(), kind, mode(kind))
		}
		return c, nil
	case JSONFlock:
		return jsonfile.OpenFlock(name)
	case JSONNoLock:
		return jsonfile.OpenUnlocked(name)
	case Redis:
		return openRedis(ctx, name)
	}
	return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknown, kind, append(Names, Redis))
}

var buyerSeq atomic.Int64

// Remove deletes the store's file, segment or key.
func Remove(kind, name string) error {
	if IsRedis(kind) {
		return removeRedis(name)
	}
	if IsJSON(kind) {
		return removeFile(name)
	}
	return shm.Remove(name)
}

// OpenBuyer is Open for a process whose one goroutine buys in a loop, as
// the bench's buyers do: a Counter comes as its Buyer (the in-process lock
// taken once, not per buy, and Buy one dynamic call, as on the Counter),
// so nothing else of this process may use the Counter until closeAll.
// With populate, a Counter's pages are faulted in first (Populate), so
// that a sale measures the lock, not the first touch of each ledger page.
func OpenBuyer(ctx context.Context, kind, name string, populate bool) (st ticketshm.Store, closeAll func() error, err error) {
	st, err = Open(ctx, kind, name)
	if err != nil {
		return nil, nil, err
	}
	c, ok := st.(*ticketshm.Counter)
	if !ok {
		return st, st.Close, nil
	}
	if populate {
		_ = c.Populate(ctx) // best effort: without it, the sale takes the faults
	}
	b, err := c.Buyer(ctx)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return b, func() error {
		err := b.Close()
		if cerr := c.Close(); err == nil {
			err = cerr
		}
		return err
	}, nil
}
