//go:build linux && !cgo

package main

import (
	"errors"

	"github.com/shmkit/shmkit/internal/gaphist"
	"github.com/shmkit/shmkit/shm"
)

// Without cgo there is no glibc to compare with.
var cBackends []string

func isC(string) bool { return false }

var errNoCgo = errors.New("bench: built without cgo: no C backends")

func createC(string, int64) (string, error)                     { return "", errNoCgo }
func removeC(string) error                                      { return errNoCgo }
func sellC(string, string, int64, *gaphist.Hist) (int64, error) { return 0, errNoCgo }
func cClockCost() float64                                       { return 0 }
func soldC(string) (int64, error)                               { return 0, errNoCgo }

func holdC(string, *control) error { return errNoCgo }

func openCWaiter(string) (*shm.Segment, func() error, error) { return nil, nil, errNoCgo }
