//go:build linux && amd64

package semaphore

import (
	"fmt"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
)

// keepForOrder keeps biasEnter and biasExit in the test binary as
// functions of their own, for TestBiasOrder to disassemble.
var keepForOrder = []any{biasEnter, biasExit}

// TestBiasOrder (issue 17): the biased holder's store to its entry must
// come before its load of the bias word, on the way in and on the way
// out (Dekker's order, bias_linux.go); the Go memory model does not
// promise it for memory another process reads, gc does. This test reads
// both functions as gc compiled them (amd64's register ABI: entry in AX,
// bias in CX) and fails if the load ever comes first.
func TestBiasOrder(t *testing.T) {
	if len(keepForOrder) == 0 {
		t.Fatal("keepForOrder is empty")
	}
	for _, fn := range []string{"biasEnter", "biasExit"} {
		ops := testproc.MemoryOps(t, ".", "github.com/shmkit/shmkit/semaphore."+fn)
		if len(ops) < 2 || !ops[0].Store || ops[0].Base != "AX" || ops[1].Store || ops[1].Base != "CX" {
			t.Fatalf("%s's memory accesses: %s; want the store through AX (entry), then the load through CX (bias)", fn, fmt.Sprint(ops))
		}
	}
}
