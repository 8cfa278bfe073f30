//go:build linux && amd64

package ticketshm_test

import (
	"fmt"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/ticketshm"
)

// TestStoreOrder (issue 17): a locked sale writes the ledger byte, then
// the sales word, then the count, and a buyer killed between any two
// relies on that order. The Go memory model does not promise it for
// memory another process reads; gc keeps it. This test reads recordSale
// as gc compiled it (amd64's register ABI: owner in AX, sales in CX,
// count in SI) and fails if the compiler ever reorders the stores or adds
// a memory access between them.
func TestStoreOrder(t *testing.T) {
	if len(ticketshm.KeepForOrder) == 0 {
		t.Fatal("KeepForOrder is empty")
	}
	ops := testproc.MemoryOps(t, ".", "github.com/shmkit/shmkit/ticketshm.recordSale")
	got := fmt.Sprint(ops)
	want := []string{"AX", "CX", "SI"}
	if len(ops) != len(want) {
		t.Fatalf("recordSale's memory accesses: %s; want three stores, through %v in that order", got, want)
	}
	for i, op := range ops {
		if !op.Store || op.Base != want[i] {
			t.Fatalf("recordSale's memory accesses: %s; want stores through %v in that order", got, want)
		}
	}
}
