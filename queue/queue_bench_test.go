//go:build linux

package queue

import (
	"context"
	"testing"
)

// BenchmarkSendRecv: one goroutine sends a 64-byte message and receives
// it back: the cost of the two calls without another process.
func BenchmarkSendRecv(b *testing.B) {
	ctx := context.Background()
	q, err := Create(ctx, tempName(b), 1024, 64)
	if err != nil {
		b.Fatal(err)
	}
	defer q.Close()
	m := make([]byte, 64)
	buf := make([]byte, 64)
	for b.Loop() {
		if err := q.Send(ctx, m); err != nil {
			b.Fatal(err)
		}
		if _, err := q.Recv(ctx, buf); err != nil {
			b.Fatal(err)
		}
	}
}
