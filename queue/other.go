//go:build !linux

package queue

import (
	"context"
	"errors"

	"github.com/shmkit/shmkit/shm"
)

// Queue is a message queue in shared memory (Linux only).
type Queue struct{}

// Open, Create and OpenOrCreate fail with errors.ErrUnsupported: the
// queue lives in a shm segment, Linux only.
func Open(ctx context.Context, name string) (*Queue, error) { return nil, errors.ErrUnsupported }
func Create(ctx context.Context, name string, capacity, maxSize int) (*Queue, error) {
	return nil, errors.ErrUnsupported
}
func OpenOrCreate(ctx context.Context, name string, capacity, maxSize int) (*Queue, error) {
	return nil, errors.ErrUnsupported
}
func Remove(name string) error                                     { return errors.ErrUnsupported }
func (q *Queue) Send(ctx context.Context, msg []byte) error        { return errors.ErrUnsupported }
func (q *Queue) TrySend(msg []byte) (bool, error)                  { return false, errors.ErrUnsupported }
func (q *Queue) Recv(ctx context.Context, buf []byte) (int, error) { return 0, errors.ErrUnsupported }
func (q *Queue) RecvMsg(ctx context.Context) ([]byte, error)       { return nil, errors.ErrUnsupported }
func (q *Queue) RecvFunc(ctx context.Context, fn func([]byte) error) error {
	return errors.ErrUnsupported
}
func (q *Queue) TryRecv(buf []byte) (int, bool, error) { return 0, false, errors.ErrUnsupported }
func (q *Queue) CloseSend() error                      { return errors.ErrUnsupported }
func (q *Queue) Len() int                              { return 0 }
func (q *Queue) Cap() int                              { return 0 }
func (q *Queue) MaxSize() int                          { return 0 }
func (q *Queue) Segment() *shm.Segment                 { return nil }
func (q *Queue) Close() error                          { return errors.ErrUnsupported }

func Inspect(seg *shm.Segment) (Inspection, error)         { return Inspection{}, errors.ErrUnsupported }
func Repair(ctx context.Context, name string) (int, error) { return 0, errors.ErrUnsupported }
