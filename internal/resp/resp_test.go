//go:build linux

package resp_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/redistest"
	"github.com/shmkit/shmkit/internal/redistest/tserver"
	"github.com/shmkit/shmkit/internal/resp"
)

// server starts a redis-server for the test. Without the binary the test
// is skipped, except where SHMKIT_REQUIRE_REDIS is set (CI), where it
// fails.
func server(t *testing.T) *redistest.Server { return benchServer(t) }

func benchServer(t testing.TB) *redistest.Server { return tserver.Start(t, false) }

func dial(t *testing.T, addr string) *resp.Conn {
	t.Helper()
	c, err := resp.Dial(t.Context(), addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// noLeak fails the test if it ends with more goroutines than it began
// with (after a moment for those ending to end). Package process's
// spawner, which redistest's first server starts and which lives as long
// as the process by design, is not counted.
func noLeak(t *testing.T) {
	before := goroutines()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for goroutines() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := goroutines(); n > before {
			buf := make([]byte, 1<<20)
			t.Errorf("%d goroutines left behind:\n%s", n-before, buf[:runtime.Stack(buf, true)])
		}
	})
}

// goroutines is runtime.NumGoroutine without package process's spawner.
func goroutines() int {
	n := runtime.NumGoroutine()
	buf := make([]byte, 1<<20)
	if strings.Contains(string(buf[:runtime.Stack(buf, true)]), "created by github.com/shmkit/shmkit/process.spawn") {
		n--
	}
	return n
}

func bulk(s string) resp.Reply { return resp.Reply{Kind: resp.BulkString, Str: s} }
func integer(n int64) resp.Reply {
	return resp.Reply{Kind: resp.Integer, Int: n}
}

// TestReplies: every RESP2 reply type, as a real server sends it.
func TestReplies(t *testing.T) {
	noLeak(t)
	srv := server(t)
	c := dial(t, srv.Addr)
	ctx := t.Context()
	big := strings.Repeat("0123456789abcdef", 1<<16) // 1 MiB: larger than the Reader's buffer
	for _, tc := range []struct {
		args []string
		want resp.Reply
	}{
		{[]string{"PING"}, resp.Reply{Kind: resp.SimpleString, Str: "PONG"}},
		{[]string{"SET", "k", "v\r\nwith CRLF and \x00"}, resp.Reply{Kind: resp.SimpleString, Str: "OK"}},
		{[]string{"GET", "k"}, bulk("v\r\nwith CRLF and \x00")},
		{[]string{"SET", "empty", ""}, resp.Reply{Kind: resp.SimpleString, Str: "OK"}},
		{[]string{"GET", "empty"}, bulk("")},
		{[]string{"GET", "missing"}, resp.Reply{Kind: resp.BulkString, Null: true}},
		{[]string{"SET", "big", big}, resp.Reply{Kind: resp.SimpleString, Str: "OK"}},
		{[]string{"GET", "big"}, bulk(big)},
		{[]string{"INCR", "n"}, integer(1)},
		{[]string{"INCRBY", "n", "-9223372036854775807"}, integer(-9223372036854775806)},
		{[]string{"DECRBY", "n", "2"}, integer(-9223372036854775808)},
		{[]string{"RPUSH", "l", "a", "b"}, integer(2)},
		{[]string{"LRANGE", "l", "0", "-1"}, resp.Reply{Kind: resp.Array, Elems: []resp.Reply{bulk("a"), bulk("b")}}},
		{[]string{"LRANGE", "nolist", "0", "-1"}, resp.Reply{Kind: resp.Array, Elems: []resp.Reply{}}},
		{[]string{"BLPOP", "nolist", "0.01"}, resp.Reply{Kind: resp.Array, Null: true}},
		{[]string{"EVAL", "return {1, {2, 'x', {}}, redis.error_reply('E1 nested'), redis.status_reply('FINE')}", "0"},
			resp.Reply{Kind: resp.Array, Elems: []resp.Reply{
				integer(1),
				{Kind: resp.Array, Elems: []resp.Reply{integer(2), bulk("x"), {Kind: resp.Array, Elems: []resp.Reply{}}}},
				{Kind: resp.Error, Str: "E1 nested"},
				{Kind: resp.SimpleString, Str: "FINE"},
			}}},
	} {
		got, err := c.Do(ctx, tc.args...)
		if err != nil {
			t.Fatalf("%.40q: %v", tc.args, err)
		}
		if diff := cmp.Diff(tc.want, got); diff != "" {
			t.Errorf("%.40q: (-want +got)\n%.2000s", tc.args, diff)
		}
	}
}

// TestServerErrors: an error reply is a *ServerError with its prefix,
// and the Conn goes on working, alone or in a pipeline of errors.
func TestServerErrors(t *testing.T) {
	noLeak(t)
	srv := server(t)
	c := dial(t, srv.Addr)
	ctx := t.Context()
	c.Do(ctx, "SET", "s", "x")
	for _, tc := range []struct {
		args   []string
		prefix string
	}{
		{[]string{"NOSUCHCOMMAND"}, "ERR"},
		{[]string{"LPUSH", "s", "y"}, "WRONGTYPE"},
		{[]string{"EVALSHA", strings.Repeat("0", 40), "0"}, "NOSCRIPT"},
		{[]string{"EVAL", "return redis.error_reply('NOCOUNTER no counter here')", "0"}, "NOCOUNTER"},
		{[]string{"EVAL", "return redis.error_reply('ONEWORD')", "0"}, "ERR"}, // Redis 7 adds ERR to a bare word
	} {
		r, err := c.Do(ctx, tc.args...)
		var se *resp.ServerError
		if !errors.As(err, &se) || se.Prefix() != tc.prefix || r.Kind != resp.Error || r.Str != se.Msg {
			t.Errorf("%q: %v (%v), want a *ServerError with prefix %s", tc.args, err, r, tc.prefix)
		}
		if r, err := c.Do(ctx, "PING"); err != nil || r.Str != "PONG" {
			t.Fatalf("PING after %q: %v, %v", tc.args, r, err)
		}
	}

	var cmds [][]string
	for i := range 50 {
		cmds = append(cmds, []string{"INCR", "s"}, []string{"SET", "k" + strconv.Itoa(i), strconv.Itoa(i)}, []string{"NOSUCH", strconv.Itoa(i)}, []string{"GET", "k" + strconv.Itoa(i)})
	}
	rs, err := c.Pipeline(ctx, cmds...)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 50 {
		r := rs[4*i : 4*i+4]
		if r[0].Err() == nil || !strings.HasPrefix(r[0].Str, "ERR") || r[1].Str != "OK" ||
			!strings.Contains(r[2].Str, "NOSUCH") || r[3].Kind != resp.BulkString || r[3].Str != strconv.Itoa(i) {
			t.Fatalf("pipeline, command group %d: %v", i, r)
		}
	}
	if r, err := c.Do(ctx, "GET", "k49"); err != nil || r.Str != "49" {
		t.Fatalf("Do after the pipeline: %v, %v", r, err)
	}
}

// TestConcurrent: goroutines sharing one Conn each get their own replies.
func TestConcurrent(t *testing.T) {
	noLeak(t)
	srv := server(t)
	c := dial(t, srv.Addr)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			key := "g" + strconv.Itoa(g)
			for i := range 300 {
				val := strconv.Itoa(g*1000 + i)
				var err error
				switch i % 3 {
				case 0:
					_, err = c.Do(ctx, "SET", key, val)
					if err == nil {
						var r resp.Reply
						r, err = c.Do(ctx, "GET", key)
						if err == nil && r.Str != val {
							err = fmt.Errorf("GET %s = %v, want %s", key, r, val)
						}
					}
				case 1:
					var rs []resp.Reply
					rs, err = c.Pipeline(ctx, []string{"SET", key, val}, []string{"GET", key}, []string{"BAD" + key})
					if err == nil && (rs[1].Str != val || !strings.Contains(rs[2].Str, "BAD"+key)) {
						err = fmt.Errorf("pipeline of %s = %v", key, rs)
					}
				case 2:
					var r resp.Reply
					r, err = c.Do(ctx, "INCR", key+".n")
					if err == nil && r.Int != int64(i/3+1) {
						err = fmt.Errorf("INCR %s.n = %v, want %d", key, r, i/3+1)
					}
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestServerKilled: a server killed while a call waits for its reply
// ends the call at once with an errors.Is-able error; the Conn stays
// broken (ErrBroken, nothing sent) until the caller dials again.
func TestServerKilled(t *testing.T) {
	noLeak(t)
	srv := server(t)
	c := dial(t, srv.Addr)
	done := make(chan error)
	go func() {
		_, err := c.Do(context.Background(), "BLPOP", "nolist", "0") // waits forever
		done <- err
	}()
	time.Sleep(50 * time.Millisecond) // the request is on its way
	srv.Kill()
	var err error
	select {
	case err = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Do still waiting 10s after the server was killed")
	}
	if !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Do on a killed server: %v, want io.ErrUnexpectedEOF or ECONNRESET", err)
	}
	if errors.Is(err, resp.ErrBroken) || c.Err() == nil {
		t.Fatalf("the failing call says ErrBroken (%v), or Err() is nil (%v)", err, c.Err())
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Do(t.Context(), "PING"); !errors.Is(err, resp.ErrBroken) || !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, syscall.ECONNRESET) {
		t.Fatalf("Do on the broken Conn, server back: %v, want ErrBroken wrapping the first failure", err)
	}
	if r, err := dial(t, srv.Addr).Do(t.Context(), "PING"); err != nil || r.Str != "PONG" {
		t.Fatalf("a new Conn: %v, %v", r, err)
	}
}

// TestContext: a call's context bounds it, before the request (nothing
// sent, the Conn unchanged) and during it (the Conn broken); so does
// SetIOTimeout, with its own error.
func TestContext(t *testing.T) {
	noLeak(t)
	srv := server(t)
	ctx := t.Context()

	c := dial(t, srv.Addr)
	done, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.Do(done, "PING"); !errors.Is(err, context.Canceled) || c.Err() != nil {
		t.Fatalf("Do with a done context: %v (Conn: %v), want Canceled, Conn working", err, c.Err())
	}

	for name, tc := range map[string]struct {
		ctx  func() (context.Context, context.CancelFunc)
		io   time.Duration
		want error
	}{
		"deadline": {func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 100*time.Millisecond) }, 0, context.DeadlineExceeded},
		"cancel": {func() (context.Context, context.CancelFunc) {
			c, cancel := context.WithCancel(ctx)
			time.AfterFunc(100*time.Millisecond, cancel)
			return c, cancel
		}, 0, context.Canceled},
		"io timeout":                   {func() (context.Context, context.CancelFunc) { return ctx, func() {} }, 100 * time.Millisecond, os.ErrDeadlineExceeded},
		"io timeout, a longer context": {func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, time.Hour) }, 100 * time.Millisecond, os.ErrDeadlineExceeded},
		"a context shorter than io":    {func() (context.Context, context.CancelFunc) { return context.WithTimeout(ctx, 100*time.Millisecond) }, time.Hour, context.DeadlineExceeded},
	} {
		t.Run(name, func(t *testing.T) {
			c := dial(t, srv.Addr)
			c.SetIOTimeout(tc.io)
			if _, err := c.Do(ctx, "PING"); err != nil { // a deadline set and cleared
				t.Fatal(err)
			}
			cctx, cancel := tc.ctx()
			defer cancel()
			start := time.Now()
			_, err := c.Do(cctx, "BLPOP", "nolist", "0")
			if took := time.Since(start); took > 5*time.Second {
				t.Errorf("interrupted after %v", took)
			}
			if !errors.Is(err, tc.want) || c.Err() == nil {
				t.Fatalf("Do: %v (Conn: %v), want %v and the Conn broken", err, c.Err(), tc.want)
			}
			if tc.want == os.ErrDeadlineExceeded && errors.Is(err, context.DeadlineExceeded) {
				t.Errorf("an I/O timeout reads as the context's: %v", err)
			}
		})
	}

	// A context cancelled after its call: the next call is not hit by
	// the deadline the cancellation set.
	c = dial(t, srv.Addr)
	for range 200 {
		cctx, cancel := context.WithCancel(ctx)
		go cancel()
		c.Do(cctx, "PING")
		if err := c.Err(); err != nil {
			c = dial(t, srv.Addr) // cancelled mid-call: broken, as it should be
		}
		if _, err := c.Do(ctx, "PING"); err != nil {
			t.Fatalf("a call after a cancelled one: %v", err)
		}
	}
}

// TestClose: Close interrupts a call in flight; calls after it, and a
// second Close, return ErrClosed (and fs.ErrClosed).
func TestClose(t *testing.T) {
	noLeak(t)
	srv := server(t)
	c, err := resp.Dial(t.Context(), srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error)
	go func() {
		_, err := c.Do(context.Background(), "BLPOP", "nolist", "0")
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if !errors.Is(err, resp.ErrClosed) || !errors.Is(err, resp.ErrInterrupted) {
			t.Errorf("the call Close interrupted: %v, want ErrClosed and ErrInterrupted (its request was sent)", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not interrupt the call")
	}
	for name, err := range map[string]error{
		"Do":       func() error { _, err := c.Do(t.Context(), "PING"); return err }(),
		"Pipeline": func() error { _, err := c.Pipeline(t.Context(), []string{"PING"}); return err }(),
		"Err":      c.Err(),
		"Close":    c.Close(),
	} {
		if !errors.Is(err, resp.ErrClosed) || !errors.Is(err, fs.ErrClosed) || errors.Is(err, resp.ErrInterrupted) {
			t.Errorf("%s after Close: %v, want ErrClosed alone (nothing sent)", name, err)
		}
	}
}

// TestDial: refused (the errno, errors.Is-able), host names (no DNS),
// malformed addresses, localhost, and a connect that its context ends.
func TestDial(t *testing.T) {
	noLeak(t)
	srv := server(t)
	ctx := t.Context()
	port := srv.Addr[strings.LastIndexByte(srv.Addr, ':')+1:]
	if r, err := dial(t, "localhost:"+port).Do(ctx, "PING"); err != nil || r.Str != "PONG" {
		t.Fatalf("via localhost: %v, %v", r, err)
	}
	srv.Stop()
	for _, addr := range []string{srv.Addr, "localhost:" + port} {
		if _, err := resp.Dial(ctx, addr); !errors.Is(err, syscall.ECONNREFUSED) {
			t.Errorf("Dial %s with no server: %v, want ECONNREFUSED", addr, err)
		}
	}
	for _, addr := range []string{"redis.example.com:6379", "bad address", "127.0.0.1", "127.0.0.1:", ":6379",
		"127.0.0.1:0", "127.0.0.1:65536", "127.0.0.1:+80", "::1:6379", "[::1]", "[fe80::1%eth0]:6379", "1.2.3:6379"} {
		_, err := resp.Dial(ctx, addr)
		if !errors.Is(err, resp.ErrAddress) || resp.CheckAddr(addr) == nil {
			t.Errorf("Dial %q: %v, want ErrAddress", addr, err)
		}
	}
	for _, addr := range []string{"10.1.2.3:6379", "[::1]:6379", "[fe80::1%2]:1", "LocalHost:1", "[127.0.0.1]:6379"} {
		if err := resp.CheckAddr(addr); err != nil {
			t.Errorf("CheckAddr %q: %v", addr, err)
		}
	}
	// A connect that cannot finish ends with its context. (It dialed
	// TEST-NET-1 here, a packet off the machine, which tests must not
	// send; and a host without a route failed at once, testing nothing.)
	short, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := resp.Dial(short, fullListener(t))
	if !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("Dial of a server whose queue is full: %v after %v, want DeadlineExceeded", err, time.Since(start))
	}
}

// fullListener returns the address of a loopback socket that listens
// and never accepts, its queue full: the kernel drops a new connect's
// SYN, and the connect waits until its caller gives up. Nothing leaves
// the machine.
func fullListener(t *testing.T) string {
	t.Helper()
	sock := func() int {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { unix.Close(fd) })
		return fd
	}
	ln := sock()
	if err := unix.Bind(ln, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatal(err)
	}
	if err := unix.Listen(ln, 0); err != nil {
		t.Fatal(err)
	}
	sa, err := unix.Getsockname(ln)
	if err != nil {
		t.Fatal(err)
	}
	to := &unix.SockaddrInet4{Port: sa.(*unix.SockaddrInet4).Port, Addr: [4]byte{127, 0, 0, 1}}
	for range 4 { // a backlog of 0 queues one; the rest wait, as Dial's will
		unix.Connect(sock(), to)
	}
	return fmt.Sprintf("127.0.0.1:%d", to.Port)
}
