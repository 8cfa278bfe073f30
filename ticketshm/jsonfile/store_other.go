//go:build !linux

package jsonfile

import (
	"context"
	"errors"

	"github.com/shmkit/shmkit/ticketshm"
)

// The stores use flock(2) and positional I/O as on Linux, where shmkit
// runs; elsewhere every entry point fails with errors.ErrUnsupported.

// Reset fails with errors.ErrUnsupported (Linux only).
func Reset(path string, count int64) error { return errors.ErrUnsupported }

// FlockStore is the flock-guarded store (Linux only).
type FlockStore struct{}

// UnlockedStore is the unguarded store (Linux only).
type UnlockedStore struct{}

var (
	_ ticketshm.Store = (*FlockStore)(nil)
	_ ticketshm.Store = (*UnlockedStore)(nil)
)

// OpenFlock fails with errors.ErrUnsupported (Linux only).
func OpenFlock(path string) (*FlockStore, error) { return nil, errors.ErrUnsupported }

// OpenUnlocked fails with errors.ErrUnsupported (Linux only).
func OpenUnlocked(path string) (*UnlockedStore, error) { return nil, errors.ErrUnsupported }

func (s *FlockStore) Buy(context.Context) (int64, error)          { return 0, errors.ErrUnsupported }
func (s *FlockStore) Remaining(context.Context) (int64, error)    { return 0, errors.ErrUnsupported }
func (s *FlockStore) Close() error                                { return errors.ErrUnsupported }
func (s *UnlockedStore) Buy(context.Context) (int64, error)       { return 0, errors.ErrUnsupported }
func (s *UnlockedStore) Remaining(context.Context) (int64, error) { return 0, errors.ErrUnsupported }
func (s *UnlockedStore) Close() error                             { return errors.ErrUnsupported }
func (s *UnlockedStore) Torn() int64                              { return 0 }
