//go:build linux

package semaphore

import (
	"testing"

	"github.com/shmkit/shmkit/internal/shmtest"
)

// FuzzInspect: any bytes in a Semaphore record (whose first part is a
// Mutex record) give InspectMutex and InspectSemaphore an answer or an
// error, never a panic, and a private look changes no byte of the file.
func FuzzInspect(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{0x45, 0x23, 0x01, 0x40, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0})
	valid := make([]byte, SemaphoreSize)
	i64(valid, offCapacity).Store(3)
	i64(valid, offAvail).Store(1)
	i64(valid, offHeld+16*2).Store(2)
	u64(valid, offHeld+16*2+8).Store(7)
	f.Add(valid)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		look, unchanged := shmtest.Look(t, dir+"/seg", SemaphoreSize, testTag, b)
		m, err := InspectMutex(look, 0)
		if err != nil {
			t.Fatal(err)
		}
		if m.State == "" || m.Consistency == "" {
			t.Fatalf("a state without words: %+v", m)
		}
		s, err := InspectSemaphore(look, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range s.Holders {
			if h.Permits == 0 || h.Slot < 0 || h.Slot >= MaxProcs {
				t.Fatalf("holder %+v", h)
			}
		}
		if _, err := InspectMutex(look, 1); err == nil {
			t.Fatal("a misplaced record: no error")
		}
		unchanged()
	})
}
