//go:build linux && amd64

package queue

// pause runs the PAUSE instruction n times: a spinning waiter's rest
// between two looks, which leaves the lines it looks at (and, on a
// hyperthread, the core) to the process it waits for.
//
//go:noescape
func pause(n uint32)
