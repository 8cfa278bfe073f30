//go:build linux

package semaphore

import (
	"context"
	"errors"
	"io/fs"
	"testing"
)

// TestOpenVocabulary (issue 17): Open* must find the segment, Create*
// must not, OpenOrCreate* take either; a Semaphore's capacity mismatch is
// said in permits.
func TestOpenVocabulary(t *testing.T) {
	ctx := context.Background()
	name := tempName(t)
	if _, err := OpenMutex(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenMutex of a missing lock: %v, want fs.ErrNotExist", err)
	}
	m, err := CreateMutex(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, err := CreateMutex(ctx, name); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateMutex of an existing lock: %v, want fs.ErrExist", err)
	}
	for _, open := range []func(context.Context, string) (*Mutex, error){OpenMutex, OpenOrCreateMutex} {
		o, err := open(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		o.Close()
	}

	sname := tempName(t)
	if _, err := OpenSemaphore(ctx, sname); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("OpenSemaphore of a missing one: %v, want fs.ErrNotExist", err)
	}
	if _, err := CreateSemaphore(ctx, sname, 0); err == nil {
		t.Fatal("CreateSemaphore of 0 permits: nil")
	}
	s, err := CreateSemaphore(ctx, sname, 2)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := CreateSemaphore(ctx, sname, 2); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("CreateSemaphore of an existing one: %v, want fs.ErrExist", err)
	}
	if _, err := OpenOrCreateSemaphore(ctx, sname, 3); !errors.Is(err, ErrCapacityMismatch) {
		t.Fatalf("OpenOrCreateSemaphore with 3 permits of a 2: %v, want ErrCapacityMismatch", err)
	}
	o, err := OpenSemaphore(ctx, sname)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if o.Capacity() != 2 {
		t.Fatalf("OpenSemaphore: capacity %d, want 2", o.Capacity())
	}
}
