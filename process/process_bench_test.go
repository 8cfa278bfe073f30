//go:build linux

package process

import (
	"context"
	"testing"
)

// BenchmarkStartJoin: start a child that returns at once, and join it.
func BenchmarkStartJoin(b *testing.B) {
	for b.Loop() {
		p := &Process{Entry: "exit", Args: []string{"0"}}
		if err := p.Start(); err != nil {
			b.Fatal(err)
		}
		if err := p.Join(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
}
