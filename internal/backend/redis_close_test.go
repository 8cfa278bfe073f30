//go:build linux

package backend_test

import (
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/backend"
	"github.com/shmkit/shmkit/internal/resp"
	"github.com/shmkit/shmkit/ticketshm/redisstore"
)

// swallowingServer answers a Store's opening (HMGET, SCRIPT LOAD) as a
// counter of 5 tickets would, and takes every other request without an
// answer, saying so on got.
func swallowingServer(t *testing.T, got chan<- string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn)
			mu.Unlock()
			go func() {
				rd := resp.NewReader(conn)
				for {
					req, err := rd.ReadReply()
					if err != nil || req.Kind != resp.Array || len(req.Elems) == 0 {
						return
					}
					var reply resp.Reply
					switch strings.ToUpper(req.Elems[0].Str) {
					case "HMGET":
						five := resp.Reply{Kind: resp.BulkString, Str: "5"}
						reply = resp.Reply{Kind: resp.Array, Elems: []resp.Reply{five, five}}
					case "SCRIPT":
						reply = resp.Reply{Kind: resp.BulkString, Str: "sha"}
					default:
						got <- req.Elems[0].Str
						continue // swallowed
					}
					if _, err := conn.Write(resp.AppendReply(nil, reply)); err != nil {
						return
					}
				}
			}()
		}
	}()
	return ln.Addr().String()
}

// TestCloseDuringBuy: a redis backend Store closed while a purchase it
// sent waits for its reply calls that purchase uncertain: the server has
// it and may have sold a ticket. resp said ErrClosed for the call Close
// interrupted, as for a call that sent nothing, and Buy called the
// purchase certainly not made (ErrUnavailable).
func TestCloseDuringBuy(t *testing.T) {
	got := make(chan string, 8)
	addr := swallowingServer(t, got)
	ctx := t.Context()
	st, err := backend.Open(ctx, backend.Redis, addr+"/k")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := st.Buy(ctx)
		done <- err
	}()
	select {
	case cmd := <-got:
		if cmd != "EVALSHA" {
			t.Fatalf("the server got %s, want the purchase's EVALSHA", cmd)
		}
	case <-time.After(time.Minute):
		t.Fatal("the purchase never reached the server")
	}
	st.Close()
	select {
	case err := <-done:
		if !errors.Is(err, redisstore.ErrUncertain) {
			t.Fatalf("Buy interrupted by Close after its request went out: %v, want ErrUncertain", err)
		}
	case <-time.After(time.Minute):
		t.Fatal("Close did not interrupt Buy")
	}
}
