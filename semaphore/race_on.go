//go:build linux && race

package semaphore

import (
	"runtime"
	"unsafe"
)

// The race detector tracks only Go memory: the CAS on a futex word in a
// shared mapping is no synchronisation to it. So a Mutex tells it, on a Go
// address of its own, what sync.Mutex tells it internally: an unlock
// happens before the lock that follows.

func raceAcquire(m *mutex) { runtime.RaceAcquire(unsafe.Pointer(&m.raceSync)) }
func raceRelease(m *mutex) { runtime.RaceReleaseMerge(unsafe.Pointer(&m.raceSync)) }
