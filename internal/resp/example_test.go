package resp_test

import (
	"bytes"
	"context"
	"fmt"
	"log"

	"github.com/shmkit/shmkit/internal/resp"
)

// A Reader reads what a server sends; AppendReply writes it (for tests
// and fakes).
func ExampleReader() {
	var wire []byte
	wire = resp.AppendReply(wire, resp.Reply{Kind: resp.Integer, Int: 42})
	wire = resp.AppendReply(wire, resp.Reply{Kind: resp.Array, Elems: []resp.Reply{
		{Kind: resp.BulkString, Str: "a"}, {Kind: resp.BulkString, Null: true}, {Kind: resp.Error, Str: "WRONGTYPE nested"},
	}})
	fmt.Printf("%q\n", wire)
	r := resp.NewReader(bytes.NewReader(wire))
	for range 2 {
		rep, err := r.ReadReply()
		fmt.Println(rep, err)
	}
	// Output:
	// ":42\r\n*3\r\n$1\r\na\r\n$-1\r\n-WRONGTYPE nested\r\n"
	// (integer) 42 <nil>
	// ["a" (nil) (error) WRONGTYPE nested] <nil>
}

// Talking to a server. (No Output: it needs a Redis server; the tests
// start one.)
func ExampleDial() {
	ctx := context.Background()
	c, err := resp.Dial(ctx, "127.0.0.1:6379") // an IP or localhost: no DNS
	if err != nil {
		log.Fatal(err) // errors.Is(err, syscall.ECONNREFUSED): no server there
	}
	defer c.Close()
	n, err := c.Do(ctx, "INCR", "visits")
	if err != nil {
		log.Fatal(err) // a *resp.ServerError, or the Conn is broken: dial again
	}
	fmt.Println("visit", n.Int)
}
