// The C yardsticks shmkit is measured against, shared by the yard program
// (yard.c, which cmd/bench compiles and runs as its C buyers) and by the
// cgo wrappers of internal/crobust (the semaphore package's tests): glibc's
// robust, process-shared pthread mutex around an increment, a bare C
// compare-and-swap, gap histograms in internal/gaphist's layout, and
// Dmitry Vyukov's bounded MPMC ring. Everything is static: each includer
// gets its own copy, and neither links the other.
#ifndef SHMKIT_YARD_H
#define SHMKIT_YARD_H

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

// Each includer uses some of these, never all.
#pragma GCC diagnostic ignored "-Wunused-function"

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

// ---- the ring (bench queue's c-ring) ----

typedef struct {
	uint64_t mask, size, cell;
	char pad1[40];
	uint64_t enq; char pad2[56];
	uint64_t deq; char pad3[56];
	uint64_t producers_done; char pad4[56];
} ring_t;

// A process's view of a ring: the shared ring and its geometry, read from
// the header once and checked against the mapping (yard.c's ring). The
// loops use this copy, never the header: a header that changed after the
// check (it is shared memory, anyone's to write) would move their
// accesses out of the mapping.
typedef struct {
	ring_t *r;
	uint64_t mask, size, cell;
} ring_view;

static inline uint64_t *cell_seq(const ring_view *v, uint64_t i) {
	return (uint64_t *)((char *)v->r + 256 + (i & v->mask) * v->cell);
}

static void cring_init(void *p, uint64_t cap, uint64_t size) {
	ring_t *r = p;
	r->mask = cap - 1;
	r->size = size;
	r->cell = (8 + size + 63) & ~(uint64_t)63;
	r->enq = r->deq = r->producers_done = 0;
	ring_view v = {r, r->mask, r->size, r->cell};
	for (uint64_t i = 0; i < cap; i++) *cell_seq(&v, i) = i;
}

static void enqueue(const ring_view *v, const char *msg) {
	ring_t *r = v->r;
	uint64_t pos = __atomic_load_n(&r->enq, __ATOMIC_RELAXED);
	for (int spins = 0;; spins++) {
		uint64_t *seq = cell_seq(v, pos);
		uint64_t s = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
		int64_t d = (int64_t)(s - pos);
		if (d == 0) {
			if (__atomic_compare_exchange_n(&r->enq, &pos, pos + 1, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
				memcpy(seq + 1, msg, v->size);
				__atomic_store_n(seq, pos + 1, __ATOMIC_RELEASE);
				return;
			}
		} else {
			if (d < 0 && spins > 64) sched_yield(); // full
			pos = __atomic_load_n(&r->enq, __ATOMIC_RELAXED);
		}
	}
}

static void dequeue(const ring_view *v, char *msg) {
	ring_t *r = v->r;
	uint64_t pos = __atomic_load_n(&r->deq, __ATOMIC_RELAXED);
	for (int spins = 0;; spins++) {
		uint64_t *seq = cell_seq(v, pos);
		uint64_t s = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
		int64_t d = (int64_t)(s - (pos + 1));
		if (d == 0) {
			if (__atomic_compare_exchange_n(&r->deq, &pos, pos + 1, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
				memcpy(msg, seq + 1, v->size);
				__atomic_store_n(seq, pos + v->mask + 1, __ATOMIC_RELEASE);
				return;
			}
		} else {
			if (d < 0 && spins > 64) sched_yield(); // empty
			pos = __atomic_load_n(&r->deq, __ATOMIC_RELAXED);
		}
	}
}

// CRC-32C (Castagnoli), with SSE4.2's instruction where the compiler
// targets it, else bit by bit: the consumer checks every message, and both
// sides must agree with Go's hash/crc32 Castagnoli table.
static uint32_t crc32c(const char *p, uint64_t n) {
#if defined(__SSE4_2__)
	uint64_t c = ~(uint64_t)0;
	uint64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v; memcpy(&v, p + i, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	uint32_t c32 = (uint32_t)c;
	for (; i < n; i++) c32 = __builtin_ia32_crc32qi(c32, (unsigned char)p[i]);
	return ~c32;
#else
	uint32_t c = ~(uint32_t)0;
	for (uint64_t i = 0; i < n; i++) {
		c ^= (unsigned char)p[i];
		for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1)));
	}
	return ~c;
#endif
}

// A message: id, seq, filler, CRC-32C of the rest (as cmd/bench's Go
// side writes it). The poison message (id 0xffffffff) ends a consumer.
static void make_msg(char *m, uint64_t size, uint32_t id, uint32_t seq) {
	memcpy(m, &id, 4);
	memcpy(m + 4, &seq, 4);
	for (uint64_t i = 8; i < size - 4; i++) m[i] = (char)(seq + i);
	uint32_t c = crc32c(m, size - 4);
	memcpy(m + size - 4, &c, 4);
}

static void cring_produce(const ring_view *v, uint32_t id, uint32_t from, uint32_t to, uint64_t producers, uint64_t consumers) {
	char m[v->size];
	for (uint32_t s = from; s <= to; s++) {
		make_msg(m, v->size, id, s);
		enqueue(v, m);
	}
	if (__atomic_add_fetch(&v->r->producers_done, 1, __ATOMIC_ACQ_REL) == producers) {
		memset(m, 0xff, v->size);
		for (uint64_t i = 0; i < consumers; i++) enqueue(v, m);
	}
}

// Consume until the poison message; each message's bit is set in bitmap
// (bit seq-1 of producer id's row of row_bits bits).
static void cring_consume(const ring_view *v, uint64_t *bitmap, uint64_t row_bits, uint64_t producers, int64_t *got, int64_t *dup, int64_t *torn) {
	char m[v->size];
	for (;;) {
		dequeue(v, m);
		uint32_t id, seq, c;
		memcpy(&id, m, 4);
		memcpy(&seq, m + 4, 4);
		if (id == 0xffffffffu) return;
		memcpy(&c, m + v->size - 4, 4);
		if (c != crc32c(m, v->size - 4) || id >= producers || seq == 0 || seq > row_bits) { (*torn)++; continue; }
		uint64_t bit = id * row_bits + seq - 1;
		uint64_t old = __atomic_fetch_or(&bitmap[bit / 64], (uint64_t)1 << (bit % 64), __ATOMIC_RELAXED);
		if (old & ((uint64_t)1 << (bit % 64))) (*dup)++;
		(*got)++;
	}
}

#endif
