package redisbuy

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/ticketshm"
)

// fakeClient answers the buy script with failures from a script of its
// own, then with tickets, and records the purchase ids it was sent.
type fakeClient struct {
	mu        sync.Mutex
	failures  []fakeErr // returned in turn by EvalSha, before any success
	forever   *fakeErr  // returned by EvalSha once failures are used up
	evals     int       // Eval calls (after NOSCRIPT)
	purchases []string  // ARGV[3] of every buy sent
	sold      map[string]int64
	next      int64
	resends   bool // Resends' answer
}

type fakeErr struct {
	f     Failure
	reply string
	ran   bool // the script ran before the failure (a lost reply)
}

func (e *fakeErr) Error() string { return "fake: " + e.reply }

func (c *fakeClient) buy(args []string, eval bool) (any, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if eval {
		c.evals++
	}
	c.purchases = append(c.purchases, args[2])
	var e *fakeErr
	switch {
	case len(c.failures) > 0:
		e, c.failures = &c.failures[0], c.failures[1:]
	case c.forever != nil:
		e = c.forever
	}
	if e != nil && !e.ran {
		return nil, e
	}
	t, ok := c.sold[args[2]]
	if !ok {
		c.next++
		t = c.next
		c.sold[args[2]] = t
	}
	if e != nil {
		return nil, e
	}
	return t, nil
}

func (c *fakeClient) EvalSha(_ context.Context, sha string, _ []string, args ...string) (any, error) {
	return c.buy(args, false)
}
func (c *fakeClient) Eval(_ context.Context, _ string, _ []string, args ...string) (any, error) {
	return c.buy(args, true)
}
func (c *fakeClient) ScriptLoad(context.Context, string) error { return nil }
func (c *fakeClient) HMGet(context.Context, string, ...string) ([]any, error) {
	return []any{"1000", "1000"}, nil
}
func (c *fakeClient) Exists(context.Context, string) (int64, error) { return 1, nil }
func (c *fakeClient) HGetAll(context.Context, string) (map[string]string, error) {
	return nil, errors.New("fake: no HGETALL")
}
func (c *fakeClient) HDel(context.Context, string, ...string) error { return nil }
func (c *fakeClient) Resends() bool                                 { return c.resends }
func (c *fakeClient) Classify(err error) (Failure, string) {
	var e *fakeErr
	if errors.As(err, &e) {
		return e.f, e.reply
	}
	return Unknown, ""
}

func newFake(t *testing.T) (*fakeClient, *Store) {
	c := &fakeClient{sold: map[string]int64{}}
	st, err := New(t.Context(), c, "k", "b")
	if err != nil {
		t.Fatal(err)
	}
	st.SetRetry(100 * time.Millisecond)
	return c, st
}

// TestBuyFailures: what each Failure makes of a purchase, whichever
// transport reported it: which are retried (with the same purchase id),
// which end Buy at once, which leave the purchase pending.
func TestBuyFailures(t *testing.T) {
	for _, tc := range []struct {
		name      string
		failures  []fakeErr
		forever   *fakeErr
		want      int64 // the ticket, or 0 for an error
		wantErr   error
		uncertain bool
		sends     int  // attempts sent, all with one purchase id
		resends   bool // the client retries by itself: its errors are its last attempt's
	}{
		{name: "broken, the reply lost, then answered", failures: []fakeErr{{f: Broken, ran: true}}, want: 1, sends: 2},
		{name: "broken before running, then answered", failures: []fakeErr{{f: Broken}}, want: 1, sends: 2},
		{name: "dial failed, then answered", failures: []fakeErr{{f: DialFailed}, {f: NotSent}}, want: 1, sends: 3},
		{name: "loading, then answered", failures: []fakeErr{{f: Replied, reply: "LOADING Redis is loading"}, {f: Replied, reply: "BUSY script"}}, want: 1, sends: 3},
		{name: "no script cached: EVAL", failures: []fakeErr{{f: Replied, reply: "NOSCRIPT No matching script"}}, want: 1, sends: 2},
		{name: "no script, as KVRocks says it", failures: []fakeErr{{f: Replied, reply: "ERR NOSCRIPT No matching script"}}, want: 1, sends: 2},
		{name: "no counter", failures: []fakeErr{{f: Replied, reply: "NOCOUNTER no ticket counter at this key"}}, wantErr: ErrNoCounter, sends: 1},
		{name: "not a counter", failures: []fakeErr{{f: Replied, reply: "NOTCOUNTER a hash"}}, wantErr: ErrWrongType, sends: 1},
		{name: "wrong type", failures: []fakeErr{{f: Replied, reply: "WRONGTYPE Operation"}}, wantErr: ErrWrongType, sends: 1},
		{name: "corrupt", failures: []fakeErr{{f: Replied, reply: "CORRUPT total 5, remaining 6"}}, wantErr: ErrCorrupt, sends: 1},
		{name: "auth", failures: []fakeErr{{f: Replied, reply: "NOAUTH Authentication required."}}, wantErr: ErrAuth, sends: 1},
		{name: "another error reply", failures: []fakeErr{{f: Replied, reply: "ERR something"}}, wantErr: &fakeErr{}, sends: 1},
		{name: "closed", failures: []fakeErr{{f: Closed}}, wantErr: ErrUnavailable, sends: 1},
		{name: "never reached", forever: &fakeErr{f: DialFailed}, wantErr: ErrUnavailable},
		{name: "broken to the end", forever: &fakeErr{f: Broken}, wantErr: ErrUncertain, uncertain: true},
		{name: "reached once, then never", failures: []fakeErr{{f: Broken}}, forever: &fakeErr{f: DialFailed}, wantErr: ErrUncertain, uncertain: true},
		{name: "interrupted", failures: []fakeErr{{f: Interrupted}}, wantErr: ErrUncertain, uncertain: true, sends: 1},
		{name: "unknown", failures: []fakeErr{{f: Unknown}}, wantErr: ErrUncertain, uncertain: true, sends: 1},
		{name: "resent by the client, never reached after", forever: &fakeErr{f: DialFailed}, resends: true, wantErr: ErrUncertain, uncertain: true},
		{name: "resent by the client, then refused", failures: []fakeErr{{f: Replied, reply: "NOAUTH Authentication required."}}, resends: true, wantErr: ErrAuth, uncertain: true, sends: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, st := newFake(t)
			c.failures, c.forever, c.resends = tc.failures, tc.forever, tc.resends
			n, err := st.Buy(t.Context())
			if n != tc.want || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Buy = %d, %v; want %d, %v", n, err, tc.want, tc.wantErr)
			}
			var fe *fakeErr
			if tc.wantErr != nil && !errors.Is(err, tc.wantErr) && !(errors.As(tc.wantErr, &fe) && errors.As(err, &fe)) {
				t.Fatalf("Buy: %v, want %v", err, tc.wantErr)
			}
			if got := errors.Is(err, ErrUncertain); got != tc.uncertain || (st.Pending() != "") != tc.uncertain {
				t.Fatalf("Buy: %v (pending %q): uncertain %v, want %v", err, st.Pending(), got, tc.uncertain)
			}
			if tc.sends > 0 && len(c.purchases) != tc.sends {
				t.Errorf("%d attempts sent, want %d", len(c.purchases), tc.sends)
			}
			for _, p := range c.purchases {
				if p != "1" {
					t.Errorf("purchases sent %v: want every attempt to be purchase 1", c.purchases)
					break
				}
			}
			if strings.Contains(tc.name, "NOSCRIPT") || strings.HasPrefix(tc.name, "no script") {
				if c.evals != 1 {
					t.Errorf("%d EVALs after NOSCRIPT, want 1", c.evals)
				}
			}
			// The next Buy settles a pending purchase: the same id, and
			// its ticket if it was sold.
			c.failures, c.forever = nil, nil
			sold := len(c.sold)
			n, err = st.Buy(t.Context())
			want := int64(sold + 1)
			if tc.uncertain && sold == 1 {
				want = 1 // the pending purchase had been sold: its ticket
			}
			if n != want || err != nil || st.Pending() != "" {
				t.Fatalf("the next Buy = %d, %v (pending %q); want %d", n, err, st.Pending(), want)
			}
			if last := c.purchases[len(c.purchases)-1]; tc.uncertain != (last == "1") {
				t.Errorf("the next Buy sent purchase %s (uncertain before: %v)", last, tc.uncertain)
			}
		})
	}
}

// TestBuyContext: a context done before Buy sends nothing and is
// certain; Close with a purchase pending says so; after Close, ErrClosed.
func TestBuyContext(t *testing.T) {
	c, st := newFake(t)
	done, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := st.Buy(done); !errors.Is(err, context.Canceled) || errors.Is(err, ErrUncertain) || len(c.purchases) != 0 {
		t.Fatalf("Buy with a done context: %v, %d sent; want Canceled, certain, none sent", err, len(c.purchases))
	}
	c.forever = &fakeErr{f: Broken, ran: true}
	if _, err := st.Buy(t.Context()); !errors.Is(err, ErrUncertain) {
		t.Fatalf("Buy: %v, want ErrUncertain", err)
	}
	var ue *UncertainError
	if err := st.Close(); !errors.As(err, &ue) || ue.Purchase != st.id+"/1" {
		t.Fatalf("Close with a purchase pending: %v", err)
	}
	if _, err := st.Buy(t.Context()); !errors.Is(err, ticketshm.ErrClosed) {
		t.Fatalf("Buy after Close: %v", err)
	}
}

// FuzzParseCount: parseCount accepts exactly the canonical decimals from
// 0 to 2^53, as the buy script's count() does, and reads them back.
func FuzzParseCount(f *testing.F) {
	for _, s := range []string{"0", "1", "9007199254740992", "9007199254740993", "05", "-1", "1e3", " 5", "", "99999999999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := parseCount(s)
		canonical := s == "0" || len(s) > 0 && len(s) <= 16 && s[0] != '0' && strings.Trim(s, "0123456789") == ""
		if canonical {
			v, err := strconv.ParseInt(s, 10, 64)
			canonical = err == nil && v <= MaxTotal
		}
		if ok != canonical || ok && strconv.FormatInt(n, 10) != s {
			t.Fatalf("parseCount(%q) = %d, %v", s, n, ok)
		}
	})
}
