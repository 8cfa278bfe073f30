//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestProfileInlinesTheBuy builds the command as `go build` does, with
// default.pgo, and checks that the profile still reaches the buyer's loop:
// the store's Buy devirtualized and inlined into sellAll. A rename of the
// loop or of Buy leaves the profile naming functions that are gone, and
// the bench a nanosecond a buy slower without a word (see doc.go,
// "Profile").
func TestProfileInlinesTheBuy(t *testing.T) {
	if _, err := os.Stat("default.pgo"); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("go", "build", "-gcflags=github.com/shmkit/shmkit/cmd/bench=-m", "-o", filepath.Join(t.TempDir(), "bench"), ".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, want := range []string{
		"PGO devirtualizing interface call st.Buy to ticketshm.(*Buyer).Buy",
		"inlining call to ticketshm.(*Buyer).Buy",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the build no longer says %q: make default.pgo again (doc.go, \"Profile\")", want)
		}
	}
}
