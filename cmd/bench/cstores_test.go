//go:build linux

package main

import (
	"testing"
)

// TestYardEnvFromOutside: the harness does not take SHMKIT_BENCH_YARD
// from its own environment, where only someone else can have put it (it
// is how the harness tells its children where yard is): it used to run
// whatever the variable named as its C buyers.
func TestYardEnvFromOutside(t *testing.T) {
	if !haveC() {
		t.Skip("no C compiler")
	}
	for _, outside := range []string{"/nonexistent/yard", "/bin/true"} {
		t.Setenv(envYard, outside)
		if p, err := yardPath(t.Context()); err != nil || p == outside {
			t.Fatalf("yardPath with %s=%s: %q, %v; want the harness's own yard", envYard, outside, p, err)
		}
		if _, _, err := runArgs(t, "-backends", "c-cas", "-procs", "1", "-tickets", "1000", "-rounds", "1"); err != nil {
			t.Fatalf("bench with %s=%s: %v", envYard, outside, err)
		}
	}
}
