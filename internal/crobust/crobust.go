//go:build linux && cgo

// Package crobust is glibc's robust, process-shared pthread mutex, and a C
// atomic counter, reached through cgo: the yardsticks shmkit's own Mutex and
// lock-free counter are measured against. The loops run in C, so a cgo call
// is paid once per loop, not once per lock.
package crobust

/*
#cgo LDFLAGS: -lpthread
#include <errno.h>
#include <pthread.h>
#include <stdint.h>

static int cr_init(void *m) {
	pthread_mutexattr_t a;
	int r = pthread_mutexattr_init(&a);
	if (r) return r;
	if ((r = pthread_mutexattr_setpshared(&a, PTHREAD_PROCESS_SHARED)) ||
	    (r = pthread_mutexattr_setrobust(&a, PTHREAD_MUTEX_ROBUST))) {
		pthread_mutexattr_destroy(&a);
		return r;
	}
	r = pthread_mutex_init((pthread_mutex_t *)m, &a);
	pthread_mutexattr_destroy(&a);
	return r;
}

static int cr_lock(void *m) { return pthread_mutex_lock((pthread_mutex_t *)m); }
static int cr_unlock(void *m) { return pthread_mutex_unlock((pthread_mutex_t *)m); }
static int cr_consistent(void *m) { return pthread_mutex_consistent((pthread_mutex_t *)m); }

// n lock+unlock pairs; the first error stops the loop.
static int cr_lock_unlock(void *m, long n) {
	for (long i = 0; i < n; i++) {
		int r = pthread_mutex_lock((pthread_mutex_t *)m);
		if (r) return r;
		if ((r = pthread_mutex_unlock((pthread_mutex_t *)m))) return r;
	}
	return 0;
}

// Increment *ctr under the mutex until it reaches limit; *mine counts this
// caller's increments. An owner death is repaired (the counter is a single
// word, always consistent).
static int cr_contend(void *m, int64_t *ctr, int64_t limit, int64_t *mine) {
	for (;;) {
		int r = pthread_mutex_lock((pthread_mutex_t *)m);
		if (r == EOWNERDEAD) r = pthread_mutex_consistent((pthread_mutex_t *)m);
		if (r) return r;
		if (*ctr >= limit) return pthread_mutex_unlock((pthread_mutex_t *)m);
		(*ctr)++;
		(*mine)++;
		if ((r = pthread_mutex_unlock((pthread_mutex_t *)m))) return r;
	}
}

// Lock expecting EOWNERDEAD, repair and unlock, all on one thread (a
// pthread mutex belongs to a thread; Go may move a goroutine between cgo
// calls). Returns the lock's result if it was not EOWNERDEAD.
static int cr_takeover(void *m) {
	int r = pthread_mutex_lock((pthread_mutex_t *)m);
	if (r == 0) {
		pthread_mutex_unlock((pthread_mutex_t *)m);
		return -1;
	}
	if (r != EOWNERDEAD) return r;
	if ((r = pthread_mutex_consistent((pthread_mutex_t *)m))) return r;
	return pthread_mutex_unlock((pthread_mutex_t *)m);
}

// Gap histograms (internal/gaphist's layout): the timed loops below record
// the gap between consecutive successful increments, CLOCK_MONOTONIC, as
// shmkit's Go buyers do, so both pay the same clock.
#include <time.h>
#define GH_BUCKETS (8 + 61 * 8)
#define GH_OVER 100000
struct gaphist {
	uint64_t count, sum;
	double sumsq;
	uint64_t max, over, reserved;
	uint64_t bucket[GH_BUCKETS];
};

static uint64_t gh_now(void) {
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void gh_add(struct gaphist *h, uint64_t g) {
	h->count++;
	h->sum += g;
	h->sumsq += (double)g * (double)g;
	if (g > h->max) h->max = g;
	if (g > GH_OVER) h->over += g;
	int i;
	if (g < 8) {
		i = (int)g;
	} else {
		int e = 63 - __builtin_clzll(g);
		i = 8 + (e - 3) * 8 + (int)((g >> (e - 3)) & 7);
	}
	h->bucket[i]++;
}

// cr_contend, timing each increment into *h (zeroed by the caller).
static int cr_contend_timed(void *m, int64_t *ctr, int64_t limit, int64_t *mine, struct gaphist *h) {
	uint64_t last = gh_now();
	for (;;) {
		int r = pthread_mutex_lock((pthread_mutex_t *)m);
		if (r == EOWNERDEAD) r = pthread_mutex_consistent((pthread_mutex_t *)m);
		if (r) return r;
		if (*ctr >= limit) return pthread_mutex_unlock((pthread_mutex_t *)m);
		(*ctr)++;
		(*mine)++;
		if ((r = pthread_mutex_unlock((pthread_mutex_t *)m))) return r;
		uint64_t now = gh_now();
		gh_add(h, now - last);
		last = now;
	}
}

// cr_cas_contend, timing each increment into *h.
static void cr_cas_contend_timed(int64_t *ctr, int64_t limit, int64_t *mine, struct gaphist *h) {
	uint64_t last = gh_now();
	int64_t v = __atomic_load_n(ctr, __ATOMIC_RELAXED);
	while (v < limit) {
		if (__atomic_compare_exchange_n(ctr, &v, v + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED)) {
			(*mine)++, v++;
			uint64_t now = gh_now();
			gh_add(h, now - last);
			last = now;
		}
	}
}

// The cost of one clock read, averaged over n.
static double gh_clock_cost(long n) {
	uint64_t t0 = gh_now();
	for (long i = 0; i < n; i++) gh_now(); // a call into the vDSO: not optimized away
	return (double)(gh_now() - t0) / (double)n;
}

// The same with no lock at all: one CAS per increment.
static void cr_cas_contend(int64_t *ctr, int64_t limit, int64_t *mine) {
	int64_t v = __atomic_load_n(ctr, __ATOMIC_RELAXED);
	while (v < limit) {
		if (__atomic_compare_exchange_n(ctr, &v, v + 1, 0, __ATOMIC_SEQ_CST, __ATOMIC_RELAXED))
			(*mine)++, v++;
	}
}
*/
import "C"

import (
	"errors"
	"fmt"
	"syscall"
	"unsafe"

	"github.com/shmkit/shmkit/internal/gaphist"
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

// ContendTimed is Contend that records the gap between this caller's
// increments into h (which it zeroes first), in C, on CLOCK_MONOTONIC.
func (m Mutex) ContendTimed(ctr []byte, limit int64, h *gaphist.Hist) (int64, error) {
	p, err := counter(ctr)
	if err != nil {
		return 0, err
	}
	var mine C.int64_t
	ch := new(C.struct_gaphist) // C memory: a Go pointer must not point at Go pointers; this one holds none
	r := C.cr_contend_timed(m.p, p, C.int64_t(limit), &mine, ch)
	fromC(h, ch)
	return int64(mine), errno(r)
}

// CASContendTimed is CASContend that records the gap between this
// caller's increments into h, as ContendTimed does.
func CASContendTimed(ctr []byte, limit int64, h *gaphist.Hist) (int64, error) {
	p, err := counter(ctr)
	if err != nil {
		return 0, err
	}
	var mine C.int64_t
	ch := new(C.struct_gaphist)
	C.cr_cas_contend_timed(p, C.int64_t(limit), &mine, ch)
	fromC(h, ch)
	return int64(mine), nil
}

// ClockCost is the cost of C's clock_gettime(CLOCK_MONOTONIC), ns, the
// clock the timed loops read once per increment.
func ClockCost() float64 { return float64(C.gh_clock_cost(1_000_000)) }

var _ [unsafe.Sizeof(C.struct_gaphist{}) - unsafe.Sizeof(gaphist.Hist{})]struct{} // same layout
var _ [unsafe.Sizeof(gaphist.Hist{}) - unsafe.Sizeof(C.struct_gaphist{})]struct{}

// fromC copies a C histogram into h; the layouts are the same (checked
// above, field by field below).
func fromC(h *gaphist.Hist, c *C.struct_gaphist) {
	h.Count, h.Sum, h.SumSq = uint64(c.count), uint64(c.sum), float64(c.sumsq)
	h.Max, h.Over = uint64(c.max), uint64(c.over)
	for i := range h.Bucket {
		h.Bucket[i] = uint64(c.bucket[i])
	}
}

// counter checks that b can hold an aligned int64; the pointer is into a
// shared mapping, which C may keep and use (no Go memory involved).
func counter(b []byte) (*C.int64_t, error) {
	if len(b) < 8 || uintptr(unsafe.Pointer(&b[0]))%8 != 0 {
		return nil, fmt.Errorf("crobust: a counter needs 8 aligned bytes")
	}
	return (*C.int64_t)(unsafe.Pointer(&b[0])), nil
}
