//go:build linux

package jsonfile

import (
	"context"
	"errors"
	"fmt"
	"syscall"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
)

func TestMain(m *testing.M) {
	testproc.Main(m, map[string]testproc.Entry{
		"buy":    buyEntry,
		"create": createEntry,
	})
}

// errnos a child reports by name: the faults the tests inject.
var errnos = map[string]syscall.Errno{"ENOSPC": syscall.ENOSPC, "EIO": syscall.EIO, "EDQUOT": syscall.EDQUOT}

// report prints the outcome of a call for the parent: "ok <ticket>", or
// "err <ERRNO>" when the error wraps one of errnos, or "err other: ...".
func report(n int64, err error) {
	if err == nil {
		fmt.Printf("ok %d\n", n)
		return
	}
	for name, e := range errnos {
		if errors.Is(err, e) {
			fmt.Printf("err %s\n", name)
			return
		}
	}
	fmt.Printf("err other: %v\n", err)
}

// buyEntry: buy one ticket from the db file args[0] with a FlockStore.
func buyEntry(args []string) int {
	s, err := OpenFlock(args[0])
	if err != nil {
		fmt.Printf("err other: %v\n", err)
		return 0
	}
	defer s.Close()
	report(s.Buy(context.Background()))
	return 0
}

// createEntry: Reset(args[0], args[1]).
func createEntry(args []string) int {
	var n int64
	fmt.Sscan(args[1], &n)
	report(n, Reset(args[0], n))
	return 0
}
