//go:build linux && !amd64

package queue

import "sync/atomic"

// release is an atomic store where a plain one is not a release store.
func release(w *atomic.Uint64, v uint64) { w.Store(v) }

func release32(w *atomic.Uint32, v uint32) { w.Store(v) }
