package redisstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"

	"github.com/redis/go-redis/v9"

	"github.com/shmkit/shmkit/ticketshm"
)

// Store is a ticket sale on a Redis hash. It is a ticketshm.Store; like
// every Store, use one per goroutine (the client underneath may be shared).
type Store struct {
	rdb   redis.UniversalClient
	key   string
	buyer string // this Store's ledger field: sold:<buyer>
}

var _ ticketshm.Store = (*Store)(nil)

// buyScript is the purchase, atomic on the server.
var buyScript = redis.NewScript(`
local h = redis.call('HMGET', KEYS[1], 'total', 'remaining')
local total, remaining = tonumber(h[1]), tonumber(h[2])
if not total or not remaining then
	if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOCOUNTER') end
	return redis.error_reply('NOTCOUNTER')
end
if remaining <= 0 then return 0 end
redis.call('HINCRBY', KEYS[1], 'remaining', -1)
redis.call('HINCRBY', KEYS[1], 'sold:' .. ARGV[1], 1)
return total - remaining + 1
`)

// initScript makes the counter unless it exists (or replace is "1").
var initScript = redis.NewScript(`
if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then
	local t = redis.call('HGET', KEYS[1], 'total')
	if not t then return redis.error_reply('NOTCOUNTER') end
	return tonumber(t)
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'remaining', ARGV[1])
return tonumber(ARGV[1])
`)

// Init makes a counter of total tickets at key. An existing counter is
// kept (nil if its total matches, ErrExists otherwise) unless replace is
// true, which starts the sale over.
func Init(ctx context.Context, rdb redis.UniversalClient, key string, total int64, replace bool) error {
	if total <= 0 {
		return fmt.Errorf("redisstore: %d tickets: want at least 1", total)
	}
	rep := "0"
	if replace {
		rep = "1"
	}
	got, err := initScript.Run(ctx, rdb, []string{key}, total, rep).Int64()
	if err != nil {
		return wrap(key, err, false)
	}
	if got != total {
		return fmt.Errorf("%s: %w: it has %d tickets, not %d", key, ErrExists, got, total)
	}
	return nil
}

// New returns a Store for the counter at key; buyer names this Store's
// ledger entry (several Stores may share one). It checks that the counter
// exists and loads the purchase script.
func New(ctx context.Context, rdb redis.UniversalClient, key, buyer string) (*Store, error) {
	if buyer == "" || strings.ContainsAny(buyer, " \r\n") {
		return nil, fmt.Errorf("redisstore: buyer id %q: want a non-empty word", buyer)
	}
	s := &Store{rdb: rdb, key: key, buyer: buyer}
	if _, err := s.Remaining(ctx); err != nil {
		return nil, err
	}
	if err := buyScript.Load(ctx, rdb).Err(); err != nil {
		return nil, wrap(key, err, false)
	}
	return s, nil
}

// Buy buys one ticket and returns its number (1 for the first sold), or
// an error wrapping ticketshm.ErrSoldOut. See the package doc for what the
// other errors leave behind.
func (s *Store) Buy(ctx context.Context) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", s.key, err) // nothing sent: certain
	}
	t, err := buyScript.Run(ctx, s.rdb, []string{s.key}, s.buyer).Int64()
	if err != nil {
		return 0, wrap(s.key, err, true)
	}
	if t == 0 {
		return 0, fmt.Errorf("%s: %w", s.key, ticketshm.ErrSoldOut)
	}
	return t, nil
}

// Remaining reports how many tickets are left.
func (s *Store) Remaining(ctx context.Context) (int64, error) {
	v, err := s.rdb.HMGet(ctx, s.key, "total", "remaining").Result()
	if err != nil {
		return 0, wrap(s.key, err, false)
	}
	if v[0] == nil && v[1] == nil {
		if n, err := s.rdb.Exists(ctx, s.key).Result(); err == nil && n == 0 {
			return 0, fmt.Errorf("%s: %w", s.key, ErrNoCounter)
		}
	}
	r, ok := v[1].(string)
	n, err := strconv.ParseInt(r, 10, 64)
	if !ok || err != nil || n < 0 {
		return 0, fmt.Errorf("%s: %w: remaining is %v", s.key, ErrWrongType, v[1])
	}
	return n, nil
}

// Close does nothing: the client belongs to the caller.
func (s *Store) Close() error { return nil }

// Audit is a consistency check of a counter.
type Audit struct {
	Total, Remaining, Sold int64
	PerBuyer               map[string]int64
}

// OK reports whether sold + remaining == total.
func (a Audit) OK() bool { return a.Sold+a.Remaining == a.Total && a.Remaining >= 0 }

// AuditCounter reads the whole counter at key in one round trip (HGETALL
// is atomic) and adds up its ledger.
func AuditCounter(ctx context.Context, rdb redis.UniversalClient, key string) (Audit, error) {
	m, err := rdb.HGetAll(ctx, key).Result()
	if err != nil {
		return Audit{}, wrap(key, err, false)
	}
	if len(m) == 0 {
		return Audit{}, fmt.Errorf("%s: %w", key, ErrNoCounter)
	}
	a := Audit{PerBuyer: map[string]int64{}}
	for f, v := range m {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return a, fmt.Errorf("%s: %w: field %s is %q", key, ErrWrongType, f, v)
		}
		switch {
		case f == "total":
			a.Total = n
		case f == "remaining":
			a.Remaining = n
		case strings.HasPrefix(f, "sold:"):
			a.PerBuyer[strings.TrimPrefix(f, "sold:")] = n
			a.Sold += n
		default:
			return a, fmt.Errorf("%s: %w: unknown field %s", key, ErrWrongType, f)
		}
	}
	return a, nil
}

// wrap turns client errors into this package's sentinels. sent says
// whether a failure may have come after the server ran the command.
func wrap(key string, err error, sent bool) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		if sent {
			return fmt.Errorf("%s: %w: %w", key, ErrUncertain, err)
		}
		return fmt.Errorf("%s: %w", key, err)
	}
	msg := err.Error()
	switch {
	case strings.Contains(msg, "NOCOUNTER"):
		return fmt.Errorf("%s: %w", key, ErrNoCounter)
	case strings.Contains(msg, "NOTCOUNTER"), strings.HasPrefix(msg, "WRONGTYPE"):
		return fmt.Errorf("%s: %w: %v", key, ErrWrongType, err)
	}
	if isConnRefused(err) || errors.Is(err, redis.ErrClosed) {
		// Nothing reached the server: a dial that failed, or a client
		// already closed.
		return fmt.Errorf("%s: %w: %v (is redis-server running?)", key, ErrUnavailable, err)
	}
	if strings.HasPrefix(msg, "LOADING") {
		return fmt.Errorf("%s: %w: %v", key, ErrUnavailable, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		// The connection broke: after a request was sent, its outcome
		// is unknown.
		if sent {
			return fmt.Errorf("%s: %w: %v", key, ErrUncertain, err)
		}
		return fmt.Errorf("%s: %w: %v", key, ErrUnavailable, err)
	}
	return fmt.Errorf("%s: redisstore: %w", key, err)
}

func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED)
}
