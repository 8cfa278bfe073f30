//go:build linux

package shm_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/shmkit/shmkit/shm"
)

// A counter shared by every process that opens "example.visits": the first
// one creates and initializes it, the others just map it.
func ExampleOpenOrCreate() {
	const tag = "example.Visits/1"
	s, err := shm.OpenOrCreate(context.Background(), "example.visits", 8, tag, func(s *shm.Segment) error {
		v, err := s.Int64(0)
		if err != nil {
			return err
		}
		v.Store(100) // runs once, in one process, before anyone else sees the segment
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Remove("example.visits")
	defer s.Close()

	visits, err := s.Int64(0)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(visits.Add(1))
	// Output: 101
}

// Stat reads a header without mapping the segment; a damaged file is
// described, not mapped.
func ExampleStat() {
	dir, _ := os.MkdirTemp("", "shm-example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "seg")

	s, err := shm.Create(path, 4096, "example.Stat/1", nil)
	if err != nil {
		log.Fatal(err)
	}
	s.Close()
	info, err := shm.Stat(path)
	fmt.Println(info.Tag, info.Size, info.State, err)

	os.WriteFile(path, []byte(`{"count": 100}`), 0o600)
	_, err = shm.Stat(path)
	fmt.Println(err != nil)
	// Output:
	// example.Stat/1 4096 ready <nil>
	// true
}

// Views are bounds- and alignment-checked.
func ExampleSegment_Uint32() {
	s, err := shm.Create("example.views", 16, "example.Views/1", nil)
	if err != nil {
		log.Fatal(err)
	}
	defer shm.Remove("example.views")
	defer s.Close()

	_, err = s.Uint32(2)
	fmt.Println(err)
	_, err = s.Uint32(16)
	fmt.Println(err)
	// Output:
	// /dev/shm/shmkit.example.views: shm: misaligned offset: 4-byte view at offset 2; use a multiple of 4
	// /dev/shm/shmkit.example.views: shm: offset out of range: 4-byte view at offset 16, data region is 16 bytes
}
