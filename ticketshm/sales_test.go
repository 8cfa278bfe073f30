//go:build linux

package ticketshm_test

import (
	"math/rand/v2"
	"testing"

	"github.com/shmkit/shmkit/ticketshm"
)

// TestNextSales: the sales word after a sale, computed the fast way, is
// the word its layout defines (doc.go): the slot's sales, one more, in the
// high half and the ticket's number in the low half, for every ticket
// number a Counter has (1 to MaxTickets-1) and whatever the low half held
// before (the last ticket, or garbage in a corrupt segment).
func TestNextSales(t *testing.T) {
	want := func(s uint64, tk int64) uint64 { return (s>>32+1)<<32 | uint64(tk) }
	edges := []uint64{0, 1, 1<<32 - 1, 1 << 32, 1<<32 | 7, 5<<32 | (1<<32 - 1), 1<<63 | 3, 1<<64 - 1}
	tickets := []int64{1, 2, 1<<31 - 1, 1 << 31, ticketshm.MaxTickets - 1}
	for _, s := range edges {
		for _, tk := range tickets {
			if got := ticketshm.NextSales(s, tk); got != want(s, tk) {
				t.Errorf("NextSales(%#x, %d) = %#x, want %#x", s, tk, got, want(s, tk))
			}
		}
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 1_000_000 {
		s, tk := r.Uint64(), 1+r.Int64N(ticketshm.MaxTickets-1)
		if got := ticketshm.NextSales(s, tk); got != want(s, tk) {
			t.Fatalf("NextSales(%#x, %d) = %#x, want %#x", s, tk, got, want(s, tk))
		}
	}
}
