//go:build linux

package testproc

import (
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// HoldFile takes a reference (pidfd_getfd) to the child p's open file of
// path, so that once p is killed and reaped, the file, and a shm slot's
// lock that lives on it, outlive p until release is called (or the test
// ends; safe to call from any goroutine, more than once): what a reader of /proc/PID/maps or smaps does for milliseconds
// in a full test run, made to last as long as a test wants.
func (p *Proc) HoldFile(t testing.TB, path string) (release func()) {
	t.Helper()
	dir := "/proc/" + strconv.Itoa(p.Pid()) + "/fd"
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	fd := -1
	for _, e := range ents {
		if l, err := os.Readlink(filepath.Join(dir, e.Name())); err == nil && l == path {
			fd, _ = strconv.Atoi(e.Name())
		}
	}
	if fd < 0 {
		t.Fatalf("testproc: no descriptor of %s in %s", path, dir)
	}
	pidfd, err := unix.PidfdOpen(p.Pid(), 0)
	if err != nil {
		t.Skip("testproc: pidfd_open:", err)
	}
	held, err := unix.PidfdGetfd(pidfd, fd, 0)
	unix.Close(pidfd)
	if err != nil {
		t.Skip("testproc: pidfd_getfd:", err)
	}
	var once sync.Once
	release = func() { once.Do(func() { unix.Close(held) }) }
	t.Cleanup(release)
	return release
}

// Zombie kills p and waits until it is a zombie: dead, its files closed
// (but for references others hold: HoldFile), not yet reaped, so that its
// pid still names a process. Wait reaps it.
func (p *Proc) Zombie(t testing.TB) {
	t.Helper()
	p.Kill()
	for range 5000 {
		st, err := Stat(p.Pid())
		if err != nil {
			t.Fatal(err)
		}
		if st.State == 'Z' {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("testproc: pid %d is no zombie 5 s after its SIGKILL", p.Pid())
}
