//go:build linux

package main

import (
	"context"
	"strconv"

	"github.com/shmkit/shmkit/internal/cyard"
	"github.com/shmkit/shmkit/shm"
)

// c-ring is Dmitry Vyukov's bounded MPMC ring in C (internal/cyard's
// yard.h), run by yard as producer and consumer processes, in a segment
// tagged cringTag: a 256-byte header, then cells of a sequence number and
// a message, each padded to 64 bytes.
const cringTag = "bench.CRing/1"

// queueKinds are bench queue's transports.
var queueKinds = []string{qShm, qCRing, qPipe, qUnix}

// queueBackends are the transports bench queue runs by default: c-ring
// when there is a C compiler to build yard with.
func queueBackends() []string {
	if haveC() {
		return []string{qShm, qCRing, qPipe, qUnix}
	}
	return []string{qShm, qPipe, qUnix}
}

func createCRing(name string, capacity, size int) error {
	yard, err := yardPath(context.Background())
	if err != nil {
		return err
	}
	seg, err := shm.Create(name, 256+capacity*((8+size+63)&^63), cringTag, func(s *shm.Segment) error {
		_, err := cyard.Run(context.Background(), yard, "ring-init", initPath(s), fileOff(0), strconv.Itoa(capacity), strconv.Itoa(size))
		return err
	})
	if err != nil {
		return err
	}
	return seg.Close()
}

// startRing starts yard's ring command with args after the ring's file
// and offset, and once it is ready counts this process ready.
func startRing(a qArgs, command string, args ...string) (*cyard.Cmd, error) {
	yard, path, err := yardFile(context.Background(), func() (*shm.Segment, error) { return shm.Open(a.name, cringTag) })
	if err != nil {
		return nil, err
	}
	args = append([]string{command, path, fileOff(0)}, args...)
	args = append(args, a.ctl.seg.Path(), fileOff(8))
	c, err := cyard.StartReady(context.Background(), yard, args...)
	if err != nil {
		return nil, err
	}
	a.ctl.ready().Add(1)
	return c, nil
}

func produceCRing(a qArgs, from, to int) error {
	c, err := startRing(a, "ring-produce", strconv.Itoa(a.self), strconv.Itoa(from), strconv.Itoa(to), strconv.Itoa(a.producers), strconv.Itoa(a.consumers))
	if err != nil {
		return err
	}
	return c.Wait()
}

func consumeCRing(a qArgs) (got, dup, torn int64, err error) {
	c, err := startRing(a, "ring-consume", a.bits.Path(), fileOff(0), strconv.Itoa(a.bits.Size()/8), strconv.Itoa(a.rowBits), strconv.Itoa(a.producers))
	if err != nil {
		return 0, 0, 0, err
	}
	defer func() { c.Kill(); c.Wait() }() // on an early return: nothing left behind
	v, err := c.Ints("consumed", 3)
	if err != nil {
		return 0, 0, 0, err
	}
	return v[0], v[1], v[2], c.Wait()
}
