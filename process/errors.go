package process

import (
	"errors"
	"fmt"
)

// Errors returned by this package; test them with errors.Is.
var (
	// ErrStarted is returned by Start on a Process that was started
	// before, and by SetDaemon after Start.
	ErrStarted = errors.New("process: process already started")

	// ErrNotStarted is returned by Join, Terminate and Kill before Start.
	ErrNotStarted = errors.New("process: process not started")

	// ErrDaemonChildren is returned by Start in a daemon process: a daemon
	// is killed with its parent and could not reap its own children
	// (Python raises AssertionError: "daemonic processes are not allowed
	// to have children").
	ErrDaemonChildren = errors.New("process: daemonic processes are not allowed to have children")

	// ErrUnknownEntry is returned by Start for an entry name that was not
	// registered.
	ErrUnknownEntry = errors.New("process: unknown entry; Register it in an init function")

	// ErrNoMain is returned by Start when the program's main does not run
	// through Main: the child would run the parent's main again.
	ErrNoMain = errors.New("process: Start needs the program's main to call process.Main")
)

// ExitError is returned by Join when the child did not exit with status 0.
type ExitError struct {
	Name string // the Process's name
	Pid  int
	Code int // exit status, or -signal if a signal killed it (as Python reports)
}

func (e *ExitError) Error() string {
	if e.Code < 0 {
		return fmt.Sprintf("process: %s (pid %d) killed by signal %d", e.Name, e.Pid, -e.Code)
	}
	return fmt.Sprintf("process: %s (pid %d) exited with status %d", e.Name, e.Pid, e.Code)
}

// exitStatus is Exit's error. Main honours this type only, not any error
// with an ExitCode method: an *exec.ExitError that a run function passes
// on must be printed, not turned into a silent exit.
type exitStatus int

func (e exitStatus) Error() string { return fmt.Sprintf("exit status %d", int(e)) }
func (e exitStatus) ExitCode() int { return int(e) }

// Exit is an error that makes Main exit with code, printing nothing: for a
// run function (or entry) that has already reported its failure, such as a
// test binary's m.Run.
func Exit(code int) error { return exitStatus(code) }
