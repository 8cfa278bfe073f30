//go:build linux

package testproc

import (
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// MemOp is one instruction of a compiled function that reads or writes
// memory through a register: MOVB BL, 0(AX) is a store through AX.
type MemOp struct {
	Store bool   // a write to memory; otherwise a read
	Base  string // the register the address is in
	Text  string // the instruction, as go tool objdump prints it
}

// memOperand is a memory operand: displacement, base register, and an
// optional index (0(R8)(DI*1)).
var memOperand = regexp.MustCompile(`^-?(0x)?[0-9a-f]*\(([A-Z0-9]+)\)(\([A-Z0-9]+\*[1248]\))?$`)

// MemoryOps builds the test binary of the package in dir as the gc
// compiler compiles it for a normal build (no -race, no coverage), and
// returns the memory accesses of function sym (its full symbol name, such
// as "github.com/shmkit/shmkit/ticketshm.recordSale") in the order of its
// machine code. The function must be kept in the binary (referenced as a
// value, not only inlined). Tests use it to pin an order of stores and
// loads that another process depends on and the Go memory model does not
// promise.
func MemoryOps(t testing.TB, dir, sym string) []MemOp {
	t.Helper()
	NeedTool(t, "go")
	bin := filepath.Join(t.TempDir(), "pkg.test")
	build := exec.Command("go", "test", "-c", "-o", bin, ".")
	build.Dir = dir
	build.Env = append(os.Environ(), "GOFLAGS=")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go test -c: %v\n%s", err, out)
	}
	out, err := exec.Command("go", "tool", "objdump", "-s", "^"+regexp.QuoteMeta(sym)+"$", bin).CombinedOutput()
	if err != nil {
		t.Fatalf("go tool objdump: %v\n%s", err, out)
	}
	var ops []MemOp
	found := false
	for _, line := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(line, "TEXT ") {
			found = true
			continue
		}
		f := strings.Split(strings.TrimRight(line, "\t "), "\t")
		if len(f) < 4 {
			continue
		}
		text := strings.TrimSpace(f[len(f)-1])
		mnemonic, operands, _ := strings.Cut(text, " ")
		if !strings.HasPrefix(mnemonic, "MOV") {
			continue
		}
		args := strings.Split(operands, ", ")
		if len(args) != 2 {
			continue
		}
		if m := memOperand.FindStringSubmatch(args[1]); m != nil {
			ops = append(ops, MemOp{Store: true, Base: m[2], Text: text})
		} else if m := memOperand.FindStringSubmatch(args[0]); m != nil {
			ops = append(ops, MemOp{Base: m[2], Text: text})
		}
	}
	if !found {
		t.Fatalf("no function %s in the test binary: keep it referenced", sym)
	}
	return ops
}
