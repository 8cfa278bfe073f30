//go:build linux && amd64

package ticketshm_test

import (
	"fmt"
	"regexp"
	"strings"
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

// TestBuyOrder: the locked Buy's paths through the bias, where gc inlines
// semaphore's EnterFast and ExitFast (in Buyer.Buy) or LockFast and
// UnlockFast (in counter.buyLocked, Buy's path after the bias was not
// ours, which finds it ours again) and recordSale, keep the order the
// bias protocol and a buyer's death rely on: the entry marked inside,
// then the bias word read (only then the count and the sales word), the
// ledger byte, the sales word and the count written, the entry marked
// outside, then the bias word read again. TestBiasOrder (semaphore) and
// TestStoreOrder check the functions compiled on their own; this checks
// the copies that run. The shared words are reached through pointers the
// Counter and the BiasedMutex hold, at displacement 0, while their own
// fields sit at other displacements: the test keeps the displacement-0
// accesses of each function, in the order of its machine code, and looks
// for that sequence among them (with, after the first read of the bias
// word, the store that takes the mark back when the bias is not ours,
// where gc places it).
func TestBuyOrder(t *testing.T) {
	for _, fn := range []string{"(*Buyer).Buy", "(*counter).buyLocked"} {
		ops := testproc.MemoryOps(t, ".", "github.com/shmkit/shmkit/ticketshm."+fn)
		var shape []string
		for _, op := range ops {
			mnemonic, operands, _ := strings.Cut(op.Text, " ")
			args := strings.Split(operands, ", ")
			mem := args[0]
			if op.Store {
				mem = args[len(args)-1]
			}
			if !strings.HasPrefix(mem, "0(") {
				continue
			}
			width := map[byte]string{'B': "1", 'W': "2", 'L': "4", 'Q': "8"}[mnemonic[3]]
			if op.Store {
				shape = append(shape, "S"+width)
			} else {
				shape = append(shape, "L"+width)
			}
		}
		got := strings.Join(shape, " ")
		// entry in, bias, [take the mark back], count, sales word,
		// ledger, sales word, count, entry out, bias.
		want := regexp.MustCompile(`S4 L8 (S4 )?L8 L8 S1 S8 S8 S4 L8`)
		if n := len(want.FindAllString(got, -1)); n != 1 {
			t.Errorf("%s's accesses at displacement 0: %s\nwant %s in that order once, found it %d times", fn, got, want, n)
		}
	}
}
