//go:build !linux

package resp

import (
	"context"
	"errors"
	"time"
)

// The Conn is made of Linux system calls and the runtime poller's
// descriptors; elsewhere Dial fails with errors.ErrUnsupported.

// Conn is a connection to a Redis server (Linux only).
type Conn struct{}

// Dial fails with errors.ErrUnsupported (Linux only).
func Dial(ctx context.Context, addr string) (*Conn, error) {
	if _, err := resolve(addr); err != nil {
		return nil, err
	}
	return nil, errors.ErrUnsupported
}

func (c *Conn) Addr() string                                 { return "" }
func (c *Conn) SetIOTimeout(time.Duration)                   {}
func (c *Conn) Err() error                                   { return errors.ErrUnsupported }
func (c *Conn) Do(context.Context, ...string) (Reply, error) { return Reply{}, errors.ErrUnsupported }
func (c *Conn) Pipeline(context.Context, ...[]string) ([]Reply, error) {
	return nil, errors.ErrUnsupported
}
func (c *Conn) Close() error { return errors.ErrUnsupported }
