//go:build !linux

package forkexec

import (
	"context"
	"errors"
	"io"
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
}

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
