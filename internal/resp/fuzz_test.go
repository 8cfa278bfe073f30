package resp_test

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/internal/resp"
)

// FuzzReader: a Reader fed any bytes never panics, fails only with
// io.EOF, io.ErrUnexpectedEOF or ErrProtocol, allocates in proportion to
// the bytes it was given (a length header alone reserves nothing big),
// and what it reads, AppendReply writes back byte for byte and a Reader
// reads again equal.
func FuzzReader(f *testing.F) {
	for _, s := range []string{
		"+OK\r\n", "-ERR unknown command\r\n", ":0\r\n", ":-9223372036854775808\r\n",
		"$5\r\nhello\r\n", "$0\r\n\r\n", "$-1\r\n", "*-1\r\n", "*0\r\n",
		"*3\r\n:1\r\n*2\r\n$1\r\nx\r\n-E nested\r\n+FINE\r\n",
		"$536870912\r\nab", "*16777216\r\n:1\r\n", "$536870913\r\n", "*16777217\r\n",
		strings.Repeat("*1\r\n", 40) + ":1\r\n",
		"+no CRLF", "+bare LF\n", ":007\r\n", ":-0\r\n", ":+1\r\n", "$3\r\nabcde", "%1\r\n", "",
		":1\r\n:2\r\n+OK\r\n$2\r\nab\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		r := resp.NewReader(bytes.NewReader(in))
		var replies []resp.Reply
		var err error
		for {
			var rep resp.Reply
			if rep, err = r.ReadReply(); err != nil {
				break
			}
			replies = append(replies, rep)
		}
		runtime.ReadMemStats(&after)
		if alloc := after.TotalAlloc - before.TotalAlloc; alloc > uint64(64*len(in)+512<<10) {
			t.Fatalf("%d bytes of input allocated %d bytes", len(in), alloc)
		}
		if err != io.EOF && err != io.ErrUnexpectedEOF && !errors.Is(err, resp.ErrProtocol) {
			t.Fatalf("error %v", err)
		}

		var out []byte
		for _, rep := range replies {
			out = resp.AppendReply(out, rep)
		}
		if !bytes.HasPrefix(in, out) {
			t.Fatalf("read %d replies from\n%q\nthey write back as\n%q", len(replies), in, out)
		}
		r = resp.NewReader(bytes.NewReader(out))
		for i, want := range replies {
			got, err := r.ReadReply()
			// Not cmp.Equal: its slice diff compares each level's
			// elements more than once, exponential in the nesting.
			if err != nil || !reflect.DeepEqual(got, want) {
				t.Fatalf("reply %d read back: %v, %v; want %v", i, got, err, want)
			}
		}
		if _, err := r.ReadReply(); err != io.EOF {
			t.Fatalf("after the replies written back: %v, want io.EOF", err)
		}
	})
}

// FuzzCommand: a command AppendCommand writes reads back as an array of
// its arguments, whatever bytes they hold.
func FuzzCommand(f *testing.F) {
	f.Add("SET\x00key\x00value")
	f.Add("EVAL\x00return 1\r\n\x000")
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		args := strings.Split(s, "\x00")
		rep, err := resp.NewReader(bytes.NewReader(resp.AppendCommand(nil, args...))).ReadReply()
		if err != nil || rep.Kind != resp.Array || len(rep.Elems) != len(args) {
			t.Fatalf("%q: %v, %v", args, rep, err)
		}
		for i, e := range rep.Elems {
			if e.Kind != resp.BulkString || e.Str != args[i] {
				t.Fatalf("%q: argument %d read back as %v", args, i, e)
			}
		}
	})
}

// FuzzCheckAddr: any string is accepted or refused with ErrAddress,
// never a panic; an accepted one has a port from 1 to 65535.
func FuzzCheckAddr(f *testing.F) {
	for _, s := range []string{"127.0.0.1:6379", "[::1]:6379", "localhost:1", "[fe80::1%2]:1", "host:80", "::1:80", "[", "]:", ":", "1.2.3.4:99999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, addr string) {
		err := resp.CheckAddr(addr)
		if err != nil && !errors.Is(err, resp.ErrAddress) {
			t.Fatalf("%q: %v, want nil or ErrAddress", addr, err)
		}
		if err == nil {
			port := addr[strings.LastIndexByte(addr, ':')+1:]
			if port == "" || port == "0" || len(port) > 5 {
				t.Fatalf("%q accepted, with port %q", addr, port)
			}
		}
	})
}
