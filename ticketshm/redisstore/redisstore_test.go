//go:build linux

package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shmkit/shmkit/internal/redistest"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/ticketshm"
	"github.com/shmkit/shmkit/ticketshm/redisstore"
)

func TestMain(m *testing.M) {
	testproc.Main(m, map[string]testproc.Entry{"buyer": buyerEntry})
}

// server starts a redis-server for the test. Without the binary the test
// is skipped, except where SHMKIT_REQUIRE_REDIS is set (CI), where it fails.
func server(t *testing.T, durable bool) *redistest.Server {
	t.Helper()
	s, err := redistest.Start(filepath.Join(t.TempDir(), "redis"), durable)
	if errors.Is(err, redistest.ErrNoServer) && os.Getenv("SHMKIT_REQUIRE_REDIS") == "" {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	return s
}

func client(t testing.TB, addr string) *redis.Client {
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	if t != nil {
		t.Cleanup(func() { rdb.Close() })
	}
	return rdb
}

// buyerEntry: args addr, key, id, mode. Modes: "sellout" buys until sold
// out; "forever" until killed; "retry" until sold out, retrying through
// server outages. Prints "tickets n n n ..." and "uncertain N unavailable N".
func buyerEntry(args []string) int {
	addr, key, id, mode := args[0], args[1], args[2], args[3]
	rdb := client(nil, addr)
	defer rdb.Close()
	ctx := context.Background()
	st, err := redisstore.New(ctx, rdb, key, id)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("running")
	var tickets []string
	uncertain, unavailable := 0, 0
	for {
		t, err := st.Buy(ctx)
		switch {
		case err == nil:
			if mode != "forever" {
				tickets = append(tickets, strconv.FormatInt(t, 10))
			}
			continue
		case errors.Is(err, ticketshm.ErrSoldOut):
		case mode == "retry" && errors.Is(err, redisstore.ErrUncertain):
			uncertain++
			time.Sleep(5 * time.Millisecond)
			continue
		case mode == "retry" && errors.Is(err, redisstore.ErrUnavailable):
			unavailable++
			time.Sleep(5 * time.Millisecond)
			continue
		default:
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		break
	}
	fmt.Println("tickets", strings.Join(tickets, " "))
	fmt.Println("uncertain", uncertain, "unavailable", unavailable)
	return 0
}

// collect reads the buyers' output: ticket numbers, uncertain and
// unavailable counts.
func collect(t *testing.T, ps []*testproc.Proc) (tickets []int64, uncertain, unavailable int) {
	t.Helper()
	for _, p := range ps {
		p.MustExitWithin(2 * time.Minute)
		for _, line := range strings.Split(p.Output(), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) > 0 && f[0] == "tickets":
				for _, s := range f[1:] {
					n, _ := strconv.ParseInt(s, 10, 64)
					tickets = append(tickets, n)
				}
			case len(f) == 4 && f[0] == "uncertain":
				u, _ := strconv.Atoi(f[1])
				a, _ := strconv.Atoi(f[3])
				uncertain += u
				unavailable += a
			}
		}
	}
	return tickets, uncertain, unavailable
}

func noDuplicates(t *testing.T, tickets []int64, total int64) {
	t.Helper()
	seen := map[int64]bool{}
	for _, n := range tickets {
		if seen[n] || n < 1 || n > total {
			t.Fatalf("ticket %d sold twice or out of range", n)
		}
		seen[n] = true
	}
}

func audit(t *testing.T, rdb *redis.Client, key string) redisstore.Audit {
	t.Helper()
	a, err := redisstore.AuditCounter(context.Background(), rdb, key)
	if err != nil {
		t.Fatal(err)
	}
	if !a.OK() {
		t.Fatalf("audit: sold %d + remaining %d != total %d", a.Sold, a.Remaining, a.Total)
	}
	return a
}

// TestEightBuyers: 8 processes on one key sell exactly the total.
func TestEightBuyers(t *testing.T) {
	srv := server(t, false)
	rdb := client(t, srv.Addr)
	const total = 3000
	if err := redisstore.Init(t.Context(), rdb, "tickets", total, false); err != nil {
		t.Fatal(err)
	}
	var ps []*testproc.Proc
	for i := range 8 {
		ps = append(ps, testproc.Start(t, "buyer", srv.Addr, "tickets", "b"+strconv.Itoa(i), "sellout"))
	}
	tickets, _, _ := collect(t, ps)
	noDuplicates(t, tickets, total)
	if len(tickets) != total {
		t.Fatalf("%d tickets sold, want %d", len(tickets), total)
	}
	if a := audit(t, rdb, "tickets"); a.Sold != total || len(a.PerBuyer) != 8 {
		t.Fatalf("audit %+v", a)
	}
}

// TestKilledBuyers: buyers SIGKILLed mid-purchase at random moments; the
// counter always adds up.
func TestKilledBuyers(t *testing.T) {
	srv := server(t, false)
	rdb := client(t, srv.Addr)
	if err := redisstore.Init(t.Context(), rdb, "tickets", 100_000_000, false); err != nil {
		t.Fatal(err)
	}
	ps := make([]*testproc.Proc, 4)
	start := func(i int) {
		ps[i] = testproc.Start(t, "buyer", srv.Addr, "tickets", "b"+strconv.Itoa(i), "forever")
		ps[i].Expect("running")
	}
	for i := range ps {
		start(i)
	}
	for range 40 {
		time.Sleep(time.Duration(rand.IntN(3000)) * time.Microsecond)
		i := rand.IntN(len(ps))
		ps[i].Kill()
		if code := ps[i].Wait(); code != -9 {
			t.Fatalf("buyer exited %d before its kill:\n%s", code, ps[i].Output())
		}
		start(i)
	}
	for _, p := range ps {
		p.Kill()
		p.Wait()
	}
	if a := audit(t, rdb, "tickets"); a.Sold == 0 {
		t.Fatalf("nothing sold: %+v", a)
	}
}

// TestServerRestart: a server with appendfsync always is SIGKILLed and
// restarted while 4 buyers run. They get clear errors meanwhile; at the
// end no ticket is sold twice, the ledger adds up, and every sale the
// ledger records was either returned to a buyer or reported uncertain.
func TestServerRestart(t *testing.T) {
	srv := server(t, true)
	rdb := client(t, srv.Addr)
	const total = 20000
	if err := redisstore.Init(t.Context(), rdb, "tickets", total, false); err != nil {
		t.Fatal(err)
	}
	var ps []*testproc.Proc
	for i := range 4 {
		p := testproc.Start(t, "buyer", srv.Addr, "tickets", "b"+strconv.Itoa(i), "retry")
		p.Expect("running")
		ps = append(ps, p)
	}
	for { // let the sale get going
		r, err := redisstore.New(t.Context(), rdb, "tickets", "observer")
		if err != nil {
			t.Fatal(err)
		}
		if n, _ := r.Remaining(t.Context()); n < total-2000 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	srv.Kill()
	// Longer than go-redis's dial retries (5 x 100ms by default), so that
	// buyers get ErrUnavailable, not just a slow answer.
	time.Sleep(1500 * time.Millisecond)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	tickets, uncertain, unavailable := collect(t, ps)
	noDuplicates(t, tickets, total)
	a := audit(t, rdb, "tickets")
	t.Logf("%d returned, ledger %d, %d uncertain, %d unavailable", len(tickets), a.Sold, uncertain, unavailable)
	if a.Sold != total || a.Remaining != 0 {
		t.Fatalf("after the restart: %+v", a)
	}
	if unavailable == 0 {
		t.Fatal("the buyers saw no ErrUnavailable while the server was down")
	}
	if missing := int(a.Sold) - len(tickets); missing < 0 || missing > uncertain {
		t.Fatalf("ledger %d, returned %d, uncertain %d: a sale is unaccounted for", a.Sold, len(tickets), uncertain)
	}
}

func TestBadInput(t *testing.T) {
	srv := server(t, false)
	rdb := client(t, srv.Addr)
	ctx := t.Context()
	rdb.Set(ctx, "a-string", "hello", 0)
	rdb.HSet(ctx, "a-hash", "x", "1")
	rdb.HSet(ctx, "bad-remaining", "total", "5", "remaining", "five")
	for _, tc := range []struct {
		key  string
		want error
	}{{"a-string", redisstore.ErrWrongType}, {"a-hash", redisstore.ErrWrongType}, {"bad-remaining", redisstore.ErrWrongType}, {"missing", redisstore.ErrNoCounter}} {
		if _, err := redisstore.New(ctx, rdb, tc.key, "b"); !errors.Is(err, tc.want) {
			t.Errorf("New on %s: %v, want %v", tc.key, err, tc.want)
		}
	}
	if err := redisstore.Init(ctx, rdb, "a-string", 10, false); !errors.Is(err, redisstore.ErrWrongType) {
		t.Errorf("Init on a string: %v, want ErrWrongType", err)
	}
	if err := redisstore.Init(ctx, rdb, "c", 10, false); err != nil {
		t.Fatal(err)
	}
	st, err := redisstore.New(ctx, rdb, "c", "b")
	if err != nil {
		t.Fatal(err)
	}
	if n, err := st.Buy(ctx); n != 1 || err != nil {
		t.Fatalf("Buy = %d, %v", n, err)
	}
	if err := redisstore.Init(ctx, rdb, "c", 10, false); err != nil {
		t.Errorf("Init of the same counter again: %v (it must keep it)", err)
	}
	if n, _ := st.Remaining(ctx); n != 9 {
		t.Errorf("Init clobbered the counter: %d left", n)
	}
	if err := redisstore.Init(ctx, rdb, "c", 11, false); !errors.Is(err, redisstore.ErrExists) {
		t.Errorf("Init with another total: %v, want ErrExists", err)
	}
	if err := redisstore.Init(ctx, rdb, "c", 11, true); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.Remaining(ctx); n != 11 {
		t.Errorf("replace: %d left, want 11", n)
	}
	if _, err := redisstore.New(ctx, rdb, "c", "two words"); err == nil {
		t.Error("a buyer id with a space was accepted")
	}

	expired, cancel := context.WithTimeout(ctx, 0)
	defer cancel()
	if _, err := st.Buy(expired); !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, redisstore.ErrUncertain) {
		t.Errorf("Buy with an expired context: %v, want DeadlineExceeded (and certain)", err)
	}

	srv.Stop()
	if _, err := st.Buy(ctx); !errors.Is(err, redisstore.ErrUnavailable) && !errors.Is(err, redisstore.ErrUncertain) {
		t.Errorf("Buy on a stopped server: %v, want ErrUnavailable", err)
	}
	down := client(t, srv.Addr) // a fresh client: nothing to send on
	if _, err := redisstore.New(ctx, down, "c", "b"); !errors.Is(err, redisstore.ErrUnavailable) {
		t.Errorf("New on a stopped server: %v, want ErrUnavailable", err)
	}
}
