//go:build linux

// Package backend opens the ticket stores of shmkit by name, for the
// harness and the tests: one switch instead of one per caller.
package backend

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
	"github.com/shmkit/shmkit/ticketshm/jsonfile"
	"github.com/shmkit/shmkit/ticketshm/redisstore"
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
		rdb, key, err := redisClient(name)
		if err != nil {
			return err
		}
		defer rdb.Close()
		return redisstore.Init(ctx, rdb, key, total, true)
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
		rdb, key, err := redisClient(name)
		if err != nil {
			return nil, err
		}
		buyer := fmt.Sprintf("p%d.%d", os.Getpid(), buyerSeq.Add(1))
		st, err := redisstore.New(ctx, rdb, key, buyer)
		if err != nil {
			rdb.Close()
			return nil, err
		}
		return redisStore{st, rdb}, nil
	}
	return nil, fmt.Errorf("%w %q (known: %v)", ErrUnknown, kind, append(Names, Redis))
}

var buyerSeq atomic.Int64

// redisStore is a redisstore.Store that owns its client.
type redisStore struct {
	*redisstore.Store
	rdb *redis.Client
}

func (s redisStore) Close() error { return s.rdb.Close() }

// RedisAudit audits the Redis counter name ("host:port/key").
func RedisAudit(ctx context.Context, name string) (redisstore.Audit, error) {
	rdb, key, err := redisClient(name)
	if err != nil {
		return redisstore.Audit{}, err
	}
	defer rdb.Close()
	return redisstore.AuditCounter(ctx, rdb, key)
}

// redisClient splits "host:port/key" and makes a client for it. go-redis
// does not retry (MaxRetries -1): redisstore's Buy retries a purchase
// itself, exactly once, and says when it gives up.
func redisClient(name string) (*redis.Client, string, error) {
	addr, key, ok := strings.Cut(name, "/")
	if !ok || addr == "" || key == "" {
		return nil, "", fmt.Errorf("backend: redis store %q: want host:port/key", name)
	}
	return redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1}), key, nil
}

// PingRedis checks that a Redis server answers at addr (host:port), within
// a few seconds.
func PingRedis(ctx context.Context, addr string) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1})
	defer rdb.Close()
	return rdb.Ping(ctx).Err()
}

// Remove deletes the store's file, segment or key.
func Remove(kind, name string) error {
	if IsRedis(kind) {
		rdb, key, err := redisClient(name)
		if err != nil {
			return err
		}
		defer rdb.Close()
		return rdb.Del(context.Background(), key).Err()
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
