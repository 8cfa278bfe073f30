//go:build linux && amd64

package queue

import (
	"sync/atomic"
	"unsafe"
)

// release stores v into w for the other processes with a plain MOV: on
// amd64 every store is a release store (TSO), and the Go compiler keeps a
// store after the calls and stores before it in program order (it does
// not move memory operations across a call, and the copy before is one).
// atomic's Store is an XCHG, a full barrier that a message's length (the
// publish comes after it) and a cell's free (the head's CAS, a locked
// instruction, comes after it) do not need.
func release(w *atomic.Uint64, v uint64) { *(*uint64)(unsafe.Pointer(w)) = v }

func release32(w *atomic.Uint32, v uint32) { *(*uint32)(unsafe.Pointer(w)) = v }
