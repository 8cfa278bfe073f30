//go:build linux && !amd64

package queue

import "sync/atomic"

// release32 and release64 are atomic stores where a plain store is not a
// release store.
func release32(w *atomic.Uint32, v uint32) { w.Store(v) }
func release64(w *atomic.Uint64, v uint64) { w.Store(v) }

// fillCell is unused here (plainStores is false).
func fillCell(*atomic.Uint64, []byte, uint64, *atomic.Uint64) {
	panic("queue: fillCell without plain stores")
}

const fillCellMax = 0

// plainStores: a publish is always an atomic (sequentially consistent)
// store here.
const plainStores = false
