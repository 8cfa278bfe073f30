//go:build linux

package testproc

import (
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// HoldClaimEntry is a child entry (args: a segment's file path, shm.Path
// of its name) that takes the segment's slot-claim lock, as a claimer
// stopped mid-claim holds it, says "claiming" and waits to be killed. The
// lock is the OFD write lock on byte 2^62+1 of the file (attachLockOffset
// in shm/file_linux.go).
func HoldClaimEntry(args []string) int {
	f, err := os.OpenFile(args[0], os.O_RDWR, 0)
	if err == nil {
		lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: 1<<62 + 1, Len: 1}
		err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Println("claiming")
	time.Sleep(time.Hour)
	return 0
}
