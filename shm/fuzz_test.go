//go:build linux

package shm

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

var sentinels = []error{ErrBadMagic, ErrVersion, ErrCorrupt, ErrTruncated, ErrNotReady, ErrTypeMismatch, ErrSizeMismatch}

func isSentinel(err error) bool {
	for _, s := range sentinels {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

func seedCorpus(f *testing.F) {
	f.Add(validFile())
	f.Add([]byte{})
	f.Add([]byte(Magic))
	f.Add(make([]byte, HeaderSize))
	b := validFile()
	b[offState] = 1
	f.Add(b)
}

// FuzzParseHeader: any bytes give a header or a sentinel error, never a
// panic; an accepted header re-encodes to the same bytes.
func FuzzParseHeader(f *testing.F) {
	seedCorpus(f)
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := parseHeader(b)
		if err != nil {
			if !isSentinel(err) {
				t.Fatalf("error without a sentinel: %v", err)
			}
			return
		}
		again := make([]byte, HeaderSize)
		h.encode(again)
		if !bytes.Equal(again, b[:HeaderSize]) {
			t.Fatalf("accepted header does not round-trip:\n got %x\nwant %x", again, b[:HeaderSize])
		}
	})
}

// FuzzOpen writes the bytes to a real file and opens it every way: a
// segment or a sentinel error, never a panic or a SIGBUS; OpenOrCreate
// changes a file only if it was never initialized.
func FuzzOpen(f *testing.F) {
	seedCorpus(f)
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, b []byte) {
		path := filepath.Join(dir, "seg")
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		defer os.Remove(path)
		if s, err := Open(path, testTag); err == nil {
			for i := range s.Data() {
				s.Data()[i]++ // every mapped byte is backed by the file
			}
			s.Close()
		} else if !isSentinel(err) {
			t.Fatalf("Open: error without a sentinel: %v", err)
		}
		if _, err := Stat(path); err != nil && !isSentinel(err) {
			t.Fatalf("Stat: error without a sentinel: %v", err)
		}
		before, _ := os.ReadFile(path)
		s, err := OpenOrCreate(context.Background(), path, 64, testTag, nil)
		if err == nil {
			s.Close()
			return
		}
		if !isSentinel(err) {
			t.Fatalf("OpenOrCreate: error without a sentinel: %v", err)
		}
		after, _ := os.ReadFile(path)
		if !bytes.Equal(before, after) {
			t.Fatalf("OpenOrCreate failed (%v) and changed the file", err)
		}
	})
}
