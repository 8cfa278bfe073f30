//go:build linux

package backend

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shmkit/shmkit/internal/redisbuy"
	"github.com/shmkit/shmkit/internal/resp"
)

// The redis backend runs ticketshm/redisstore's purchase (internal/redisbuy)
// over internal/resp rather than go-redis: the bench starts a process of
// itself per buyer, and go-redis, with package net (a dynamically linked
// cgo runtime when cgo is available), crypto/tls and x509, made each
// start 1 ms slower. TestNoNet in cmd/bench keeps them out.

// The timeouts go-redis has by default, so that the backend's buyers wait
// for a server as redisstore's would: a connect that takes longer fails
// (nothing sent: Buy retries), and a reply that takes longer breaks the
// connection (the purchase may have run: Buy sends it again, same id).
const (
	dialTimeout = 5 * time.Second
	ioTimeout   = 3 * time.Second
)

// respClient is a redisbuy.Client over one resp connection, dialed when
// first needed and again whenever the last one broke: resp leaves
// redialing to its caller, and here the purchase protocol makes sending
// a request again safe (a purchase carries an id the server remembers).
// It is safe for concurrent use.
type respClient struct {
	addr string

	mu     sync.Mutex
	conn   *resp.Conn // nil until the first call, or after a failed dial
	closed bool
}

var _ redisbuy.Client = (*respClient)(nil)

// dialError is a failed dial: nothing was sent.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }

// get returns a working connection, dialing one if need be.
func (c *respClient) get(ctx context.Context) (*resp.Conn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, fmt.Errorf("%w: %s", resp.ErrClosed, c.addr)
	}
	if c.conn != nil {
		if c.conn.Err() == nil {
			return c.conn, nil
		}
		c.conn.Close() // broken for good (resp's contract); a call still on it gets ErrBroken or ErrClosed, and retries
		c.conn = nil
	}
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	conn, err := resp.Dial(dctx, c.addr)
	if err != nil {
		return nil, &dialError{err}
	}
	conn.SetIOTimeout(ioTimeout)
	c.conn = conn
	return conn, nil
}

func (c *respClient) do(ctx context.Context, args ...string) (resp.Reply, error) {
	conn, err := c.get(ctx)
	if err != nil {
		return resp.Reply{}, err
	}
	return conn.Do(ctx, args...)
}

// Close closes the connection; later calls fail as Closed.
func (c *respClient) Close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("%w: %s", resp.ErrClosed, c.addr)
	}
	c.closed = true
	if c.conn == nil {
		return nil
	}
	return c.conn.Close()
}

func (c *respClient) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *respClient) unexpected(cmd string, r resp.Reply) error {
	return fmt.Errorf("backend: redis %s: %s: unexpected reply %.200v", c.addr, cmd, r)
}

// value turns a reply into go-redis's form, which redisbuy reads.
func value(r resp.Reply) any {
	switch r.Kind {
	case resp.Integer:
		return r.Int
	case resp.SimpleString:
		return r.Str
	case resp.BulkString:
		if r.Null {
			return nil
		}
		return r.Str
	case resp.Error:
		return r.Err()
	case resp.Array:
		if r.Null {
			return nil
		}
		a := make([]any, len(r.Elems))
		for i, e := range r.Elems {
			a[i] = value(e)
		}
		return a
	}
	return nil
}

func evalArgs(cmd, script string, keys, args []string) []string {
	a := make([]string, 0, 3+len(keys)+len(args))
	a = append(a, cmd, script, strconv.Itoa(len(keys)))
	a = append(a, keys...)
	return append(a, args...)
}

func (c *respClient) EvalSha(ctx context.Context, sha1 string, keys []string, args ...string) (any, error) {
	r, err := c.do(ctx, evalArgs("EVALSHA", sha1, keys, args)...)
	if err != nil {
		return nil, err
	}
	return value(r), nil
}

func (c *respClient) Eval(ctx context.Context, script string, keys []string, args ...string) (any, error) {
	r, err := c.do(ctx, evalArgs("EVAL", script, keys, args)...)
	if err != nil {
		return nil, err
	}
	return value(r), nil
}

func (c *respClient) ScriptLoad(ctx context.Context, script string) error {
	_, err := c.do(ctx, "SCRIPT", "LOAD", script)
	return err
}

func (c *respClient) HMGet(ctx context.Context, key string, fields ...string) ([]any, error) {
	r, err := c.do(ctx, append([]string{"HMGET", key}, fields...)...)
	if err != nil {
		return nil, err
	}
	if r.Kind != resp.Array || r.Null || len(r.Elems) != len(fields) {
		return nil, c.unexpected("HMGET", r)
	}
	return value(r).([]any), nil
}

func (c *respClient) Exists(ctx context.Context, key string) (int64, error) {
	r, err := c.do(ctx, "EXISTS", key)
	if err != nil {
		return 0, err
	}
	if r.Kind != resp.Integer {
		return 0, c.unexpected("EXISTS", r)
	}
	return r.Int, nil
}

func (c *respClient) HGetAll(ctx context.Context, key string) (map[string]string, error) {
	r, err := c.do(ctx, "HGETALL", key)
	if err != nil {
		return nil, err
	}
	if r.Kind != resp.Array || r.Null || len(r.Elems)%2 != 0 {
		return nil, c.unexpected("HGETALL", r)
	}
	m := make(map[string]string, len(r.Elems)/2)
	for i := 0; i < len(r.Elems); i += 2 {
		f, v := r.Elems[i], r.Elems[i+1]
		if f.Kind != resp.BulkString || f.Null || v.Kind != resp.BulkString || v.Null {
			return nil, c.unexpected("HGETALL", r)
		}
		m[f.Str] = v.Str
	}
	return m, nil
}

func (c *respClient) HDel(ctx context.Context, key string, fields ...string) error {
	_, err := c.do(ctx, append([]string{"HDEL", key}, fields...)...)
	return err
}

// Classify reads resp's errors, whose contract says which failures may
// follow a sent request (see resp.Conn.Do).
func (c *respClient) Classify(err error) (redisbuy.Failure, string) {
	var reply *resp.ServerError
	var dial *dialError
	var sys *os.SyscallError
	switch {
	case errors.As(err, &reply):
		return redisbuy.Replied, reply.Msg
	case errors.As(err, &dial):
		return redisbuy.DialFailed, ""
	case errors.Is(err, resp.ErrClosed) && errors.Is(err, resp.ErrInterrupted):
		// Close came during the call, after its request may have gone
		// out: Closed would say nothing was sent, and Buy would call a
		// purchase the server may have made certainly not made.
		return redisbuy.Broken, ""
	case errors.Is(err, resp.ErrClosed):
		if c.isClosed() {
			return redisbuy.Closed, ""
		}
		return redisbuy.NotSent, "" // a broken connection get closed under a call: it sent nothing
	case errors.Is(err, resp.ErrBroken):
		return redisbuy.NotSent, ""
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return redisbuy.Interrupted, ""
	case errors.Is(err, resp.ErrProtocol):
		return redisbuy.Unknown, ""
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, os.ErrDeadlineExceeded), errors.As(err, &sys):
		return redisbuy.Broken, ""
	}
	return redisbuy.Unknown, ""
}

// Resends is false: a call sends its request once at most, and a broken
// connection is redialed by the next call, so Classify's answer covers
// the whole call.
func (*respClient) Resends() bool { return false }

// redisClient splits "host:port/key" and makes a client for it.
func redisClient(name string) (*respClient, string, error) {
	addr, key, ok := strings.Cut(name, "/")
	if !ok || addr == "" || key == "" {
		return nil, "", fmt.Errorf("backend: redis store %q: want host:port/key", name)
	}
	if err := resp.CheckAddr(addr); err != nil {
		return nil, "", fmt.Errorf("backend: redis store %q: %w", name, err)
	}
	return &respClient{addr: addr}, key, nil
}

// CheckRedisAddr reports whether addr is an address the redis backend
// can dial: ip:port, [ipv6]:port or localhost:port (no DNS lookups). The
// error wraps resp.ErrAddress and says what is wrong.
func CheckRedisAddr(addr string) error { return resp.CheckAddr(addr) }

// PingRedis checks that a Redis server answers at addr (host:port), within
// a few seconds.
func PingRedis(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	c, err := resp.Dial(ctx, addr)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.Do(ctx, "PING")
	return err
}

// RedisAudit audits the Redis counter name ("host:port/key").
func RedisAudit(ctx context.Context, name string) (redisbuy.Audit, error) {
	c, key, err := redisClient(name)
	if err != nil {
		return redisbuy.Audit{}, err
	}
	defer c.Close()
	return redisbuy.AuditCounter(ctx, c, key)
}

// redisStore is a redisbuy.Store that owns its client.
type redisStore struct {
	*redisbuy.Store
	c *respClient
}

func (s redisStore) Close() error { return s.c.Close() }

func createRedis(ctx context.Context, name string, total int64) error {
	c, key, err := redisClient(name)
	if err != nil {
		return err
	}
	defer c.Close()
	return redisbuy.Init(ctx, c, key, total, true)
}

func openRedis(ctx context.Context, name string) (redisStore, error) {
	c, key, err := redisClient(name)
	if err != nil {
		return redisStore{}, err
	}
	buyer := fmt.Sprintf("p%d.%d", os.Getpid(), buyerSeq.Add(1))
	st, err := redisbuy.New(ctx, c, key, buyer)
	if err != nil {
		c.Close()
		return redisStore{}, err
	}
	return redisStore{st, c}, nil
}

func removeRedis(name string) error {
	c, key, err := redisClient(name)
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = c.do(context.Background(), "DEL", key)
	return err
}
