//go:build linux && !(cgo && amd64)

package main

import (
	"errors"
	"sync/atomic"
)

// errNoCRing: built without cgo (or not on amd64).
var errNoCRing = errors.New("bench: c-ring needs cgo on amd64")

func queueBackends() []string { return []string{qShm, qPipe, qUnix} }

func createCRing(name string, capacity, size int) error { return errNoCRing }

func produceCRing(a qArgs, from, to int) error { return errNoCRing }

func consumeCRing(a qArgs, bits []atomic.Uint64) (got, dup, torn int64, err error) {
	return 0, 0, 0, errNoCRing
}
