//go:build linux

package semaphore

import (
	"context"
	"encoding/binary"
	"errors"
	"testing"
	"time"

	"github.com/shmkit/shmkit/shm"
)

func TestBadPlacement(t *testing.T) {
	seg, err := openTest(tempName(t))
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	for _, off := range []int{-64, 8, testSize, testSize - MutexSize + 64} {
		if _, err := NewMutex(context.Background(), seg, off); !errors.Is(err, ErrPlacement) {
			t.Errorf("NewMutex at %d: %v, want ErrPlacement", off, err)
		}
		if _, err := NewSemaphore(context.Background(), seg, off); !errors.Is(err, ErrPlacement) {
			t.Errorf("NewSemaphore at %d: %v, want ErrPlacement", off, err)
		}
	}
}

func TestWrongSegmentType(t *testing.T) {
	name := tempName(t)
	seg, err := shm.Create(name, 8192, "ticketshm.Counter/1", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer seg.Close()
	if _, err := OpenMutex(context.Background(), name); !errors.Is(err, shm.ErrTypeMismatch) {
		t.Fatalf("OpenMutex on another type: %v, want shm.ErrTypeMismatch", err)
	}
	if _, err := OpenSemaphore(context.Background(), name); !errors.Is(err, shm.ErrTypeMismatch) {
		t.Fatalf("OpenSemaphore on another type: %v, want shm.ErrTypeMismatch", err)
	}
	// Zeros are no Semaphore.
	if _, err := NewSemaphore(context.Background(), seg, 0); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("NewSemaphore on zeros: %v, want ErrCorrupt", err)
	}
}

// TestGarbageWord: a futex word owned by an id no live process has is
// treated as an owner that died; the lock is taken with ErrOwnerDead, no
// hang. Other garbage is refused up front.
func TestGarbageWord(t *testing.T) {
	for _, tc := range []struct {
		word uint32
		want error
	}{
		{0x00012345, ErrOwnerDead},
		{0xdeadbeef, ErrOwnerDead},
		{0x40000000, ErrOwnerDead}, // OWNER_DIED, unlocked
		{0x80000000, nil},          // stray WAITERS bit, unlocked
		{0x3fffffff, ErrNotRecoverable},
		{0xffffffff, ErrNotRecoverable},
	} {
		// Biased: the bias word names slot 5, whose entry says it was
		// outside (no process ever had it): a dead owner's word is then
		// taken under a seizure that judges slot 5 (judgeBias), garbage
		// made OWNER_DIED first, and the verdict says nothing to repair.
		for _, biased := range []bool{false, true} {
			seg, err := openTest(tempName(t))
			if err != nil {
				t.Fatal(err)
			}
			binary.LittleEndian.PutUint32(seg.Data()[offWord:], tc.word)
			want := tc.want
			if biased {
				binary.LittleEndian.PutUint64(seg.Data()[offBias:], nextBias(0, 5, -1, 0))
				if want == ErrOwnerDead {
					want = nil
				}
			}
			m, err := NewMutex(context.Background(), seg, 0)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			err = m.LockContext(ctx)
			cancel()
			if !errors.Is(err, want) {
				t.Errorf("word %#x, biased %v: Lock: %v, want %v", tc.word, biased, err, want)
			}
			if err == nil || err == ErrOwnerDead {
				if w, b := word(seg), biasWord(seg); w&tidMask != m.m.tid || biasHolder(b) >= 0 {
					t.Errorf("word %#x, biased %v: locked, but word %#x, bias %#x", tc.word, biased, w, b)
				}
			}
			seg.Close()
		}
	}
}

func TestCorruptRecords(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(b []byte)
		mutex  bool // NewMutex refuses it too
	}{
		{"mutex reserved", func(b []byte) { b[20] = 1 }, true},
		{"mutex owner id", func(b []byte) { binary.LittleEndian.PutUint32(b[offEntries+8:], 0xffffffff) }, true},
		{"capacity negative", func(b []byte) { binary.LittleEndian.PutUint64(b[offCapacity:], 1<<63) }, false},
		{"available above capacity", func(b []byte) { binary.LittleEndian.PutUint64(b[offAvail:], 99) }, false},
		{"held negative", func(b []byte) { binary.LittleEndian.PutUint64(b[offHeld+16:], 1<<63) }, false},
		{"semaphore reserved", func(b []byte) { b[offSeq+8] = 1 }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			seg, err := openTest(tempName(t))
			if err != nil {
				t.Fatal(err)
			}
			defer seg.Close()
			tc.mutate(seg.Data())
			if _, err := NewSemaphore(context.Background(), seg, 0); !errors.Is(err, ErrCorrupt) {
				t.Errorf("NewSemaphore: %v, want ErrCorrupt", err)
			}
			if _, err := NewMutex(context.Background(), seg, 0); tc.mutex && !errors.Is(err, ErrCorrupt) {
				t.Errorf("NewMutex: %v, want ErrCorrupt", err)
			}
		})
	}
}

// FuzzRecord: any bytes in a Semaphore record give a Semaphore or
// ErrCorrupt; a Semaphore built on them can be used without panic or hang.
func FuzzRecord(f *testing.F) {
	valid := make([]byte, SemaphoreSize)
	binary.LittleEndian.PutUint64(valid[offCapacity:], 3)
	binary.LittleEndian.PutUint64(valid[offAvail:], 3)
	f.Add(valid)
	f.Add(make([]byte, SemaphoreSize))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		seg, err := shm.OpenOrCreate(context.Background(), dir+"/seg", SemaphoreSize, testTag, func(s *shm.Segment) error {
			copy(s.Data(), b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		defer shm.Remove(dir + "/seg")
		defer seg.Close()
		s, err := NewSemaphore(context.Background(), seg, 0)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("NewSemaphore: %v, want ErrCorrupt", err)
			}
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := s.Acquire(ctx, 1); err != nil && !errors.Is(err, ErrNotRecoverable) {
			t.Fatalf("Acquire: %v", err)
		} else if err == nil {
			if err := s.Release(1); err != nil {
				t.Fatalf("Release: %v", err)
			}
		}
	})
}

// FuzzMutexRecord: any futex word, hand-off word, bias word and owner-id
// table in a Mutex record gives, through NewMutex or NewBiasedMutex, either
// ErrCorrupt or a lock that can be taken without panic or hang: the bias
// word and the in-critical-section bits are parsed from shared bytes too.
func FuzzMutexRecord(f *testing.F) {
	f.Add(uint32(0), uint32(0), uint64(0), []byte{}, false)
	f.Add(uint32(0x12345), uint32(0), uint64(0x12345), []byte{0x45, 0x23, 0x01, 0x80}, true)
	f.Add(uint32(ownerDiedBit), uint32(0), uint64(0x12345|0x23456<<32), []byte{0x45, 0x23, 0x01, 0x00}, false)
	f.Add(uint32(0x12345|waitersBit), uint32(0x777), uint64(0x54321), []byte{}, true)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, word, handoff uint32, bias uint64, tids []byte, biased bool) {
		seg, err := shm.OpenOrCreate(context.Background(), dir+"/seg", MutexSize, testTag, func(s *shm.Segment) error {
			d := s.Data()
			binary.LittleEndian.PutUint32(d[offWord:], word)
			binary.LittleEndian.PutUint32(d[offHandoff:], handoff)
			binary.LittleEndian.PutUint64(d[offBias:], bias)
			copy(d[offEntries:offNodes], tids)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		defer shm.Remove(dir + "/seg")
		defer seg.Close()
		m, err := newLocker(seg, biased)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("attach: %v, want ErrCorrupt", err)
			}
			return
		}
		done := make(chan error, 1)
		go func() { done <- m.Lock() }()
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			t.Fatalf("Lock hangs on word %#x hand-off %#x bias %#x", word, handoff, bias)
		}
		switch {
		case errors.Is(err, ErrNotRecoverable):
			return
		case errors.Is(err, ErrOwnerDead):
			if err := m.Consistent(); err != nil {
				t.Fatalf("Consistent: %v", err)
			}
		case err != nil:
			t.Fatalf("Lock: %v", err)
		}
		if err := m.Unlock(); err != nil {
			t.Fatalf("Unlock: %v", err)
		}
	})
}
