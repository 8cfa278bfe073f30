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
// the Buyer's Buy inlined into sellBuyer. A rename of the
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
		"inlining call to ticketshm.(*Buyer).Buy",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the build no longer says %q: make default.pgo again (doc.go, \"Profile\")", want)
		}
	}
}

// TestProfileEnv: with SHMKIT_BENCH_CPUPROFILE set, a buyer that sold for
// a while leaves a CPU profile (gzip, as runtime/pprof writes it), and
// one that sold a few tickets leaves none.
func TestProfileEnv(t *testing.T) {
	for _, c := range []struct {
		tickets string
		want    bool
	}{{"1000", false}, {"10000000", true}} {
		dir := t.TempDir()
		t.Setenv(profileEnv, dir)
		if _, _, err := runArgs(t, "-json", "-backends", "shm-lockfree", "-procs", "1", "-rounds", "1", "-tickets", c.tickets); err != nil {
			t.Fatal(err)
		}
		files, _ := filepath.Glob(filepath.Join(dir, "buyer-*.pprof"))
		if got := len(files) > 0; got != c.want {
			t.Fatalf("%s tickets: profiles %v, want some: %v", c.tickets, files, c.want)
		}
		for _, f := range files {
			b, err := os.ReadFile(f)
			if err != nil || len(b) < 2 || b[0] != 0x1f || b[1] != 0x8b {
				t.Errorf("%s: not a gzipped profile (%d bytes, %v)", f, len(b), err)
			}
		}
	}
}

// TestProfileEnvBadDir: a profile directory that does not exist fails the
// sale with an error that names the variable, and leaves no segment (the
// package's TestMain checks /dev/shm) and no child behind.
func TestProfileEnvBadDir(t *testing.T) {
	t.Setenv(profileEnv, filepath.Join(t.TempDir(), "missing"))
	_, _, err := runArgs(t, "-json", "-backends", "shm-mutex", "-procs", "2", "-rounds", "1", "-tickets", "1000")
	if err == nil || !strings.Contains(err.Error(), "died before the start") {
		t.Fatalf("sale with a missing profile directory: %v, want a buyer that died before the start", err)
	}
}
