//go:build linux

package main

import (
	"sync/atomic"
	"testing"
)

// BenchmarkPutMsg and BenchmarkTally: the bench harness's own cost per
// 64-byte message on each side of a queue (c-ring does the same in C).
func BenchmarkPutMsg(b *testing.B) {
	m := make([]byte, 64)
	tab := castagnoli()
	for i := range b.N {
		putMsg(m, 3, uint32(i), tab)
	}
}

func BenchmarkTally(b *testing.B) {
	m := make([]byte, 64)
	tab := castagnoli()
	putMsg(m, 0, 1, tab)
	bits := make([]atomic.Uint64, 1)
	for range b.N {
		tally(m, bits, 64, 1, tab)
	}
}
