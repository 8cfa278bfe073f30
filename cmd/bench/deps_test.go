//go:build linux

package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestNoNet: the bench links no C (runtime/cgo), and neither package
// net, crypto/tls nor go-redis. It re-executes itself for every buyer
// process, and each process pays at start for what the binary links:
// cgo makes the binary dynamically linked with the cgo runtime, 0.5-0.65
// ms more per child (with cgo available, net brings it in through its
// resolver), and go-redis (crypto/tls, x509) about 0.4 ms more; `bench
// spawn` must stay below Python's fork. The C yardsticks run as yard
// (internal/cyard), and the redis backend reaches the server through
// internal/resp.
func TestNoNet(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go tool on PATH to list the bench's dependencies")
	}
	out, err := exec.CommandContext(t.Context(), goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	forbidden := map[string]bool{"net": true, "crypto/tls": true, "crypto/x509": true, "runtime/cgo": true}
	for _, pkg := range strings.Fields(string(out)) {
		if forbidden[pkg] || pkg == "github.com/redis/go-redis/v9" || strings.HasPrefix(pkg, "github.com/redis/go-redis/") {
			t.Errorf("the bench links %s", pkg)
		}
	}
}
