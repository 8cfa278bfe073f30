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
	"time"
)

// Exit statuses.
const (
	exitOK    = 0 // done; audit: every check holds
	exitFail  = 1 // audit: a check fails; rm, repair: refused or failed; a segment is corrupt
	exitUsage = 2 // bad command line, bad name, a file that is missing, unreadable or no segment
)

// errUsage marks a bad command line.
var errUsage = errors.New("shmctl: bad usage")

// failure is an error that exits 1 rather than 2: the tool did its job
// and the answer is no.
type failure struct{ err error }

func (f failure) Error() string { return f.err.Error() }
func (f failure) Unwrap() error { return f.err }

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `usage: shmctl COMMAND [-json] ARGS

Commands:
  ls [DIR|PATH...]   list shmkit segments (default: /dev/shm)
  stat NAME...       a segment's header, process slots and contents
  audit NAME...      check each segment's invariants; exit 0 only if all hold
  rm [-f] NAME...    remove segments no live process has open (-f: even then)
  repair NAME...     settle what dead processes left, as far as it is safe

A NAME is a bare segment name (tickets: /dev/shm/shmkit.tickets) or a path.
Nothing but rm and repair changes a segment: a look claims no slot and takes
no lock. Exit status: 0 done (audit: all hold), 1 audit failed, rm or repair
refused or failed, a segment corrupt; 2 bad usage or a file that is missing,
unreadable or not a segment.
`

// run is main without the process: it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] == "-h" || args[0] == "-help" || args[0] == "help" {
		fmt.Fprint(stderr, usage)
		if len(args) == 0 {
			return exitUsage
		}
		return exitOK
	}
	cmd, args := args[0], args[1:]
	fs := flag.NewFlagSet("shmctl "+cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	jsonOut := fs.Bool("json", false, "print JSON: one object per segment, one per line")
	force := false
	if cmd == "rm" || cmd == "repair" {
		fs.BoolVar(&force, "f", false, "go on although live processes have the segment open")
	}
	timeout := 10 * time.Second
	if cmd == "repair" {
		fs.DurationVar(&timeout, "timeout", timeout, "how long to wait for a lock or a slot")
	}
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	procIndex = nil // /proc as it is now
	out := newPrinter(stdout, *jsonOut)
	defer out.flush()
	complain := func(err error) { out.flush(); fmt.Fprintf(stderr, "shmctl %s: %s\n", cmd, printable(err.Error())) }
	var code int
	switch cmd {
	case "ls":
		code = status(ls(out, fs.Args()), complain)
	case "stat":
		code = each(fs.Args(), complain, func(name string) error { return stat(out, name) })
	case "audit":
		code = each(fs.Args(), complain, func(name string) error { return audit(out, name) })
	case "rm":
		code = each(fs.Args(), complain, func(name string) error { return rm(out, name, force) })
	case "repair":
		ctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		code = each(fs.Args(), complain, func(name string) error { return repair(ctx, out, name, force) })
	default:
		fmt.Fprintf(stderr, "shmctl: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
	return code
}

// status is the exit status of err, which complain reports.
func status(err error, complain func(error)) int {
	if err == nil {
		return exitOK
	}
	complain(err)
	var f failure
	if errors.As(err, &f) {
		return exitFail
	}
	return exitUsage
}

// each runs fn for every name, on all of them even after a failure, and
// returns the worst status: a usage error (2) over a failure (1).
func each(names []string, complain func(error), fn func(string) error) int {
	if len(names) == 0 {
		complain(fmt.Errorf("%w: no segment named", errUsage))
		return exitUsage
	}
	worst := exitOK
	for _, name := range names {
		worst = max(worst, status(fn(name), complain))
	}
	return worst
}
