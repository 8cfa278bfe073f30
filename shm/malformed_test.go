//go:build linux

package shm

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// validFile is a ready segment file image with a 64-byte data region.
func validFile() []byte {
	b := make([]byte, DataOffset+64)
	h := header{totalSize: uint64(len(b)), state: StateReady, tag: testTag, inits: 1}
	h.encode(b)
	return b
}

// reseal recomputes the checksum after a mutation, so that the test reaches
// the check behind it.
func reseal(b []byte) { binary.LittleEndian.PutUint32(b[offChecksum:], checksum(b)) }

func TestMalformedFiles(t *testing.T) {
	type fileCase struct {
		name   string
		mutate func([]byte) []byte
		want   error
	}
	for _, tc := range []fileCase{
		{"valid", func(b []byte) []byte { return b }, nil},
		{"bad magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrBadMagic},
		{"text file", func([]byte) []byte { return []byte(`{"count": 100}`) }, ErrBadMagic},
		{"newer version", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[offVersion:], Version+1); return b }, ErrVersion},
		{"version 1 (no slot table)", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[offVersion:], 1); return b }, ErrVersion},
		{"slot count", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[offSlots:], 64); reseal(b); return b }, ErrCorrupt},
		{"version zero", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[offVersion:], 0); return b }, ErrVersion},
		{"header size", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[offHeaderSize:], 64); reseal(b); return b }, ErrCorrupt},
		{"checksum", func(b []byte) []byte { b[offTag] ^= 1; return b }, ErrCorrupt},
		{"checksum field", func(b []byte) []byte { b[offChecksum] ^= 1; return b }, ErrCorrupt},
		{"unknown state", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[offState:], 7); return b }, ErrCorrupt},
		{"empty state with magic", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[offState:], 0); return b }, ErrCorrupt},
		{"reserved", func(b []byte) []byte { b[HeaderSize-1] = 1; return b }, ErrCorrupt},
		{"tag garbage after NUL", func(b []byte) []byte { b[offInits-1] = 'x'; reseal(b); return b }, ErrCorrupt},
		{"tag not UTF-8", func(b []byte) []byte { b[offTag] = 0xff; reseal(b); return b }, ErrCorrupt},
		{"tag empty", func(b []byte) []byte { clear(b[offTag:offInits]); reseal(b); return b }, ErrCorrupt},
		{"size absurd", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[offTotalSize:], 1<<62); reseal(b); return b }, ErrCorrupt},
		{"size below header", func(b []byte) []byte { binary.LittleEndian.PutUint64(b[offTotalSize:], 10); reseal(b); return b }, ErrCorrupt},
		{"no data region", func(b []byte) []byte {
			binary.LittleEndian.PutUint64(b[offTotalSize:], DataOffset)
			reseal(b)
			return b[:DataOffset]
		}, ErrCorrupt},
		{"data truncated", func(b []byte) []byte { return b[:DataOffset+10] }, ErrTruncated},
		{"slot table truncated", func(b []byte) []byte { return b[:HeaderSize+10] }, ErrTruncated},
		{"header truncated", func(b []byte) []byte { return b[:50] }, ErrTruncated},
		{"magic only", func(b []byte) []byte { return b[:8] }, ErrTruncated},
		{"longer than header says", func(b []byte) []byte { return append(b, 1, 2, 3) }, ErrCorrupt},
		{"initializing", func(b []byte) []byte { binary.LittleEndian.PutUint32(b[offState:], 1); return b }, ErrNotReady},
		{"all zeros", func(b []byte) []byte { return make([]byte, 4096) }, ErrNotReady},
		{"empty file", func([]byte) []byte { return nil }, ErrNotReady},
		{"zeros shorter than header", func([]byte) []byte { return make([]byte, 10) }, ErrNotReady},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "seg")
			content := tc.mutate(validFile())
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := Open(path, testTag)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Open: %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if s != nil {
				s.Close()
			}
			info, err := Stat(path)
			if tc.name == "initializing" {
				// Stat describes, it does not wait: the state is the answer.
				if err != nil || info.State != StateInitializing {
					t.Errorf("Stat: %+v, %v; want state initializing", info, err)
				}
			} else if !errors.Is(err, tc.want) {
				t.Errorf("Stat: %v, want %v", err, tc.want)
			}
			if tc.want == nil || errors.Is(tc.want, ErrNotReady) {
				return
			}
			// OpenOrCreate must refuse it too, and leave it as it was.
			if _, err := OpenOrCreate(context.Background(), path, 64, testTag, nil); !errors.Is(err, tc.want) {
				t.Errorf("OpenOrCreate: %v, want %v", err, tc.want)
			}
			after, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(after, content) {
				t.Errorf("OpenOrCreate changed a malformed file (%v)", err)
			}
		})
	}
}

func TestNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	valid := filepath.Join(dir, "valid")
	if err := os.WriteFile(valid, validFile(), 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "link")
	if err := os.Symlink(valid, link); err != nil {
		t.Fatal(err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{link, fifo, sub} {
		if _, err := Open(path, testTag); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Open(%s): %v, want ErrNotRegular", path, err)
		}
		if _, err := OpenOrCreate(context.Background(), path, 64, testTag, nil); !errors.Is(err, ErrNotRegular) {
			t.Errorf("OpenOrCreate(%s): %v, want ErrNotRegular", path, err)
		}
		if _, err := Stat(path); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Stat(%s): %v, want ErrNotRegular", path, err)
		}
		if err := Remove(path); !errors.Is(err, ErrNotRegular) {
			t.Errorf("Remove(%s): %v, want ErrNotRegular", path, err)
		}
	}
	if _, err := Open(filepath.Join(dir, "missing"), testTag); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open(missing): %v, want fs.ErrNotExist", err)
	}
}

func TestForeignOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give a file to another uid")
	}
	path := filepath.Join(t.TempDir(), "seg")
	if err := os.WriteFile(path, validFile(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(path, 4242, 4242); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, testTag); !errors.Is(err, ErrWrongOwner) {
		t.Fatalf("Open: %v, want ErrWrongOwner", err)
	}
	if _, err := OpenOrCreate(context.Background(), path, 64, testTag, nil); !errors.Is(err, ErrWrongOwner) {
		t.Fatalf("OpenOrCreate: %v, want ErrWrongOwner", err)
	}
}

func TestBadArguments(t *testing.T) {
	ctx := context.Background()
	name := tempName(t)
	for _, tc := range []struct {
		what string
		err  error
		want error
	}{
		{"size 0", func() error { _, err := OpenOrCreate(ctx, name, 0, testTag, nil); return err }(), ErrInvalidSize},
		{"size -1", func() error { _, err := Create(name, -1, testTag, nil); return err }(), ErrInvalidSize},
		{"size huge", func() error { _, err := Create(name, MaxDataSize+1, testTag, nil); return err }(), ErrInvalidSize},
		{"tag empty", func() error { _, err := Create(name, 8, "", nil); return err }(), ErrInvalidTag},
		{"tag long", func() error { _, err := Create(name, 8, strings.Repeat("t", MaxTagLen+1), nil); return err }(), ErrInvalidTag},
		{"tag NUL", func() error { _, err := Open(name, "a\x00b"); return err }(), ErrInvalidTag},
		{"name ..", func() error { _, err := Create("/tmp/../x", 8, testTag, nil); return err }(), ErrInvalidName},
		{"name NUL", func() error { _, err := OpenOrCreate(ctx, "a\x00", 8, testTag, nil); return err }(), ErrInvalidName},
		{"remove ..", Remove(".."), ErrInvalidName},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.what, tc.err, tc.want)
		}
	}
	if _, err := Stat(name); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("a refused call left a file: %v", err)
	}
}

// TestNoSpace: a segment bigger than the tmpfs fails with ENOSPC from
// fallocate, instead of a mapping that SIGBUSes later.
func TestNoSpace(t *testing.T) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(Dir, &st); err != nil {
		t.Skipf("statfs %s: %v", Dir, err)
	}
	total := int64(st.Blocks) * st.Bsize
	if total+1 > MaxDataSize {
		t.Skipf("%s holds %d bytes, more than a segment may", Dir, total)
	}
	_, err := OpenOrCreate(context.Background(), tempName(t), int(total+1), testTag, nil)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("OpenOrCreate(%d bytes): %v, want ENOSPC", total+1, err)
	}
}
