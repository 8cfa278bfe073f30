//go:build linux

// Package shmtest helps the tests of packages built on shm: the fuzz
// targets of the types' Inspect functions share their setup here, and
// tests that reach a segment's file its path.
package shmtest

import (
	"bytes"
	"os"
	"testing"

	"github.com/shmkit/shmkit/shm"
)

// Look makes a segment at path of size data bytes with the type tag,
// whose data region holds data (the fuzzer's bytes), closes it, and
// returns a private look at it (shm.OpenPrivate), as shmctl reads a
// segment. unchanged fails the test if the file's bytes differ from what
// they were before the look: a look must write nothing. The look is
// closed and the file removed when the test ends.
func Look(t testing.TB, path string, size int, tag string, data []byte) (look *shm.Segment, unchanged func()) {
	t.Helper()
	seg, err := shm.Create(path, size, tag, func(s *shm.Segment) error {
		copy(s.Data(), data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { shm.Remove(path) })
	seg.Close()
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	look, err = shm.OpenPrivate(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { look.Close() })
	return look, func() {
		t.Helper()
		if after, err := os.ReadFile(path); err != nil || !bytes.Equal(before, after) {
			t.Fatalf("a look changed the file (%v)", err)
		}
	}
}
