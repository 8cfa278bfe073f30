//go:build linux

package process

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"sync"
	"sync/atomic"
)

// The environment tells a re-executed binary which entry to run. Main
// removes these variables before it runs the entry, so that programs the
// entry executes do not see them.
const (
	envEntry    = "SHMKIT_PROCESS_ENTRY"
	envName     = "SHMKIT_PROCESS_NAME"
	envIdentity = "SHMKIT_PROCESS_IDENTITY"
	envDaemon   = "SHMKIT_PROCESS_DAEMON"
	envParent   = "SHMKIT_PROCESS_PARENT"
	envPName    = "SHMKIT_PROCESS_PARENT_NAME"
	envFiles    = "SHMKIT_PROCESS_FILES"
)

// Entry is a child's body: it gets the Process's Args. A returned error
// makes the child exit with status 1 after printing it on stderr (or with
// the status of an error from Exit); a panic, with status 2 and the trace.
type Entry func(args []string) error

var (
	entriesMu sync.Mutex
	entries   = map[string]Entry{}

	mainCalled atomic.Bool
	self       = Info{Pid: os.Getpid(), Name: "MainProcess"}
	identity   string // "", or "1", "1:2"...: this process's place in the tree
	files      []*os.File
)

// Files are the open files this child was given by its parent's
// Process.Files, in order (descriptors 3, 4, ...); nil in a process that
// was given none, and in the main process.
func Files() []*os.File { return files }

// Register makes fn startable as a child under name. Call it from an init
// function, so that the re-executed child knows the name before main runs.
// It panics if name is empty or registered twice.
func Register(name string, fn Entry) {
	entriesMu.Lock()
	defer entriesMu.Unlock()
	if name == "" || fn == nil {
		panic("process: Register with an empty name or nil function")
	}
	if _, dup := entries[name]; dup {
		panic("process: Register called twice for " + name)
	}
	entries[name] = fn
}

func lookup(name string) Entry {
	entriesMu.Lock()
	defer entriesMu.Unlock()
	return entries[name]
}

func init() {
	if _, ok := os.LookupEnv(envWarm); ok {
		// A warm child clears the Pdeathsig it was started with
		// before it runs a non-daemon entry, and the kernel keeps it
		// per thread: the main thread (where init runs) has it, later
		// threads do not. Main and runWarm stay on this thread until
		// it is cleared, or a goroutine moved by the scheduler would
		// clear another thread's and the entry would die with the
		// parent.
		runtime.LockOSThread()
	}
}

// Main runs the program. Wrap main's body in it:
//
//	func main() { process.Main(run) }
//
// In a child started by Start, Main runs the registered entry instead of
// run and exits with its status; an unknown entry name exits with status 2
// and never runs run (no re-exec fork bomb). In the parent, Main runs run.
// Either way it then does what Python does at interpreter exit: it
// terminates the daemon children (SIGTERM, then SIGKILL after a grace
// period) and joins the others, and exits: 0, or 1 after printing run's
// error, or the code of an Exit error. Main does not return.
func Main(run func() error) {
	mainCalled.Store(true)
	if entry, ok := os.LookupEnv(envEntry); ok {
		parent, _ := strconv.Atoi(os.Getenv(envParent))
		c := childSpec{
			entry: entry, name: os.Getenv(envName), identity: os.Getenv(envIdentity),
			daemon: os.Getenv(envDaemon) == "1", parent: parent, parentName: os.Getenv(envPName),
			args: os.Args[1:],
		}
		if n, err := strconv.Atoi(os.Getenv(envFiles)); err == nil && n > 0 && n < 1<<16 {
			for i := range n {
				files = append(files, os.NewFile(uintptr(3+i), fmt.Sprintf("process file %d", i)))
			}
		}
		for _, v := range []string{envEntry, envName, envIdentity, envDaemon, envParent, envPName, envFiles} {
			os.Unsetenv(v)
		}
		os.Exit(runChild(c))
	}
	if _, ok := os.LookupEnv(envWarm); ok {
		os.Unsetenv(envWarm)
		os.Exit(runWarm())
	}
	os.Exit(finish(run()))
}

// childSpec is what a child is told: by its environment and arguments
// when Start execs it, over a pipe when it was started warm (KeepWarm).
type childSpec struct {
	entry, name, identity string
	daemon                bool
	parent                int
	parentName            string
	args                  []string
}

func runChild(c childSpec) int {
	self = Info{Pid: os.Getpid(), Name: c.name, Daemon: c.daemon, Child: true}
	identity = c.identity
	parentInfo = &ParentProcess{pid: c.parent, name: c.parentName}
	if self.Daemon && os.Getppid() != c.parent {
		// The parent died before Pdeathsig was armed: a daemon
		// outlives nobody.
		return 1
	}
	fn := lookup(c.entry)
	if fn == nil {
		fmt.Fprintf(os.Stderr, "process: child %s: %v: %q\n", self.Name, ErrUnknownEntry, c.entry)
		return 2
	}
	code := 2
	func() {
		defer func() {
			if r := recover(); r != nil {
				fmt.Fprintf(os.Stderr, "process: child %s panicked: %v\n%s", self.Name, r, debug.Stack())
				code = 2
			}
		}()
		code = finish(fn(c.args))
	}()
	return code
}

// finish reaps children as Python does at exit and turns err into a status.
func finish(err error) int {
	shutdown()
	var es exitStatus
	switch {
	case err == nil:
		return 0
	case errors.As(err, &es):
		return es.ExitCode()
	}
	fmt.Fprintf(os.Stderr, "%s: %v\n", self.Name, err)
	return 1
}

// Info describes a process of the tree.
type Info struct {
	Pid    int
	PPid   int
	Name   string // "MainProcess" in the program that called Main
	Daemon bool
	Child  bool // started by process.Start
}

// Current describes this process, like multiprocessing.current_process.
func Current() Info {
	i := self
	i.PPid = os.Getppid()
	return i
}
