//go:build linux

package process

import (
	"context"
	"fmt"
	"io"
	"os"
	"testing"
)

func init() {
	Register("write-files", func(args []string) error {
		fs := Files()
		if len(fs) != 2 {
			return fmt.Errorf("given %d files, want 2", len(fs))
		}
		for i, f := range fs {
			fmt.Fprintf(f, "file %d of %s", i, Current().Name)
			f.Close()
		}
		return nil
	})
}

// TestFiles: a child gets its parent's Process.Files, in order, as
// Files(); with KeepWarm on, it is started cold all the same (a warm
// child was started before the files existed).
func TestFiles(t *testing.T) {
	KeepWarm(1)
	defer KeepWarm(0)
	r0, w0, _ := os.Pipe()
	r1, w1, _ := os.Pipe()
	p := &Process{Entry: "write-files", Name: "writer", Files: []*os.File{w0, w1}}
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	w0.Close()
	w1.Close()
	for i, r := range []*os.File{r0, r1} {
		b, err := io.ReadAll(r)
		if want := fmt.Sprintf("file %d of writer", i); err != nil || string(b) != want {
			t.Errorf("file %d: %q %v, want %q", i, b, err, want)
		}
		r.Close()
	}
	if err := p.Join(context.Background()); err != nil {
		t.Fatal(err)
	}
	if Files() != nil {
		t.Error("the parent has Files")
	}
}
