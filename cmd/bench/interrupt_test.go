//go:build linux

package main

import (
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
)

var built struct {
	once sync.Once
	bin  string
	err  error
}

// benchBinary builds cmd/bench once per test binary: the interruption
// tests need the real command, its main and its signal handling, in a
// process group of its own.
func benchBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "shmkit-bench-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(dir, "bench")
		out, err := exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput()
		if err != nil {
			built.err = fmt.Errorf("go build: %v: %s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}

// childrenOf lists the pids whose parent is pid.
func childrenOf(pid int) []int {
	stats, _ := filepath.Glob("/proc/[0-9]*/stat")
	var out []int
	for _, p := range stats {
		n, _ := strconv.Atoi(strings.TrimPrefix(strings.TrimSuffix(p, "/stat"), "/proc/"))
		if st, err := testproc.Stat(n); err == nil && st.PPid == pid {
			out = append(out, n)
		}
	}
	return out
}

// TestInterrupt (issue 16, item 15): SIGINT or SIGTERM, to the process
// group as a terminal sends Ctrl-C or to the harness alone, in the middle
// of a sale: the command stops its buyers, removes every segment,
// temporary file and directory it made (and a redis-server it started),
// and exits 130 or 143. Before the fix it died at once and left them all,
// 200 MB of Counter among them.
func TestInterrupt(t *testing.T) {
	bin := benchBinary(t)
	type tc struct {
		backends string
		sig      syscall.Signal
		group    bool
	}
	cases := []tc{
		{"shm-mutex,json-flock", syscall.SIGINT, true},
		{"shm-lockfree,json-flock", syscall.SIGINT, false},
		{"shm-mutex,json-flock", syscall.SIGTERM, false},
	}
	if haveC() { // the buyers run yard, which must go too
		cases = append(cases, tc{"c-robust,shm-mutex", syscall.SIGINT, true}, tc{"c-robust,json-flock", syscall.SIGTERM, false})
	}
	if haveRedisServer() {
		cases = append(cases, tc{"redis,shm-mutex", syscall.SIGINT, true}, tc{"redis,json-flock", syscall.SIGTERM, false})
	} else if os.Getenv("SHMKIT_REQUIRE_REDIS") != "" {
		t.Fatal("SHMKIT_REQUIRE_REDIS is set and redis-server is not installed")
	}
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s %v group %v", c.backends, c.sig, c.group), func(t *testing.T) {
			tmp := t.TempDir()
			// Enough tickets that the sale is running when the signal
			// comes: json-flock sells ~100k/s, so it never sells out.
			cmd := exec.Command(bin, "-backends", c.backends, "-procs", "2", "-tickets", "100000000", "-rounds", "1")
			cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			var stderr strings.Builder
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			pid := cmd.Process.Pid
			exited := make(chan error, 1)
			go func() { exited <- cmd.Wait() }()
			defer syscall.Kill(-pid, syscall.SIGKILL)

			// Wait until the buyers run: two children that are not a
			// redis-server, and the run's segment in /dev/shm; for
			// c-robust, each running yard.
			var buyers, yards []int
			for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatalf("the sale did not start; stderr: %s", stderr.String())
				}
				buyers, yards = buyers[:0], yards[:0]
				for _, c := range childrenOf(pid) {
					if comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c)); !strings.HasPrefix(string(comm), "redis") {
						buyers = append(buyers, c)
						yards = append(yards, childrenOf(c)...)
					}
				}
				segs, _ := filepath.Glob(fmt.Sprintf("/dev/shm/shmkit.bench.%d.*", pid))
				if len(buyers) == 2 && len(segs) > 0 && (!strings.HasPrefix(c.backends, "c-") || len(yards) == 2) {
					break
				}
			}
			all := childrenOf(pid)
			target := pid
			if c.group {
				target = -pid
			}
			if err := syscall.Kill(target, c.sig); err != nil {
				t.Fatal(err)
			}
			err := <-exited
			var ee *exec.ExitError
			if !errors.As(err, &ee) || ee.ExitCode() != 128+int(c.sig) {
				t.Fatalf("exit %v, want status %d; stderr:\n%s", err, 128+int(c.sig), stderr.String())
			}
			if !strings.Contains(stderr.String(), "interrupted") {
				t.Errorf("stderr does not say it was interrupted:\n%s", stderr.String())
			}
			if segs, _ := filepath.Glob(fmt.Sprintf("/dev/shm/shmkit.bench.%d.*", pid)); len(segs) > 0 {
				t.Errorf("segments left behind: %v", segs)
			}
			if left, _ := os.ReadDir(tmp); len(left) > 0 {
				var names []string
				for _, e := range left {
					names = append(names, e.Name())
				}
				t.Errorf("left in TMPDIR: %v", names)
			}
			for _, c := range all {
				if _, err := os.Stat(fmt.Sprintf("/proc/%d", c)); err == nil {
					comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", c))
					t.Errorf("child %d (%s) outlived the harness", c, strings.TrimSpace(string(comm)))
				}
			}
			// A buyer's yard gets its SIGKILL as the buyer dies
			// (Pdeathsig), and init reaps it: wait for that to land.
			for _, y := range yards {
				for deadline := time.Now().Add(time.Minute); ; time.Sleep(time.Millisecond) {
					st, err := testproc.Stat(y)
					if err != nil || st.State == 'Z' {
						break
					}
					if time.Now().After(deadline) {
						t.Errorf("yard %d outlived its buyer", y)
						break
					}
				}
			}
		})
	}
}

// TestBadRedisEarly (issue 16, item 17): a -redis address where no server
// answers fails before the first run, not after every other backend.
func TestBadRedisEarly(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close() // nothing answers there now
	// json-flock first, with 100M tickets: over ten minutes of selling
	// before the redis runs, where the address used to be found bad.
	stdout, _, err := runArgs(t, "-backends", "json-flock,redis", "-procs", "1", "-tickets", "100000000", "-redis", addr)
	if err == nil || !strings.Contains(err.Error(), "-redis "+addr) {
		t.Fatalf("err = %v, want one naming -redis %s", err, addr)
	}
	if stdout != "" {
		t.Fatalf("runs were made: %s", stdout)
	}
}

// TestChartAnyData (issue 16, item 16): the chart draws one point, rates
// within one power of ten, and runs at 0/s (left out, and said), and
// explains, without a panic, when there is nothing to draw; -out writes
// results.json first in any case.
func TestChartAnyData(t *testing.T) {
	one := []Result{{Backend: "shm-mutex", Procs: 1, OpsPerSec: 1e6, CPUs: 2}}
	for name, rs := range map[string][]Result{
		"one point":       one,
		"a power of ten":  {{Backend: "a", Procs: 2, OpsPerSec: 1000}, {Backend: "b", Procs: 2, OpsPerSec: 1000}},
		"a zero rate":     {{Backend: "a", Procs: 1, OpsPerSec: 0}, {Backend: "a", Procs: 2, OpsPerSec: 5e5}},
		"procs 1 and 128": {{Backend: "a", Procs: 1, OpsPerSec: 3}, {Backend: "a", Procs: 128, OpsPerSec: 4e9}},
		"NaN and Inf":     {{Backend: "a", Procs: 1, OpsPerSec: math.NaN()}, {Backend: "a", Procs: 2, OpsPerSec: math.Inf(1)}, {Backend: "a", Procs: 4, OpsPerSec: 5e5}},
	} {
		svg, err := chart(rs)
		if err != nil || !strings.Contains(string(svg), "<svg") || strings.Contains(string(svg), "NaN") || strings.Contains(string(svg), "Inf") {
			t.Errorf("%s: %v\n%.300s", name, err, svg)
		}
	}
	dir := t.TempDir()
	err := writeOut(dir, []Result{{Backend: "a", Procs: 1}})
	if err == nil || !strings.Contains(err.Error(), "nothing to chart") {
		t.Fatalf("writeOut of a zero rate: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "results.json")); err != nil {
		t.Fatalf("results.json not written before the chart: %v", err)
	}
	// A single process count end to end, and replot of its results.
	out := t.TempDir()
	if _, _, err := runArgs(t, "-backends", "shm-mutex", "-procs", "1", "-tickets", "1000", "-out", out); err != nil {
		t.Fatal(err)
	}
	if _, _, err := runArgs(t, "replot", out); err != nil {
		t.Fatal(err)
	}
}
