//go:build linux && amd64

package queue

import "sync/atomic"

// release32 and release64 store v into w for the other processes with a
// plain MOV, in assembly (store_amd64.s). On amd64 every store is a
// release store (TSO: no store is seen before an earlier one), and a call
// to an assembly function is opaque to the Go compiler, which therefore
// keeps every load and store of the caller on its side of the call: the
// order another process depends on is the program's. atomic's Store is an
// XCHG, a full barrier; these are not, and cost a store.
//
//go:noescape
func release32(w *atomic.Uint32, v uint32)

//go:noescape
func release64(w *atomic.Uint64, v uint64)

// fillCell publishes a small message (at most fillCellMax bytes) in
// one call, where a Send would make four: it stores the length and the
// message into the cell whose word is c, then w into c (the publish),
// then 0 into lane (the intent, cleared after the publish), all plain
// stores in that order (store_amd64.s).
//
//go:noescape
func fillCell(c *atomic.Uint64, msg []byte, w uint64, lane *atomic.Uint64)

// fillCellMax: past it, memmove's wide copy beats fillCell's 16-byte one.
// (BenchmarkSendRecv measures the small path.)
const fillCellMax = 256

// plainStores: a publish may be a release store here, when the process is
// registered for membarrier's global fence (fence_linux.go).
const plainStores = true
