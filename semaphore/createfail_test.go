//go:build linux

package semaphore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"testing"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// tooManyEntry: args prefix. Creates Mutex segments until the process
// slot's robust list is full (ErrTooMany), then reports whether the
// failed Create left its name behind and what a retry says; removes all.
func tooManyEntry(args []string) int {
	ctx := context.Background()
	var made []*Mutex
	defer func() {
		for i, m := range made {
			m.Close()
			shm.Remove(fmt.Sprintf("%s.%d", args[0], i))
		}
	}()
	for i := 0; ; i++ {
		name := fmt.Sprintf("%s.%d", args[0], i)
		m, err := CreateMutex(ctx, name)
		if err == nil {
			made = append(made, m)
			continue
		}
		if !errors.Is(err, ErrTooMany) {
			return fail(err)
		}
		path, _ := shm.Path(name)
		_, serr := os.Stat(path)
		_, retry := CreateMutex(ctx, name)
		_, serr2 := CreateSemaphore(ctx, name+".sem", 1)
		path2, _ := shm.Path(name + ".sem")
		_, serr3 := os.Stat(path2)
		fmt.Println("toomany", i, errors.Is(serr, fs.ErrNotExist), errors.Is(retry, fs.ErrExist), errors.Is(serr2, ErrTooMany), errors.Is(serr3, fs.ErrNotExist))
		shm.Remove(name)
		shm.Remove(name + ".sem")
		return 0
	}
}

// TestCreateFailureKeepsTheSegment (review, two rounds): a Create that
// made and named its segment and then could not attach it (here: the
// robust list full) returns the attach's error and leaves the segment,
// which other processes may have opened already: removing it by name
// split a sale in two. A retry of Create finds the name taken.
func TestCreateFailureKeepsTheSegment(t *testing.T) {
	prefix := fmt.Sprintf("semtest.toomany.%d", os.Getpid())
	p := testproc.Start(t, "too-many", prefix)
	line := p.ExpectPrefix("toomany")
	p.MustExit()
	if line != " 2048 false true true false" {
		t.Fatalf("got %q; want the 2049th Create to fail with ErrTooMany and keep its segment, and its retry to find the name taken", "toomany"+line)
	}
}
