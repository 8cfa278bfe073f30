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

// BenchmarkLatency is bench latency as a benchmark: b.N tickets sold by N
// buyer processes that time every buy. It reports what a buyer felt: the
// mean wait of a buyer arriving at a random moment (wait-µs), the gap
// p99.9 and the longest gap, the share of the time in gaps over 100 µs,
// and the rate of the timed sale (slower than BenchmarkTickets' by a clock
// read per buy).
func BenchmarkLatency(b *testing.B) {
	for _, kind := range latencyBackends() {
		for _, procs := range []int{1, 2, 4, 8} {
			b.Run(fmt.Sprintf("backend=%s/procs=%d", kind, procs), func(b *testing.B) {
				r, h, err := sellGaps(b.Context(), kind, procs, int64(b.N), true)
				if err != nil {
					b.Fatal(err)
				}
				if r.Oversold != 0 || r.Lost != 0 {
					b.Fatalf("%+v", r)
				}
				b.ReportMetric(h.MeanWait()/1e3, "wait-µs")
				b.ReportMetric(float64(h.Quantile(0.999)), "p99.9-ns")
				b.ReportMetric(float64(h.Max)/1e3, "max-µs")
				b.ReportMetric(100*h.ShareOver(), "%>100µs")
				b.ReportMetric(r.OpsPerSec, "ops/s")
				b.ReportMetric(0, "ns/op") // the clock is the run's, not b's
			})
		}
	}
}

// BenchmarkQueue is bench queue as a benchmark: b.N 64-byte messages from
// P producer processes to C consumer processes through each transport,
// reported as msgs/s (from the start barrier to the last consumer's last
// message), so that `go test -bench Queue -count 10 | benchstat` compares
// them. A lost, duplicated or torn message fails it.
func BenchmarkQueue(b *testing.B) {
	for _, kind := range queueBackends() {
		for _, pc := range [][2]int{{1, 1}, {4, 4}} {
			b.Run(fmt.Sprintf("backend=%s/pairs=%dx%d", kind, pc[0], pc[1]), func(b *testing.B) {
				msgs := max(b.N, pc[0]*pc[1]) // every producer and consumer has one
				r, err := queueOnce(b.Context(), kind, pc[0], pc[1], 64, msgs, 1)
				if err != nil {
					b.Fatal(err)
				}
				if r.Lost != 0 || r.Dup != 0 || r.Torn != 0 {
					b.Fatalf("%+v", r)
				}
				b.ReportMetric(r.MsgsPerSec, "msgs/s")
				b.ReportMetric(0, "ns/op") // the clock is the run's, not b's
			})
		}
	}
}
