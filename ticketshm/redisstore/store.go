package redisstore

import (
	"context"
	"errors"
	"io"
	"net"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shmkit/shmkit/internal/redisbuy"
	"github.com/shmkit/shmkit/ticketshm"
)

// MaxTotal is the most tickets a counter may have: Redis runs scripts in
// Lua, whose numbers are doubles, exact up to 2^53.
const MaxTotal = 1 << 53

// DefaultRetry is how long Buy retries a purchase through a server that
// is away (restarting, unreachable) when its context has no deadline.
const DefaultRetry = 30 * time.Second

// The protocol's own constants are these: a difference either way would
// be a negative constant converted to uint64, which does not compile.
const (
	_ = uint64(MaxTotal-redisbuy.MaxTotal) + uint64(redisbuy.MaxTotal-MaxTotal)
	_ = uint64(DefaultRetry-redisbuy.DefaultRetry) + uint64(redisbuy.DefaultRetry-DefaultRetry)
)

// Store is a ticket sale on a Redis hash. It is a ticketshm.Store, safe
// for concurrent use: its calls take turns (a Store has at most one
// purchase in flight, which is what makes a retried purchase exactly
// once); open more Stores for more purchases at a time. The client
// underneath may be shared.
type Store struct {
	s *redisbuy.Store
}

var _ ticketshm.Store = (*Store)(nil)

// Init makes a counter of total tickets at key. An existing counter is
// kept (nil if its total matches, ErrExists otherwise) unless replace is
// true, which starts the sale over.
func Init(ctx context.Context, rdb redis.UniversalClient, key string, total int64, replace bool) error {
	return redisbuy.Init(ctx, newClient(rdb), key, total, replace)
}

// New returns a Store for the counter at key; buyer names this Store's
// ledger entry (several Stores may share one). It checks that the counter
// exists and loads the purchase script.
func New(ctx context.Context, rdb redis.UniversalClient, key, buyer string) (*Store, error) {
	s, err := redisbuy.New(ctx, newClient(rdb), key, buyer)
	if err != nil {
		return nil, err
	}
	return &Store{s}, nil
}

// SetRetry sets how long Buy retries a purchase when its context has no
// deadline (DefaultRetry until then). A context's deadline, when it has
// one, bounds the retries instead.
func (s *Store) SetRetry(d time.Duration) { s.s.SetRetry(d) }

// Pending returns the id of this Store's purchase whose outcome is
// unknown (after an *UncertainError), or "" if there is none.
func (s *Store) Pending() string { return s.s.Pending() }

// Buy buys one ticket and returns its number (1 for the first sold), or
// an error wrapping ticketshm.ErrSoldOut.
//
// A purchase is exactly once. Through a server that restarts or a
// connection that breaks, Buy sends the same purchase again until the
// server answers, while ctx allows (DefaultRetry, or SetRetry's time,
// without a deadline); the server recognises a purchase it has already
// made and returns its ticket. When Buy gives up it says which of two
// things is true: nothing was sold (ErrUnavailable, or ctx's error, for a
// purchase that never reached the server), or the outcome is unknown (an
// *UncertainError, wrapping ErrUncertain): the next Buy on this Store
// then settles that same purchase first. Through a client with go-redis's
// own retries on (its default), a purchase that failed is always
// uncertain: go-redis reports its last attempt only, and an earlier one
// may have reached the server. Errors that no retry can change come at
// once: ErrNoCounter, ErrWrongType, ErrCorrupt, ErrAuth.
func (s *Store) Buy(ctx context.Context) (int64, error) {
	t, err := s.s.Buy(ctx)
	return t, public(err)
}

// Remaining reports how many tickets are left.
func (s *Store) Remaining(ctx context.Context) (int64, error) { return s.s.Remaining(ctx) }

// Close ends the Store: later calls return an error wrapping
// ticketshm.ErrClosed. It removes the Store's purchase record from the
// counter, unless a purchase is pending: then the record stays (Audit
// counts its ticket as sold) and Close returns an *UncertainError, since
// no caller may have that ticket. The client belongs to the caller.
func (s *Store) Close() error { return public(s.s.Close()) }

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
	a, err := redisbuy.AuditCounter(ctx, newClient(rdb), key)
	return Audit(a), err
}

// client runs the purchase protocol's commands on go-redis.
type client struct {
	rdb     redis.UniversalClient
	resends bool // rdb may send a command again by itself
}

// newClient wraps rdb. go-redis retries a command (MaxRetries, 3 unless
// set; -1 is none) on a new connection after a broken one, and its error
// is the last attempt's. A *redis.Client's options say whether it does;
// any other client (a cluster or ring redirects and retries in ways of
// its own) counts as one that resends.
func newClient(rdb redis.UniversalClient) client {
	resends := true
	if c, ok := rdb.(*redis.Client); ok {
		resends = c.Options().MaxRetries > 0 // normalised by NewClient: -1 is 0
	}
	return client{rdb, resends}
}

func (c client) Resends() bool { return c.resends }

func anyArgs(args []string) []any {
	a := make([]any, len(args))
	for i, s := range args {
		a[i] = s
	}
	return a
}

func (c client) EvalSha(ctx context.Context, sha1 string, keys []string, args ...string) (any, error) {
	return c.rdb.EvalSha(ctx, sha1, keys, anyArgs(args)...).Result()
}

func (c client) Eval(ctx context.Context, script string, keys []string, args ...string) (any, error) {
	return c.rdb.Eval(ctx, script, keys, anyArgs(args)...).Result()
}

func (c client) ScriptLoad(ctx context.Context, script string) error {
	return c.rdb.ScriptLoad(ctx, script).Err()
}

func (c client) HMGet(ctx context.Context, key string, fields ...string) ([]any, error) {
	return c.rdb.HMGet(ctx, key, fields...).Result()
}

func (c client) Exists(ctx context.Context, key string) (int64, error) {
	return c.rdb.Exists(ctx, key).Result()
}

func (c client) HGetAll(ctx context.Context, key string) (map[string]string, error) {
	return c.rdb.HGetAll(ctx, key).Result()
}

func (c client) HDel(ctx context.Context, key string, fields ...string) error {
	return c.rdb.HDel(ctx, key, fields...).Err()
}

// Classify reads go-redis's errors: its context errors, its error
// replies (redis.Error), a closed client, a failed dial or an empty
// pool (nothing sent), and net's errors for a connection that broke.
func (client) Classify(err error) (redisbuy.Failure, string) {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return redisbuy.Interrupted, ""
	}
	var reply redis.Error
	switch {
	case errors.As(err, &reply):
		return redisbuy.Replied, err.Error()
	case errors.Is(err, redis.ErrClosed):
		return redisbuy.Closed, ""
	case isConnRefused(err):
		return redisbuy.DialFailed, ""
	case errors.Is(err, redis.ErrPoolTimeout):
		return redisbuy.NotSent, ""
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return redisbuy.Broken, ""
	}
	return redisbuy.Unknown, ""
}

func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED)
}
