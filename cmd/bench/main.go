//go:build linux

package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/process"
)

// errUsage marks a bad command line: the usage was printed, exit 2.
var errUsage = errors.New("bench: bad usage")

func main() {
	process.Main(func() error {
		return runInterruptible(os.Args[1:], os.Stdout, os.Stderr)
	})
}

// runInterruptible is run under SIGINT and SIGTERM: either cancels the
// run's context, and every command then stops its buyers, removes what it
// made (segments, temporary files and directories, a redis-server it
// started) and returns; the process exits 130 or 143, as a shell reports
// a process killed by the signal. A terminal's Ctrl-C also reaches the
// buyers (one process group): a buyer killed by it counts as the
// interruption too.
func runInterruptible(args []string, stdout, stderr io.Writer) error {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	go func() {
		select {
		case s := <-sigs:
			cancel(interrupted{s.(syscall.Signal)})
		case <-ctx.Done():
		}
	}()
	err := run(ctx, args, stdout, stderr)
	if errors.Is(err, errUsage) {
		return process.Exit(2)
	}
	var in interrupted
	var ee *process.ExitError
	switch {
	case errors.As(context.Cause(ctx), &in):
	case errors.As(err, &ee) && (ee.Code == -int(syscall.SIGINT) || ee.Code == -int(syscall.SIGTERM)):
		in = interrupted{syscall.Signal(-ee.Code)}
	default:
		return err
	}
	fmt.Fprintf(stderr, "\nbench: interrupted by %s; removed what the run made\n", unix.SignalName(in.sig))
	return process.Exit(128 + int(in.sig))
}

// interrupted is the cause of a run's context cancelled by a signal.
type interrupted struct{ sig syscall.Signal }

func (i interrupted) Error() string { return "bench: interrupted by " + unix.SignalName(i.sig) }

// run is the whole command, for main and the tests.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "chaos":
			return runChaos(ctx, args[1:], stdout, stderr)
		case "recover":
			return runRecover(ctx, args[1:], stdout, stderr)
		case "spawn":
			return runSpawn(ctx, args[1:], stdout, stderr)
		case "queue":
			return runQueue(ctx, args[1:], stdout, stderr)
		case "pingpong":
			return runPingPong(ctx, args[1:], stdout, stderr)
		case "latency":
			return runLatencyGaps(ctx, args[1:], stdout, stderr)
		case "replot":
			return runReplot(args[1:], stdout, stderr)
		}
	}
	return runThroughput(ctx, args, stdout, stderr)
}

// newFlags makes a flag set that reports errors as errUsage and prints
// usage on stderr.
func newFlags(name, synopsis string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "usage: %s\n\n", synopsis)
		fs.PrintDefaults()
	}
	return fs
}

// parse parses args and turns every failure into errUsage.
func parse(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return fmt.Errorf("%w: help", errUsage)
		}
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(fs.Output(), "unexpected argument %q\n", fs.Arg(0))
		fs.Usage()
		return fmt.Errorf("%w: unexpected argument %q", errUsage, fs.Arg(0))
	}
	return nil
}

// usageError prints msg and the usage, and returns errUsage.
func usageError(fs *flag.FlagSet, format string, args ...any) error {
	msg := fmt.Sprintf(format, args...)
	fmt.Fprintln(fs.Output(), "bench:", msg)
	fs.Usage()
	return fmt.Errorf("%w: %s", errUsage, msg)
}
