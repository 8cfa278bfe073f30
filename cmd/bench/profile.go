//go:build linux

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime/pprof"
	"time"

	"golang.org/x/sys/unix"
)

// profileEnv names a directory: when it is set, every buyer, producer and
// consumer writes a CPU profile there (role-PID.pprof). Merged, they are this
// command's default.pgo, the profile `go build` and `go run` use to
// inline the hot buy into the buyer's loop (see doc.go, "Profile").
const profileEnv = "SHMKIT_BENCH_CPUPROFILE"

// profiled is the child entry fn, which writes a CPU profile into the
// directory profileEnv names, if it is set, as role-PID.pprof.
func profiled(role string, fn func([]string) error) func([]string) error {
	return func(args []string) error {
		dir := os.Getenv(profileEnv)
		if dir == "" {
			return fn(args)
		}
		f, err := os.Create(filepath.Join(dir, fmt.Sprintf("%s-%d.pprof", role, os.Getpid())))
		if err != nil {
			return fmt.Errorf("%s: %w", profileEnv, err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			f.Close()
			return fmt.Errorf("%s: %w", profileEnv, err)
		}
		start := cpuTime()
		err = fn(args)
		pprof.StopCPUProfile()
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if cpuTime()-start < minProfiled {
			// Too short to hold a sample (a buyer of a sale others sold
			// out); merged with the rest, a profile without samples
			// made one go build refuses ("missing Function.start_line").
			os.Remove(f.Name())
		}
		return err
	}
}

// minProfiled is the CPU time below which a child's profile is dropped:
// two of the profiler's 10 ms sampling periods.
const minProfiled = 20 * time.Millisecond

// cpuTime is the CPU time this process has used, user and system.
func cpuTime() time.Duration {
	var ru unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
