//go:build linux

package backend_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/shmkit/shmkit/internal/backend"
	"github.com/shmkit/shmkit/internal/redistest"
	"github.com/shmkit/shmkit/internal/redistest/tserver"
	"github.com/shmkit/shmkit/internal/resp"
	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/ticketshm"
	"github.com/shmkit/shmkit/ticketshm/redisstore"
)

func TestMain(m *testing.M) {
	testproc.Main(m, map[string]testproc.Entry{"buyers": buyersEntry})
}

// server starts a redis-server for the test (tserver.Start).
func server(t *testing.T, durable bool) *redistest.Server { return tserver.Start(t, durable) }

// openStore opens a Store of the counter key on addr through transport:
// "resp" is the bench's backend, "go-redis" is redisstore, as users have
// it (go-redis's retries off: Buy retries).
func openStore(ctx context.Context, transport, addr, key, id string) (ticketshm.Store, error) {
	if transport == "resp" {
		return backend.Open(ctx, backend.Redis, addr+"/"+key)
	}
	rdb := redis.NewClient(&redis.Options{Addr: addr, MaxRetries: -1, DialTimeout: 200 * time.Millisecond})
	st, err := redisstore.New(ctx, rdb, key, id)
	if err != nil {
		rdb.Close()
		return nil, err
	}
	return closeBoth{st, rdb}, nil
}

type closeBoth struct {
	*redisstore.Store
	rdb *redis.Client
}

func (s closeBoth) Close() error { s.Store.Close(); return s.rdb.Close() }

// sellOut buys until sold out through st, calling Buy again after
// ErrUncertain (which settles the pending purchase) and ErrUnavailable,
// and returns the tickets it got.
func sellOut(ctx context.Context, st ticketshm.Store) (tickets []int64, uncertain, unavailable int, err error) {
	for {
		t, err := st.Buy(ctx)
		switch {
		case err == nil:
			tickets = append(tickets, t)
		case errors.Is(err, ticketshm.ErrSoldOut):
			return tickets, uncertain, unavailable, nil
		case errors.Is(err, redisstore.ErrUncertain):
			uncertain++
		case errors.Is(err, redisstore.ErrUnavailable):
			unavailable++
		default:
			return tickets, uncertain, unavailable, err
		}
	}
}

// openStores opens n Stores through transport, named name.0, name.1...
func openStores(ctx context.Context, transport, addr, key, name string, n int) ([]ticketshm.Store, error) {
	var sts []ticketshm.Store
	for i := range n {
		st, err := openStore(ctx, transport, addr, key, name+"."+strconv.Itoa(i))
		if err != nil {
			for _, st := range sts {
				st.Close()
			}
			return nil, fmt.Errorf("%s: %w", transport, err)
		}
		sts = append(sts, st)
	}
	return sts, nil
}

// sellAll sells out through each Store from a goroutine of its own, and
// returns every ticket they got; it closes the Stores.
func sellAll(ctx context.Context, sts []ticketshm.Store) (all []int64, uncertain, unavailable int, err error) {
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i, st := range sts {
		wg.Go(func() {
			ts, u, a, e := sellOut(ctx, st)
			st.Close()
			mu.Lock()
			defer mu.Unlock()
			all = append(all, ts...)
			uncertain += u
			unavailable += a
			if e != nil && err == nil {
				err = fmt.Errorf("buyer %d: %w", i, e)
			}
		})
	}
	wg.Wait()
	return all, uncertain, unavailable, err
}

// buyersEntry: args transport, addr, key, stores. Prints "running" once
// its Stores are open, then "tickets n n n ..." and "uncertain N
// unavailable N".
func buyersEntry(args []string) int {
	n, _ := strconv.Atoi(args[3])
	ctx := context.Background()
	sts, err := openStores(ctx, args[0], args[1], args[2], fmt.Sprintf("proc%d", os.Getpid()), n)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("running")
	tickets, u, a, err := sellAll(ctx, sts)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	s := make([]string, len(tickets))
	for i, t := range tickets {
		s[i] = strconv.FormatInt(t, 10)
	}
	fmt.Println("tickets", strings.Join(s, " "))
	fmt.Println("uncertain", u, "unavailable", a)
	return 0
}

// TestCrossCheck: buyers through go-redis (redisstore) and through the
// bench's resp backend sell one counter together, from goroutines of
// this process and of four others, while the server (appendfsync
// always) is SIGKILLed and restarted again and again. Every ticket is
// sold exactly once and received by exactly one buyer, and both
// transports' audits agree: the two run one protocol.
func TestCrossCheck(t *testing.T) {
	srv := server(t, true)
	ctx := t.Context()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	defer rdb.Close()
	const total = 8000
	if err := redisstore.Init(ctx, rdb, "tickets", total, false); err != nil {
		t.Fatal(err)
	}
	var ps []*testproc.Proc
	for _, transport := range []string{"resp", "go-redis", "resp", "go-redis"} {
		p := testproc.Start(t, "buyers", transport, srv.Addr, "tickets", "2")
		p.Expect("running")
		ps = append(ps, p)
	}
	type result struct {
		tickets                []int64
		uncertain, unavailable int
		err                    error
	}
	here := make(chan result, 2)
	for _, transport := range []string{"resp", "go-redis"} {
		sts, err := openStores(ctx, transport, srv.Addr, "tickets", "here."+transport, 2)
		if err != nil {
			t.Fatal(err)
		}
		go func() {
			var r result
			r.tickets, r.uncertain, r.unavailable, r.err = sellAll(ctx, sts)
			here <- r
		}()
	}

	remaining := func() int64 {
		for {
			if a, err := redisstore.AuditCounter(ctx, rdb, "tickets"); err == nil {
				return a.Remaining
			}
			time.Sleep(time.Millisecond)
		}
	}
	restarts := tserver.CrashWhileSelling(t, srv, 6, 200*time.Millisecond, remaining)

	var tickets []int64
	uncertain, unavailable := 0, 0
	for range 2 {
		r := <-here
		if r.err != nil {
			t.Error(r.err)
		}
		tickets = append(tickets, r.tickets...)
		uncertain += r.uncertain
		unavailable += r.unavailable
	}
	pt, pu, pa := tserver.Collect(ps)
	tickets, uncertain, unavailable = append(tickets, pt...), uncertain+pu, unavailable+pa
	seen := map[int64]bool{}
	for _, n := range tickets {
		if seen[n] || n < 1 || n > total {
			t.Fatalf("ticket %d received twice or out of range", n)
		}
		seen[n] = true
	}
	a, err := redisstore.AuditCounter(ctx, rdb, "tickets")
	if err != nil {
		t.Fatal(err)
	}
	b, err := backend.RedisAudit(ctx, srv.Addr+"/tickets")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d restarts: %d tickets received, ledger %d over %d buyers, %d uncertain, %d unavailable", restarts, len(tickets), a.Sold, len(a.PerBuyer), uncertain, unavailable)
	if restarts < 3 {
		t.Errorf("only %d restarts before the sale ended", restarts)
	}
	if !a.OK() || a.Sold != total || a.Remaining != 0 || int64(len(tickets)) != a.Sold {
		t.Fatalf("ledger %d sold + %d remaining of %d, %d received by buyers: want all %d sold and received", a.Sold, a.Remaining, a.Total, len(tickets), total)
	}
	if a.Total != b.Total || a.Sold != b.Sold || a.Remaining != b.Remaining || len(a.PerBuyer) != len(b.PerBuyer) || len(a.PerBuyer) != 12 {
		t.Fatalf("audits differ: go-redis %+v, resp %+v (want 12 buyers)", a, b)
	}
}

// TestStoppedServer: a server that stops answering (SIGSTOP) for longer
// than the backend's I/O timeout breaks the connection with the purchase
// sent; Buy sends it again on a new one, and when the server wakes up and
// runs both, the second returns the first's ticket: one sold, received.
func TestStoppedServer(t *testing.T) {
	if testing.Short() {
		t.Skip("waits out the 3s I/O timeout")
	}
	srv := server(t, false)
	ctx := t.Context()
	name := srv.Addr + "/c"
	if err := backend.Create(ctx, backend.Redis, name, 10); err != nil {
		t.Fatal(err)
	}
	st, err := backend.Open(ctx, backend.Redis, name)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.Buy(ctx); n != 1 || err != nil {
		t.Fatalf("Buy = %d, %v", n, err)
	}
	pid := srv.Pid()
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(4500*time.Millisecond, func() { syscall.Kill(pid, syscall.SIGCONT) })
	start := time.Now()
	n, err := st.Buy(ctx)
	t.Logf("Buy through a stopped server: %d, %v after %v", n, err, time.Since(start))
	if n != 2 || err != nil {
		t.Fatalf("Buy through a stopped server = %d, %v; want ticket 2", n, err)
	}
	a, err := backend.RedisAudit(ctx, name)
	if err != nil || a.Sold != 2 || a.Remaining != 8 {
		t.Fatalf("audit %+v, %v: want 2 sold, 8 left", a, err)
	}
}

// TestRedisBackend: the backend's life cycle and its errors.
func TestRedisBackend(t *testing.T) {
	srv := server(t, false)
	ctx := t.Context()
	name := srv.Addr + "/k"
	if err := backend.PingRedis(ctx, srv.Addr); err != nil {
		t.Fatal(err)
	}
	if err := backend.Create(ctx, backend.Redis, name, 3); err != nil {
		t.Fatal(err)
	}
	st, err := backend.Open(ctx, backend.Redis, name)
	if err != nil {
		t.Fatal(err)
	}
	for want := int64(1); want <= 3; want++ {
		if n, err := st.Buy(ctx); n != want || err != nil {
			t.Fatalf("Buy = %d, %v; want %d", n, err, want)
		}
	}
	if _, err := st.Buy(ctx); !errors.Is(err, ticketshm.ErrSoldOut) {
		t.Fatalf("Buy of a sold-out counter: %v", err)
	}
	if n, err := st.Remaining(ctx); n != 0 || err != nil {
		t.Fatalf("Remaining = %d, %v", n, err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Buy(ctx); !errors.Is(err, redisstore.ErrUnavailable) || errors.Is(err, redisstore.ErrUncertain) {
		t.Errorf("Buy after Close: %v, want ErrUnavailable, certain", err)
	}
	if err := backend.Remove(backend.Redis, name); err != nil {
		t.Fatal(err)
	}
	if _, err := backend.Open(ctx, backend.Redis, name); !errors.Is(err, redisstore.ErrNoCounter) {
		t.Errorf("Open of a removed counter: %v, want ErrNoCounter", err)
	}
	for _, bad := range []string{"redis.example.com:6379/k", srv.Addr, srv.Addr + "/"} {
		if _, err := backend.Open(ctx, backend.Redis, bad); err == nil {
			t.Errorf("Open %q: no error", bad)
		}
	}
	if err := backend.CheckRedisAddr("redis.example.com:6379"); !errors.Is(err, resp.ErrAddress) {
		t.Errorf("CheckRedisAddr of a host name: %v, want resp.ErrAddress", err)
	}
	srv.Stop()
	if err := backend.PingRedis(ctx, srv.Addr); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("PingRedis with no server: %v, want ECONNREFUSED", err)
	}
	_, err = backend.Open(ctx, backend.Redis, name)
	if !errors.Is(err, redisstore.ErrUnavailable) || !strings.Contains(err.Error(), "is redis-server running?") {
		t.Errorf("Open with no server: %v, want ErrUnavailable and a hint", err)
	}
}
