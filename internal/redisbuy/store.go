package redisbuy

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shmkit/shmkit/ticketshm"
)

// MaxTotal is the most tickets a counter may have: Redis runs scripts in
// Lua, whose numbers are doubles, exact up to 2^53.
const MaxTotal = 1 << 53

// DefaultRetry is how long Buy retries a purchase through a server that
// is away (restarting, unreachable) when its context has no deadline.
const DefaultRetry = 30 * time.Second

// Store is a ticket sale on a Redis hash, through a Client. It is safe
// for concurrent use: its calls take turns (a Store has at most one
// purchase in flight, which is what makes a retried purchase exactly
// once). The Client may be shared. ticketshm/redisstore's Store documents
// each method for users.
type Store struct {
	c     Client
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

// run runs a script by its digest, and by its source if the server does
// not have it cached (a restarted server, a SCRIPT FLUSH), as go-redis's
// Script.Run does.
func run(ctx context.Context, c Client, s script, keys []string, args ...string) (any, error) {
	v, err := c.EvalSha(ctx, s.sha, keys, args...)
	if err != nil {
		if f, reply := c.Classify(err); f == Replied && strings.HasPrefix(strings.TrimPrefix(reply, "ERR "), "NOSCRIPT") {
			return c.Eval(ctx, s.src, keys, args...)
		}
	}
	return v, err
}

// Init makes a counter of total tickets at key. An existing counter is
// kept (nil if its total matches, ErrExists otherwise) unless replace is
// true, which starts the sale over.
func Init(ctx context.Context, c Client, key string, total int64, replace bool) error {
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
	v, err := run(ctx, c, initScript, []string{key}, strconv.FormatInt(total, 10), rep)
	if err != nil {
		return wrap(c, key, err)
	}
	got, ok := v.(string)
	if !ok {
		return fmt.Errorf("%s: redisstore: unexpected reply %T from the init script", key, v)
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
func New(ctx context.Context, c Client, key, buyer string) (*Store, error) {
	if buyer == "" || strings.ContainsAny(buyer, " \r\n") {
		return nil, fmt.Errorf("redisstore: buyer id %q: want a non-empty word", buyer)
	}
	s := &Store{c: c, key: key, buyer: buyer, id: storeID(), retry: DefaultRetry}
	if _, err := s.Remaining(ctx); err != nil {
		return nil, err
	}
	if err := c.ScriptLoad(ctx, buyScript.src); err != nil {
		return nil, wrap(c, key, err)
	}
	return s, nil
}

// storeID returns a new Store's id: 96 random bits, in hex. It must be
// unique among the Stores that ever buy from one counter (a retried
// purchase is recognised by it), not secret, so it comes from
// math/rand/v2, whose generator the runtime seeds from the kernel's
// randomness in every process, rather than crypto/rand: that package
// made each of the bench's buyer processes start 40-100 µs slower
// (bench spawn, p50 of 300, three runs each way: 1642, 1702, 1639 µs
// against 1604, 1596, 1603).
func storeID() string {
	var id [12]byte
	binary.LittleEndian.PutUint64(id[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(id[8:], rand.Uint32())
	return hex.EncodeToString(id[:])
}

// SetRetry sets how long Buy retries a purchase when its context has no
// deadline (DefaultRetry until then).
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

// Buy buys one ticket and returns its number, or an error wrapping
// ticketshm.ErrSoldOut; exactly once through retries, as
// ticketshm/redisstore's Store.Buy documents.
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
	keys := []string{s.key}
	wait := time.Millisecond
	for {
		var t int64
		err := ctx.Err()
		if err == nil {
			var v any
			v, err = run(ctx, s.c, buyScript, keys, s.buyer, s.id, strconv.FormatInt(s.pending, 10))
			if err == nil {
				t, err = toInt64(v)
			}
		}
		if err == nil {
			s.pending = 0
			if t == 0 {
				return 0, fmt.Errorf("%s: %w", s.key, ticketshm.ErrSoldOut)
			}
			return t, nil
		}
		f := classify(s.c, err)
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

// toInt64 reads the buy script's reply as go-redis's Cmd.Int64 does.
func toInt64(v any) (int64, error) {
	switch v := v.(type) {
	case int64:
		return v, nil
	case string:
		return strconv.ParseInt(v, 10, 64)
	}
	return 0, &replyError{fmt.Sprintf("unexpected reply %T from the buy script", v)}
}

// replyError is a reply of the wrong form: the script ran, or may have.
type replyError struct{ msg string }

func (e *replyError) Error() string { return "redisstore: " + e.msg }

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
	v, err := s.c.HMGet(ctx, s.key, "total", "remaining")
	if err != nil {
		return 0, wrap(s.c, s.key, err)
	}
	if len(v) != 2 {
		return 0, fmt.Errorf("%s: redisstore: HMGET of 2 fields returned %d values", s.key, len(v))
	}
	if v[0] == nil && v[1] == nil {
		n, err := s.c.Exists(ctx, s.key)
		if err != nil {
			return 0, wrap(s.c, s.key, err)
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
// counter, unless a purchase is pending: then the record stays and Close
// returns an *UncertainError. The Client belongs to the caller.
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
		s.c.HDel(ctx, s.key, "last:"+s.id) // tidiness only: a record left is harmless
	}
	return nil
}
