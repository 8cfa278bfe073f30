//go:build !linux

package process

import (
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
)

// Elsewhere than Linux, Start fails with errors.ErrUnsupported and Main
// just runs run.

type Entry func(args []string) error

type Info struct {
	Pid, PPid     int
	Name          string
	Daemon, Child bool
}

type Process struct {
	Entry           string
	Args            []string
	Name            string
	Daemon          bool
	Stdout, Stderr  io.Writer
	NewPIDNamespace bool
	Files           []*os.File
}

// Files is nil: no process is started off Linux.
func Files() []*os.File { return nil }

func Register(name string, fn Entry) {}
func Main(run func() error) {
	if err := run(); err != nil {
		panic(err)
	}
}
func Current() Info                               { return Info{Name: "MainProcess"} }
func SetSubreaper() error                         { return errors.ErrUnsupported }
func ReapOrphan(pid int) (int, error)             { return 0, errors.ErrUnsupported }
func (p *Process) Start() error                   { return errors.ErrUnsupported }
func (p *Process) Join(ctx context.Context) error { return ErrNotStarted }
func (p *Process) IsAlive() bool                  { return false }
func (p *Process) Terminate() error               { return ErrNotStarted }
func (p *Process) Kill() error                    { return ErrNotStarted }
func (p *Process) Pid() int                       { return 0 }
func (p *Process) ExitCode() (int, bool)          { return 0, false }
func (p *Process) Done() <-chan struct{}          { return make(chan struct{}) }
func (p *Process) SetDaemon(daemon bool) error {
	p.Daemon = daemon
	return nil
}

type ParentProcess struct{}

func ActiveChildren() []*Process                        { return nil }
func Parent() *ParentProcess                            { return nil }
func (p *ParentProcess) Pid() int                       { return 0 }
func (p *ParentProcess) Name() string                   { return "" }
func (p *ParentProcess) Done() <-chan struct{}          { return make(chan struct{}) }
func (p *ParentProcess) IsAlive() bool                  { return false }
func (p *ParentProcess) Join(ctx context.Context) error { return errors.ErrUnsupported }
func (p *ParentProcess) String() string                 { return "<_ParentProcess>" }
func (p *Process) Interrupt() error                     { return ErrNotStarted }
func (p *Process) String() string                       { return "<Process name='" + p.Name + "' initial>" }

func KeepWarm(n int) error { return errors.ErrUnsupported }

// StartCommand fails with errors.ErrUnsupported: Pdeathsig is Linux's.
func StartCommand(cmd *exec.Cmd) error { return errors.ErrUnsupported }
