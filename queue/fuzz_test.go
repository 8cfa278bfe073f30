//go:build linux

package queue

import (
	"context"
	"errors"
	"io"
	"testing"
	"unsafe"

	"github.com/shmkit/shmkit/internal/shmtest"
)

// FuzzOpen: any bytes in a queue's words (shape, head, tail, cells) give
// Open a queue or a sentinel error, never a panic; an opened queue's
// TrySend, TryRecv and Inspect return (a sentinel error at worst), and a
// private look changes nothing.
func FuzzOpen(f *testing.F) {
	const capacity, maxSize = 4, 16
	valid := make([]uint64, size(capacity, maxSize)/8) // 8-aligned, as layout's atomics want
	vb := unsafe.Slice((*byte)(unsafe.Pointer(&valid[0])), len(valid)*8)
	layout(vb, capacity, maxSize)
	valid8 := vb
	f.Add(valid8[:offCells+2*cellSizeOf(maxSize)])
	f.Add(valid8)
	f.Add([]byte{})
	f.Add(valid8[:offAreas])
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := dir + "/q"
		look, unchanged := shmtest.Look(t, path, size(capacity, maxSize), Tag, b)
		if _, err := Inspect(look); err != nil && !errors.Is(err, ErrCorrupt) {
			t.Fatalf("Inspect: %v", err)
		}
		look.Close()
		unchanged()
		q, err := Open(context.Background(), path)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Open: error without a sentinel: %v", err)
			}
			return
		}
		defer q.Close()
		buf := make([]byte, maxSize)
		for range 8 {
			if _, err := q.TrySend([]byte("x")); err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, ErrSendClosed) {
				t.Fatalf("TrySend: %v", err)
			}
			if _, _, err := q.TryRecv(buf); err != nil && !errors.Is(err, ErrCorrupt) && !errors.Is(err, io.EOF) {
				t.Fatalf("TryRecv: %v", err)
			}
		}
	})
}
