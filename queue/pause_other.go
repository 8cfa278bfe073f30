//go:build linux && !amd64

package queue

// pause is a spinning waiter's rest between two looks; without a PAUSE
// instruction to hand, none: the waiter looks again at once.
func pause(uint32) {}
