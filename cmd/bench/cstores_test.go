//go:build linux

package main

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/internal/cyard"
	"github.com/shmkit/shmkit/process"
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

// TestRecoverCancelled: a recover measurement whose context ends leaves
// no child running when it returns. The shm-mutex waiter used to be left
// (Join returned at the context's end without stopping it) and the holder
// unreaped; the harness then removed the control segment under the
// waiter, which printed "open ...ctl...: no such file or directory" after
// the harness said it had removed what the run made.
func TestRecoverCancelled(t *testing.T) {
	ctl, err := newControl()
	if err != nil {
		t.Fatal(err)
	}
	defer ctl.remove()
	locks := []string{"shm-mutex"}
	if haveC() {
		locks = append(locks, cRobust)
	}
	for _, lock := range locks {
		ctx, cancel := context.WithCancel(t.Context())
		r, err := newRecoverer(ctx, lock, ctl)
		if err != nil {
			t.Fatal(err)
		}
		cancel()
		_, err = r.once(ctx, ctl)
		r.close()
		if !errors.Is(err, context.Canceled) {
			t.Errorf("%s: once with its context ended: %v, want context.Canceled", lock, err)
		}
		for _, p := range process.ActiveChildren() {
			t.Errorf("%s: %v still running after once returned", lock, p)
			p.Kill()
			p.Join(context.Background())
		}
	}
}

// TestBrokenCompiler: a compiler that cannot build yard (gcc installed
// without the C library's headers) leaves the C yardsticks out of each
// command's default list, saying why, as having no compiler does; the
// default run used to fail whole. Chosen with -backends, they fail.
func TestBrokenCompiler(t *testing.T) {
	if !haveC() {
		t.Skip("no C compiler")
	}
	t.Setenv("CC", "false")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	for _, args := range [][]string{
		{"-json", "-procs", "1", "-tickets", "2000", "-rounds", "1"},
		{"latency", "-json", "-procs", "1", "-tickets", "2000"},
		{"queue", "-json", "-pairs", "1x1", "-msgs", "1000", "-rounds", "1"},
		{"recover", "-json", "-n", "2"},
	} {
		stdout, stderr, err := runArgs(t, args...)
		if err != nil {
			t.Fatalf("bench %q: %v\n%s", args, err, stderr)
		}
		if !strings.Contains(stderr, "left out") || !strings.Contains(stderr, "building the C yardsticks failed") || strings.Contains(stdout, `"c-`) {
			t.Errorf("bench %q: stdout %q, stderr %q; want no C rows and a word on why", args, stdout, stderr)
		}
	}
	if _, _, err := runArgs(t, "-backends", "c-cas", "-procs", "1", "-tickets", "2000", "-rounds", "1"); !errors.Is(err, cyard.ErrBuild) {
		t.Fatalf("bench -backends c-cas: %v, want cyard.ErrBuild", err)
	}
}
