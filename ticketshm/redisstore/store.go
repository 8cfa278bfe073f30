package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shmkit/shmkit/ticketshm"
)

// MaxTotal is the most tickets a counter may have: Redis runs scripts in
// Lua, whose numbers are doubles, exact up to 2^53.
const MaxTotal = 1 << 53

// DefaultRetry is how long Buy retries a purchase through a server that
// is away (restarting, unreachable) when its context has no deadline.
const DefaultRetry = 30 * time.Second

// Store is a ticket sale on a Redis hash. It is a ticketshm.Store, safe
// for concurrent use: its calls take turns (a Store has at most one
// purchase in flight, which is what makes a retried purchase exactly
// once); open more Stores for more purchases at a time. The client
// underneath may be shared.
type Store struct {
	rdb   redis.UniversalClient
	key   string
	buyer string // this Store's ledger field: sold:<buyer>
	id    string // this Store's purchase record: last:<id>

	mu      sync.Mutex
	closed  bool
	seq     int64 // purchases this Store has begun
	pending int64 // a purchase whose outcome is unknown; 0 none
	sent    bool  // an attempt of pending may have reached the server
	retry   time.Duration
}

var _ ticketshm.Store = (*Store)(nil)

// buyScript is the purchase, atomic on the server. A purchase is named by
// its Store (ARGV[2]) and number (ARGV[3]); the Store's last purchase and
// its ticket are kept in last:<store>, so that the same purchase sent
// again (a retry after a lost reply, by go-redis or by Buy) returns the
// ticket it bought instead of buying another. Every check comes before
// the first write, and the shebang makes Redis refuse the whole script
// up front when it is out of memory, so no purchase is ever half made.
var buyScript = redis.NewScript(`#!lua
local h = redis.call('HMGET', KEYS[1], 'total', 'remaining', 'last:' .. ARGV[2])
if not h[1] and not h[2] then
	if redis.call('EXISTS', KEYS[1]) == 0 then return redis.error_reply('NOCOUNTER') end
	return redis.error_reply('NOTCOUNTER')
end
local function count(s)
	if type(s) ~= 'string' or #s > 16 or not (s == '0' or string.match(s, '^[1-9]%d*$')) then return nil end
	local n = tonumber(s)
	if n > 9007199254740992 then return nil end
	return n
end
local total, remaining = count(h[1]), count(h[2])
if not total or not remaining or remaining > total then
	return redis.error_reply('CORRUPT total ' .. tostring(h[1]) .. ', remaining ' .. tostring(h[2]))
end
if h[3] then
	local seq, t = string.match(h[3], '^(%d+) (%d+)$')
	if seq == ARGV[3] then return tonumber(t) end
end
if remaining == 0 then return 0 end
local t = total - remaining + 1
redis.call('HINCRBY', KEYS[1], 'remaining', -1)
redis.call('HINCRBY', KEYS[1], 'sold:' .. ARGV[1], 1)
redis.call('HSET', KEYS[1], 'last:' .. ARGV[2], ARGV[3] .. ' ' .. string.format('%d', t))
return t
`)

// initScript makes the counter unless it exists (or replace is "1").
var initScript = redis.NewScript(`#!lua
if ARGV[2] ~= '1' and redis.call('EXISTS', KEYS[1]) == 1 then
	local t = redis.call('HGET', KEYS[1], 'total')
	if not t then return redis.error_reply('NOTCOUNTER') end
	return t
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'total', ARGV[1], 'remaining', ARGV[1])
return ARGV[1]
`)

// Init makes a counter of total tickets at key. An existing counter is
// kept (nil if its total matches, ErrExists otherwise) unless replace is
// true, which starts the sale over.
func Init(ctx context.Context, rdb redis.UniversalClient, key string, total int64, replace bool) error {
	if total <= 0 {
		return fmt.Errorf("redisstore: %d tickets: want at least 1", total)
	}
	if total > MaxTotal {
		return fmt.Errorf("%s: %w: %d tickets", key, ErrTooLarge, total)
	}
	rep := "0"
	if replace {
		rep = "1"
	}
	got, err := initScript.Run(ctx, rdb, []string{key}, total, rep).Text()
	if err != nil {
		return wrap(key, err)
	}
	n, ok := parseCount(got)
	if !ok {
		return fmt.Errorf("%s: %w: total is %q", key, ErrCorrupt, got)
	}
	if n != total {
		return fmt.Errorf("%s: %w: it has %d tickets, not %d", key, ErrExists, n, total)
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
	var id [12]byte
	rand.Read(id[:]) // never fails (crypto/rand's contract since Go 1.24)
	s := &Store{rdb: rdb, key: key, buyer: buyer, id: hex.EncodeToString(id[:]), retry: DefaultRetry}
	if _, err := s.Remaining(ctx); err != nil {
		return nil, err
	}
	if err := buyScript.Load(ctx, rdb).Err(); err != nil {
		return nil, wrap(key, err)
	}
	return s, nil
}

// SetRetry sets how long Buy retries a purchase when its context has no
// deadline (DefaultRetry until then). A context's deadline, when it has
// one, bounds the retries instead.
func (s *Store) SetRetry(d time.Duration) {
	s.mu.Lock()
	s.retry = d
	s.mu.Unlock()
}

// Pending returns the id of this Store's purchase whose outcome is
// unknown (after an *UncertainError), or "" if there is none.
func (s *Store) Pending() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pending == 0 {
		return ""
	}
	return s.purchase()
}

func (s *Store) purchase() string { return s.id + "/" + strconv.FormatInt(s.pending, 10) }

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
// then settles that same purchase first. Errors that no retry can change
// come at once: ErrNoCounter, ErrWrongType, ErrCorrupt, ErrAuth.
func (s *Store) Buy(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, fmt.Errorf("%s: %w", s.key, ticketshm.ErrClosed)
	}
	if s.pending == 0 {
		if err := ctx.Err(); err != nil {
			return 0, fmt.Errorf("%s: %w", s.key, err) // nothing sent: certain
		}
		s.seq++
		s.pending, s.sent = s.seq, false
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(s.retry)
	}
	wait := time.Millisecond
	for {
		var t int64
		err := ctx.Err()
		if err == nil {
			t, err = buyScript.Run(ctx, s.rdb, []string{s.key}, s.buyer, s.id, s.pending).Int64()
		}
		if err == nil {
			s.pending = 0
			if t == 0 {
				return 0, fmt.Errorf("%s: %w", s.key, ticketshm.ErrSoldOut)
			}
			return t, nil
		}
		f := classify(err)
		s.sent = s.sent || f.sent
		if f.final || ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return 0, s.giveUp(f.err(s.key, err))
		}
		select {
		case <-time.After(wait):
		case <-ctx.Done():
		}
		wait = min(2*wait, 200*time.Millisecond)
	}
}

// giveUp ends a Buy that failed with err: certain if no attempt of the
// purchase may have reached the server (the purchase is dropped), else
// uncertain (it stays pending).
func (s *Store) giveUp(err error) error {
	if !s.sent {
		s.pending = 0
		return err
	}
	return &UncertainError{Key: s.key, Purchase: s.purchase(), Err: err}
}

// Remaining reports how many tickets are left.
func (s *Store) Remaining(ctx context.Context) (int64, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return 0, fmt.Errorf("%s: %w", s.key, ticketshm.ErrClosed)
	}
	v, err := s.rdb.HMGet(ctx, s.key, "total", "remaining").Result()
	if err != nil {
		return 0, wrap(s.key, err)
	}
	if v[0] == nil && v[1] == nil {
		n, err := s.rdb.Exists(ctx, s.key).Result()
		if err != nil {
			return 0, wrap(s.key, err)
		}
		if n == 0 {
			return 0, fmt.Errorf("%s: %w", s.key, ErrNoCounter)
		}
		return 0, fmt.Errorf("%s: %w: a hash without total and remaining", s.key, ErrWrongType)
	}
	t, tok := v[0].(string)
	r, rok := v[1].(string)
	total, ok1 := parseCount(t)
	rem, ok2 := parseCount(r)
	if !tok || !rok || !ok1 || !ok2 || rem > total {
		return 0, fmt.Errorf("%s: %w: total %v, remaining %v", s.key, ErrCorrupt, v[0], v[1])
	}
	return rem, nil
}

// Close ends the Store: later calls return an error wrapping
// ticketshm.ErrClosed. It removes the Store's purchase record from the
// counter, unless a purchase is pending: then the record stays (Audit
// counts its ticket as sold) and Close returns an *UncertainError, since
// no caller may have that ticket. The client belongs to the caller.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("%s: %w", s.key, ticketshm.ErrClosed)
	}
	s.closed = true
	if s.pending != 0 {
		return &UncertainError{Key: s.key, Purchase: s.purchase(), Err: errors.New("closed with the purchase pending")}
	}
	if s.seq > 0 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		s.rdb.HDel(ctx, s.key, "last:"+s.id) // tidiness only: a record left is harmless
	}
	return nil
}

// parseCount parses a count as the server-side script does: a whole
// number from 0 to MaxTotal in canonical decimal.
func parseCount(s string) (int64, bool) {
	if s == "" || len(s) > 16 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n <= MaxTotal
}

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
		return Audit{}, wrap(key, err)
	}
	if len(m) == 0 {
		return Audit{}, fmt.Errorf("%s: %w", key, ErrNoCounter)
	}
	a := Audit{PerBuyer: map[string]int64{}}
	var haveTotal, haveRemaining bool
	for f, v := range m {
		switch {
		case f == "total", f == "remaining", strings.HasPrefix(f, "sold:"):
			n, ok := parseCount(v)
			if !ok {
				return a, fmt.Errorf("%s: %w: field %s is %q", key, ErrCorrupt, f, v)
			}
			switch f {
			case "total":
				a.Total, haveTotal = n, true
			case "remaining":
				a.Remaining, haveRemaining = n, true
			default:
				a.PerBuyer[strings.TrimPrefix(f, "sold:")] = n
				a.Sold += n
			}
		case strings.HasPrefix(f, "last:"):
			// A Store's last purchase, for its retries.
		default:
			return a, fmt.Errorf("%s: %w: unknown field %s", key, ErrWrongType, f)
		}
	}
	if !haveTotal || !haveRemaining {
		return a, fmt.Errorf("%s: %w: a hash without total and remaining", key, ErrWrongType)
	}
	if a.Remaining > a.Total {
		return a, fmt.Errorf("%s: %w: remaining %d above total %d", key, ErrCorrupt, a.Remaining, a.Total)
	}
	return a, nil
}

// failure is what a client error says about a purchase.
type failure struct {
	sent  bool // the request may have reached the server
	final bool // no retry can change it
	kind  error
}

func (f failure) err(key string, err error) error {
	if f.kind == nil {
		return fmt.Errorf("%s: redisstore: %w", key, err)
	}
	if f.kind == err {
		return fmt.Errorf("%s: %w", key, err)
	}
	return fmt.Errorf("%s: %w: %v", key, f.kind, err)
}

// classify sorts a client error from a command that was about to be
// sent: was it sent, can a retry help, and which sentinel it is.
func classify(err error) failure {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		// The context ended during the call: before or after the
		// request went out, we cannot tell.
		return failure{sent: true, final: true, kind: err}
	}
	msg := err.Error()
	switch {
	case strings.HasPrefix(msg, "NOCOUNTER"):
		return failure{final: true, kind: ErrNoCounter}
	case strings.HasPrefix(msg, "NOTCOUNTER"), strings.HasPrefix(msg, "WRONGTYPE"):
		return failure{final: true, kind: ErrWrongType}
	case strings.HasPrefix(msg, "CORRUPT"):
		return failure{final: true, kind: ErrCorrupt}
	case strings.HasPrefix(msg, "NOAUTH"), strings.HasPrefix(msg, "WRONGPASS"), strings.HasPrefix(msg, "NOPERM"):
		return failure{final: true, kind: ErrAuth}
	case strings.HasPrefix(msg, "LOADING"), strings.HasPrefix(msg, "BUSY"), strings.HasPrefix(msg, "TRYAGAIN"),
		strings.HasPrefix(msg, "MASTERDOWN"), strings.HasPrefix(msg, "OOM"):
		// Refused before running: nothing changed; later it may run.
		return failure{kind: ErrUnavailable}
	case errors.Is(err, redis.ErrClosed):
		return failure{final: true, kind: ErrUnavailable} // the client was closed: nothing sent
	case isConnRefused(err), errors.Is(err, redis.ErrPoolTimeout):
		// Nothing reached the server: a dial that failed, no connection
		// free in the pool.
		return failure{kind: ErrUnavailable}
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		// The connection broke: after the request was sent, perhaps.
		return failure{sent: true, kind: ErrUnavailable}
	}
	var reply redis.Error
	if errors.As(err, &reply) {
		return failure{final: true} // another error reply: the script did not run
	}
	return failure{sent: true, final: true}
}

// wrap turns a client error from a command that changes nothing into
// this package's sentinels.
func wrap(key string, err error) error {
	if err == nil {
		return nil
	}
	f := classify(err)
	e := f.err(key, err)
	if errors.Is(e, ErrUnavailable) && isConnRefused(err) {
		e = fmt.Errorf("%w (is redis-server running?)", e)
	}
	return e
}

func isConnRefused(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || errors.Is(err, syscall.ECONNREFUSED)
}
