//go:build linux && cgo && amd64

package main

import (
	"sync/atomic"
	"unsafe"

	"github.com/shmkit/shmkit/internal/cring"
	"github.com/shmkit/shmkit/shm"
)

const cringTag = "bench.CRing/1"

func queueBackends() []string { return []string{qShm, qCRing, qPipe, qUnix} }

func createCRing(name string, capacity, size int) error {
	seg, err := shm.Create(name, cring.Size(capacity, size), cringTag, func(s *shm.Segment) error {
		return cring.Init(s.Data(), capacity, size)
	})
	if err != nil {
		return err
	}
	return seg.Close()
}

func produceCRing(a qArgs, from, to int) error {
	seg, err := shm.Open(a.name, cringTag)
	if err != nil {
		return err
	}
	defer seg.Close()
	a.ctl.ready().Add(1)
	a.ctl.waitStart()
	cring.Produce(seg.Data(), a.self, from, to, a.producers, a.consumers)
	return nil
}

func consumeCRing(a qArgs, bits []atomic.Uint64) (got, dup, torn int64, err error) {
	seg, err := shm.Open(a.name, cringTag)
	if err != nil {
		return 0, 0, 0, err
	}
	defer seg.Close()
	a.ctl.ready().Add(1)
	a.ctl.waitStart()
	// atomic.Uint64 is a uint64 in memory; C ORs into it atomically.
	words := unsafe.Slice((*uint64)(unsafe.Pointer(&bits[0])), len(bits))
	got, dup, torn = cring.Consume(seg.Data(), words, a.rowBits, a.producers)
	return got, dup, torn, nil
}
