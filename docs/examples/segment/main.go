// Command segment is lesson 7: a shared-memory segment is a file in
// /dev/shm with a self-validating header; processes map it and update
// typed atomic views of its data; a file that is not a segment is refused.
package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/shm"
)

const (
	name = "lesson7.visits"
	tag  = "lesson7.Visits/1"
	junk = "/dev/shm/shmkit.lesson7.junk"
)

// The data: visits at offset 0, the run's token at 8.
const offVisits, offToken = 0, 8

func init() {
	process.Register("visitor", func(args []string) error {
		seg, err := shm.Open(name, tag)
		if err != nil {
			return err
		}
		defer seg.Close()
		visits, err := seg.Int64(offVisits)
		if err != nil {
			return err
		}
		token, err := seg.Uint64(offToken)
		if err != nil {
			return err
		}
		// A name is not a segment: a visitor of a run killed before
		// this one may open the name after the next run made it anew,
		// and would count its visits there. Only the run that started
		// us has our token.
		if want, _ := strconv.ParseUint(args[0], 10, 64); token.Load() != want {
			return fmt.Errorf("/dev/shm/shmkit.%s is another run's segment: not counting", name)
		}
		for range 1000 {
			visits.Add(1)
		}
		return nil
	})
}

func main() { process.Main(run) }

func run() error {
	// A segment outlives the program that made it. One left by an
	// earlier run, killed before its Remove, still holds that run's
	// visits: remove it, or this run would count from there.
	if shm.Remove(name) == nil {
		fmt.Fprintln(os.Stderr, "removed /dev/shm/shmkit."+name+", left by an earlier run")
	}
	os.Remove(junk)
	seg, err := shm.Create(name, 64, tag, nil)
	if err != nil {
		return err
	}
	defer shm.Remove(name) // the file goes now; our mapping stays until Close
	defer seg.Close()
	fmt.Println("segment: /dev/shm/shmkit." + name + ", removed at the end")
	token, _ := seg.Uint64(offToken)
	token.Store(rand.Uint64())

	var ps []*process.Process
	for range 4 {
		p := &process.Process{Entry: "visitor", Args: []string{strconv.FormatUint(token.Load(), 10)}}
		if err := p.Start(); err != nil {
			return err
		}
		ps = append(ps, p)
	}
	for _, p := range ps {
		if err := p.Join(context.Background()); err != nil {
			return err
		}
	}
	visits, _ := seg.Int64(offVisits)
	fmt.Println("4 processes x 1000 atomic adds:", visits.Load())

	info, err := shm.Stat(name)
	if err != nil {
		return err
	}
	fmt.Printf("header: path %s, tag %q, version %d, %d data bytes, state %v\n",
		info.Path, info.Tag, info.Version, info.Size, info.State)

	// A file that is not a segment, and a segment of another type.
	os.WriteFile(junk, []byte(`{"count": 10}`), 0o600)
	defer os.Remove(junk)
	_, err = shm.Open("lesson7.junk", tag)
	fmt.Println("a JSON file,", junk+", removed at the end, is refused:", errors.Is(err, shm.ErrTruncated) || errors.Is(err, shm.ErrBadMagic))
	_, err = shm.Open(name, "some.Other/1")
	fmt.Println("another type is refused:", errors.Is(err, shm.ErrTypeMismatch))
	return nil
}
