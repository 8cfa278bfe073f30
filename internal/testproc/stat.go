//go:build linux

package testproc

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
)

// ProcStat is what /proc/PID/stat says of a process.
type ProcStat struct {
	Comm  string // its command name, which may hold spaces and parentheses
	State byte   // R, S, T (stopped), Z (zombie)...
	PPid  int    // its parent's pid
}

// Stat reads /proc/PID/stat of pid (comm ends at the last ')'). It fails
// when pid names no process, or the line is malformed.
func Stat(pid int) (ProcStat, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return ProcStat{}, err
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return ProcStat{}, fmt.Errorf("testproc: /proc/%d/stat: %q", pid, b)
	}
	f := strings.Fields(string(b[end+1:]))
	if len(f) < 2 || len(f[0]) != 1 {
		return ProcStat{}, fmt.Errorf("testproc: /proc/%d/stat: %q", pid, b)
	}
	ppid, err := strconv.Atoi(f[1])
	if err != nil {
		return ProcStat{}, fmt.Errorf("testproc: /proc/%d/stat: %w", pid, err)
	}
	return ProcStat{Comm: string(b[open+1 : end]), State: f[0][0], PPid: ppid}, nil
}
