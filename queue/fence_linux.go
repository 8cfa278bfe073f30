//go:build linux

package queue

import (
	"sync"

	"golang.org/x/sys/unix"
)

// The publish/sleep handshake (doc.go, Sleeping) is Dekker's: the
// producer stores its cell's word, then looks at the receivers' sleepers
// flag; a receiver going to sleep sets the flag, then looks at the cell.
// One side at least must see the other's store, which needs a full
// barrier on both sides between the store and the look. A producer's
// publish is the hot path: on amd64 it is a plain store (a release), and
// the sleeping receiver, on its cold path, makes the barrier for both
// sides with membarrier(2): MEMBARRIER_CMD_GLOBAL_EXPEDITED makes every
// running thread of every process registered for it pass a full barrier
// before the call returns (and a thread not running has passed one). So
// either the producer's store was seen by then, and the receiver's look
// after the call sees it; or the producer's look at the flag comes after
// its barrier, and sees the flag, set before the call.
const (
	membarrierQuery                   = 0
	membarrierGlobalExpedited         = 1 << 1
	membarrierRegisterGlobalExpedited = 1 << 2
)

// registered reports whether this process is registered for membarrier's
// global expedited barrier (registering it the first time): its
// producers may then publish with a plain store. A process that cannot
// register (an old kernel, a seccomp filter) publishes with an XCHG, a
// barrier of its own.
var registered = sync.OnceValue(func() bool {
	if !plainStores {
		return false
	}
	cmds, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierQuery, 0, 0)
	const want = membarrierGlobalExpedited | membarrierRegisterGlobalExpedited
	if e != 0 || cmds&want != want {
		return false
	}
	_, _, e = unix.Syscall(unix.SYS_MEMBARRIER, membarrierRegisterGlobalExpedited, 0, 0)
	return e == 0
})

// heavyFence is the sleeping receiver's side of the handshake: a full
// barrier in every registered process. It reports false if the kernel
// refused it; the receiver then sleeps only in short slices, which bound
// a wake missed from a producer's plain publish.
func heavyFence() bool {
	_, _, e := unix.Syscall(unix.SYS_MEMBARRIER, membarrierGlobalExpedited, 0, 0)
	return e == 0
}
