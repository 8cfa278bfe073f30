//go:build linux

package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/shmkit/shmkit/internal/forkexec"
)

// errUsage marks a bad command line: the usage was printed, exit 2.
var errUsage = errors.New("bench: bad usage")

func main() {
	forkexec.Main(func() error {
		err := run(os.Args[1:], os.Stdout, os.Stderr)
		if errors.Is(err, errUsage) {
			return forkexec.Exit(2)
		}
		return err
	})
}

// run is the whole command, for main and the tests.
func run(args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 {
		switch args[0] {
		case "chaos":
			return runChaos(args[1:], stdout, stderr)
		case "recover":
			return runRecover(args[1:], stdout, stderr)
		case "spawn":
			return runSpawn(args[1:], stdout, stderr)
		case "latency":
			return runLatencyGaps(args[1:], stdout, stderr)
		case "replot":
			return runReplot(args[1:], stdout, stderr)
		}
	}
	return runThroughput(args, stdout, stderr)
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
