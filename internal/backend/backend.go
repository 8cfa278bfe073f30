//go:build linux

// Package backend opens the ticket stores of shmkit by name, for the
// harness and the tests: one switch instead of one per caller.
package backend

import (
	"context"
	"errors"
	"fmt"

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
)

// Names lists the backends this package opens, in the bench's order.
var Names = []string{ShmMutex, ShmLockFree, JSONFlock, JSONNoLock}

// ErrUnknown is returned for a backend name this package does not know.
var ErrUnknown = errors.New("backend: unknown backend")

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
		c, err := ticketshm.OpenCounter(ctx, name, total, mode(kind))
		if err != nil {
			return err
		}
		return c.Close()
	case JSONFlock, JSONNoLock:
		return jsonfile.Create(name, total)
	}
	return fmt.Errorf("%w %q (known: %v)", ErrUnknown, kind, Names)
}

// Open opens an existing store made by Create.
func Open(ctx context.Context, kind, name string) (ticketshm.Store, error) {
	switch kind {
	case ShmMutex, ShmLockFree:
		return ticketshm.Open(name, mode(kind))
	case JSONFlock:
		return jsonfile.OpenFlock(name)
	case JSONNoLock:
		return jsonfile.OpenUnlocked(name)
	}
	return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknown, kind, Names)
}

// Remove deletes the store's file or segment.
func Remove(kind, name string) error {
	if IsJSON(kind) {
		return removeFile(name)
	}
	return shm.Remove(name)
}
