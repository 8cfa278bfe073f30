//go:build linux && amd64

package queue

import (
	"sync/atomic"
	"unsafe"
)

// release32 stores v into w for the other processes with a plain MOV: on
// amd64 every store is a release store (TSO), and the Go compiler keeps a
// store after the stores before it in program order. atomic's Store is an
// XCHG, a full barrier that a message's length does not need: the publish
// of its cell, an XCHG, comes after it.
func release32(w *atomic.Uint32, v uint32) { *(*uint32)(unsafe.Pointer(w)) = v }
