//go:build linux && cgo

// Package crobust is glibc's robust, process-shared pthread mutex, and a C
// atomic counter, reached through cgo, for the semaphore package's tests
// and benchmarks: the yardsticks shmkit's own Mutex and lock-free counter
// are measured against. The C is yard.h, which internal/cyard embeds with
// yard.c and cmd/bench runs as a program of its own instead, so that the bench binary
// links no C. The loops run in C, so a cgo call is paid once per loop, not
// once per lock.
package crobust

/*
#cgo CFLAGS: -DYARD_NOT_A_PROGRAM
#cgo LDFLAGS: -lpthread
#include "yard.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"
)

// Size is sizeof(pthread_mutex_t); records reserve 64 bytes for it.
const Size = C.sizeof_pthread_mutex_t

// ErrOwnerDead is EOWNERDEAD from pthread_mutex_lock.
var ErrOwnerDead = syscall.EOWNERDEAD

// Mutex is a pthread_mutex_t inside a shared mapping.
type Mutex struct{ p unsafe.Pointer }

// At views the bytes at b[0:Size] as a pthread mutex. b must be in a shared
// mapping (not the Go heap: C keeps no Go pointer, and the mapping never
// moves) and 8-aligned; callers pass slices of shm segments.
func At(b []byte) (Mutex, error) {
	if len(b) < Size || uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		return Mutex{}, fmt.Errorf("crobust: need %d 8-aligned bytes", Size)
	}
	return Mutex{unsafe.Pointer(&b[0])}, nil
}

func errno(r C.int) error {
	if r == 0 {
		return nil
	}
	return syscall.Errno(r)
}

// Init initializes a robust, process-shared mutex.
func (m Mutex) Init() error { return errno(C.cr_init(m.p)) }

// Lock locks; an error of ErrOwnerDead means it is held and inconsistent.
// A pthread mutex is owned by an OS thread: hold the lock only within
// runtime.LockOSThread, or in a process that exits holding it.
func (m Mutex) Lock() error { return errno(C.cr_lock(m.p)) }

// Unlock unlocks; it fails with EPERM on a thread that does not own m.
func (m Mutex) Unlock() error { return errno(C.cr_unlock(m.p)) }

// Consistent is pthread_mutex_consistent.
func (m Mutex) Consistent() error { return errno(C.cr_consistent(m.p)) }

// ErrNotDead is returned by Takeover when the lock was free.
var ErrNotDead = errors.New("crobust: lock did not report EOWNERDEAD")

// Takeover waits for the lock, which must come with EOWNERDEAD, marks it
// consistent and unlocks it, in one C call on one thread.
func (m Mutex) Takeover() error {
	r := C.cr_takeover(m.p)
	if r == -1 {
		return ErrNotDead
	}
	return errno(r)
}

// LockUnlock runs n lock+unlock pairs in C.
func (m Mutex) LockUnlock(n int) error { return errno(C.cr_lock_unlock(m.p, C.long(n))) }

// Contend increments the int64 in ctr (8 bytes of a shared mapping,
// 8-aligned) under the mutex, in C, until it reaches limit, and returns how
// many increments this caller made.
func (m Mutex) Contend(ctr []byte, limit int64) (int64, error) {
	p, err := counter(ctr)
	if err != nil {
		return 0, err
	}
	var mine C.int64_t
	r := C.cr_contend(m.p, p, C.int64_t(limit), &mine)
	return int64(mine), errno(r)
}

// CASContend increments the int64 in ctr with a C compare-and-swap until
// it reaches limit, and returns how many increments this caller made.
func CASContend(ctr []byte, limit int64) (int64, error) {
	p, err := counter(ctr)
	if err != nil {
		return 0, err
	}
	var mine C.int64_t
	C.cr_cas_contend(p, C.int64_t(limit), &mine)
	return int64(mine), nil
}

// counter checks that b can hold an aligned int64; the pointer is into a
// shared mapping, which C may keep and use (no Go memory involved).
func counter(b []byte) (*C.int64_t, error) {
	if len(b) < 8 || uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		return nil, fmt.Errorf("crobust: a counter needs 8 aligned bytes")
	}
	return (*C.int64_t)(unsafe.Pointer(&b[0])), nil
}
