//go:build linux

package outside

import (
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const program = `package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

func init() { process.Register("worker", worker) }

// worker: 1000 goroutines share this process's *Counter until it is sold
// out; each sale is also counted in a word guarded by the Mutex, with Do.
func worker(args []string) error {
	ctx := context.Background()
	c, err := ticketshm.Open(context.Background(), args[0])
	if err != nil {
		return err
	}
	defer c.Close()
	m, err := semaphore.OpenMutex(ctx, args[1])
	if err != nil {
		return err
	}
	defer m.Close()
	seg, err := shm.Open(args[2], "outside.Tally/1")
	if err != nil {
		return err
	}
	defer seg.Close()
	tally, err := seg.Int64(0)
	if err != nil {
		return err
	}
	var wg sync.WaitGroup
	errs := make(chan error, 1000)
	for range 1000 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				if _, err := c.Buy(ctx); errors.Is(err, ticketshm.ErrSoldOut) {
					return
				} else if err != nil {
					errs <- err
					return
				}
				err := m.Do(ctx, func(ownerDied bool) error {
					tally.Store(tally.Load() + 1)
					return nil
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	return <-errs
}

func main() { process.Main(run) }

func run() error {
	ctx := context.Background()
	pid := os.Getpid()
	names := []string{fmt.Sprintf("outside.%d.tickets", pid), fmt.Sprintf("outside.%d.lock", pid), fmt.Sprintf("outside.%d.tally", pid)}
	for _, n := range names {
		defer shm.Remove(n)
	}
	c, err := ticketshm.Create(ctx, names[0], 20000, ticketshm.Locked)
	if err != nil {
		return err
	}
	defer c.Close()
	seg, err := shm.Create(names[2], 8, "outside.Tally/1", nil)
	if err != nil {
		return err
	}
	defer seg.Close()
	m, err := semaphore.CreateMutex(ctx, names[1])
	if err != nil {
		return err
	}
	defer m.Close()
	var ps []*process.Process
	for range 2 {
		p := &process.Process{Entry: "worker", Args: names}
		if err := p.Start(); err != nil {
			return err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.Join(ctx); err != nil {
			return err
		}
	}
	a, err := c.Audit(context.Background())
	if err != nil {
		return err
	}
	tally, _ := seg.Int64(0)
	fmt.Printf("sold %d lost %d oversold %d double %d tally %d\n", a.Sold, a.Lost, a.Oversold, a.DoubleSold, tally.Load())
	return nil
}
`

// TestOutsideModule builds and runs the program above in a module of its
// own: two worker processes of 1000 goroutines each, sharing one Counter
// per process and a Mutex used through Do.
func TestOutsideModule(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a module: not in -short")
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	// go test caches a passing run and reruns it only when a file the
	// test itself opened or stat'ed changes: stat every source file of
	// the module, so that a change anywhere in it runs this test again.
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		if name := d.Name(); strings.HasSuffix(name, ".go") || name == "go.mod" || name == "go.sum" {
			_, err = os.Stat(path)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	gomod := "module example.com/user\n\ngo 1.24\n\nrequire github.com/shmkit/shmkit v0.0.0\n\nreplace github.com/shmkit/shmkit => " + root + "\n"
	if err := os.WriteFile(filepath.Join(dir, "go.mod"), []byte(gomod), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte(program), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	run := func(args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GOFLAGS=-mod=mod", "GOWORK=off")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("go %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("mod", "tidy")
	run("build", "-o", "user", ".")
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "user")).CombinedOutput()
	if err != nil {
		t.Fatalf("the program: %v\n%s", err, out)
	}
	if got, want := strings.TrimSpace(string(out)), "sold 20000 lost 0 oversold 0 double 0 tally 20000"; got != want {
		t.Fatalf("the program printed %q, want %q", got, want)
	}
}
