//go:build linux && !amd64

package queue

import "sync/atomic"

// release32 is an atomic store where a plain one is not a release store.
func release32(w *atomic.Uint32, v uint32) { w.Store(v) }
