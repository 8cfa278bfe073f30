//go:build linux

package main

import (
	"fmt"
	"testing"
)

// BenchmarkTickets is the default comparison as a benchmark: b.N tickets
// sold by N buyer processes through each backend, reported as ops/s
// (tickets per second, from the start barrier to the last buyer's exit),
// so that `go test -bench Tickets -count 10 | benchstat` compares them.
func BenchmarkTickets(b *testing.B) {
	for _, kind := range backends() {
		for _, procs := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("backend=%s/procs=%d", kind, procs), func(b *testing.B) {
				r, err := sell(b.Context(), kind, procs, int64(b.N))
				if err != nil {
					b.Fatal(err)
				}
				if r.Oversold != 0 && kind != "json-nolock" {
					b.Fatalf("%+v", r)
				}
				b.ReportMetric(r.OpsPerSec, "ops/s")
				b.ReportMetric(r.MinShare, "min-share")
				b.ReportMetric(0, "ns/op") // the clock is the run's, not b's
			})
		}
	}
}
