//go:build linux

package process

import (
	"fmt"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// ActiveChildren returns this process's children that are still running,
// in the order they were started, like Python's active_children(). Python
// joins the finished ones as a side effect; here every child is reaped as
// soon as it exits, so there is nothing left to join.
func ActiveChildren() []*Process {
	activeMu.Lock()
	var ps []*Process
	for p := range active {
		ps = append(ps, p)
	}
	activeMu.Unlock()
	ps = slices.DeleteFunc(ps, func(p *Process) bool { return !p.IsAlive() })
	slices.SortFunc(ps, func(a, b *Process) int { return int(a.seq - b.seq) })
	return ps
}

// String describes the Process as Python's repr does:
//
//	<Process name='Process-1' parent=4100 initial>
//	<Process name='Process-1' pid=4101 parent=4100 started daemon>
//	<Process name='Process-1' pid=4101 parent=4100 stopped exitcode=0>
//	<Process name='Process-1' pid=4101 parent=4100 stopped exitcode=-SIGTERM>
func (p *Process) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var b strings.Builder
	fmt.Fprintf(&b, "<Process name='%s'", p.Name)
	if p.cmd != nil {
		fmt.Fprintf(&b, " pid=%d", p.cmd.Process.Pid)
	}
	fmt.Fprintf(&b, " parent=%d", self.Pid)
	daemon := p.Daemon
	switch {
	case p.cmd == nil:
		b.WriteString(" initial")
	case isClosed(p.done):
		b.WriteString(" stopped exitcode=")
		if p.code < 0 {
			b.WriteString("-" + unix.SignalName(unix.Signal(-p.code)))
		} else {
			fmt.Fprint(&b, p.code)
		}
		daemon = p.daemon
	default:
		b.WriteString(" started")
		daemon = p.daemon
	}
	if daemon {
		b.WriteString(" daemon")
	}
	b.WriteString(">")
	return b.String()
}

func isClosed(c chan struct{}) bool {
	select {
	case <-c:
		return true
	default:
		return false
	}
}
