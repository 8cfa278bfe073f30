//go:build linux && cgo && amd64

// Package cring is the yardstick package queue is measured against: a
// bounded multi-producer multi-consumer ring in shared memory, in C, with
// a sequence number per cell (Dmitry Vyukov's bounded MPMC queue), that
// spins while full or empty. It is the limit of that algorithm on a
// machine, with nothing for a dead process: a producer or consumer killed
// between its two steps stalls it for good. The loops run in C, so cgo is
// paid once per loop.
package cring

/*
#cgo CFLAGS: -O2 -msse4.2
#include <stdint.h>
#include <string.h>
#include <sched.h>

typedef struct {
	uint64_t mask, size, cell;
	char pad1[40];
	uint64_t enq; char pad2[56];
	uint64_t deq; char pad3[56];
	uint64_t producers_done; char pad4[56];
} ring_t;

static inline uint64_t *cell_seq(ring_t *r, uint64_t i) {
	return (uint64_t *)((char *)r + 256 + (i & r->mask) * r->cell);
}

static void cring_init(void *p, uint64_t cap, uint64_t size) {
	ring_t *r = p;
	r->mask = cap - 1;
	r->size = size;
	r->cell = (8 + size + 63) & ~(uint64_t)63;
	r->enq = r->deq = r->producers_done = 0;
	for (uint64_t i = 0; i < cap; i++) *cell_seq(r, i) = i;
}

static void enqueue(ring_t *r, const char *msg) {
	uint64_t pos = __atomic_load_n(&r->enq, __ATOMIC_RELAXED);
	for (int spins = 0;; spins++) {
		uint64_t *seq = cell_seq(r, pos);
		uint64_t s = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
		int64_t d = (int64_t)(s - pos);
		if (d == 0) {
			if (__atomic_compare_exchange_n(&r->enq, &pos, pos + 1, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
				memcpy(seq + 1, msg, r->size);
				__atomic_store_n(seq, pos + 1, __ATOMIC_RELEASE);
				return;
			}
		} else {
			if (d < 0 && spins > 64) sched_yield(); // full
			pos = __atomic_load_n(&r->enq, __ATOMIC_RELAXED);
		}
	}
}

static void dequeue(ring_t *r, char *msg) {
	uint64_t pos = __atomic_load_n(&r->deq, __ATOMIC_RELAXED);
	for (int spins = 0;; spins++) {
		uint64_t *seq = cell_seq(r, pos);
		uint64_t s = __atomic_load_n(seq, __ATOMIC_ACQUIRE);
		int64_t d = (int64_t)(s - (pos + 1));
		if (d == 0) {
			if (__atomic_compare_exchange_n(&r->deq, &pos, pos + 1, 1, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
				memcpy(msg, seq + 1, r->size);
				__atomic_store_n(seq, pos + r->mask + 1, __ATOMIC_RELEASE);
				return;
			}
		} else {
			if (d < 0 && spins > 64) sched_yield(); // empty
			pos = __atomic_load_n(&r->deq, __ATOMIC_RELAXED);
		}
	}
}

static uint32_t crc32c(const char *p, uint64_t n) {
	uint64_t c = ~(uint64_t)0;
	uint64_t i = 0;
	for (; i + 8 <= n; i += 8) {
		uint64_t v; memcpy(&v, p + i, 8);
		c = __builtin_ia32_crc32di(c, v);
	}
	uint32_t c32 = (uint32_t)c;
	for (; i < n; i++) c32 = __builtin_ia32_crc32qi(c32, (unsigned char)p[i]);
	return ~c32;
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

static void cring_produce(void *p, uint32_t id, uint32_t from, uint32_t to, uint64_t producers, uint64_t consumers) {
	ring_t *r = p;
	char m[r->size];
	for (uint32_t s = from; s <= to; s++) {
		make_msg(m, r->size, id, s);
		enqueue(r, m);
	}
	if (__atomic_add_fetch(&r->producers_done, 1, __ATOMIC_ACQ_REL) == producers) {
		memset(m, 0xff, r->size);
		for (uint64_t i = 0; i < consumers; i++) enqueue(r, m);
	}
}

// Consume until the poison message; each message's bit is set in bitmap
// (bit seq-1 of producer id's row of row_bits bits).
static void cring_consume(void *p, uint64_t *bitmap, uint64_t row_bits, uint64_t producers, int64_t *got, int64_t *dup, int64_t *torn) {
	ring_t *r = p;
	char m[r->size];
	for (;;) {
		dequeue(r, m);
		uint32_t id, seq, c;
		memcpy(&id, m, 4);
		memcpy(&seq, m + 4, 4);
		if (id == 0xffffffffu) return;
		memcpy(&c, m + r->size - 4, 4);
		if (c != crc32c(m, r->size - 4) || id >= producers || seq == 0 || seq > row_bits) { (*torn)++; continue; }
		uint64_t bit = id * row_bits + seq - 1;
		uint64_t old = __atomic_fetch_or(&bitmap[bit / 64], (uint64_t)1 << (bit % 64), __ATOMIC_RELAXED);
		if (old & ((uint64_t)1 << (bit % 64))) (*dup)++;
		(*got)++;
	}
}
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Header is the bytes before the cells.
const Header = 256

// Size is the bytes a ring of capacity cells of size-byte messages takes.
func Size(capacity, size int) int { return Header + capacity*((8+size+63)&^63) }

func check(mem []byte, capacity, size int) error {
	if capacity <= 0 || capacity&(capacity-1) != 0 || size < 12 || len(mem) < Size(capacity, size) || uintptr(unsafe.Pointer(&mem[0]))%64 != 0 {
		return errors.New("cring: bad ring memory or shape")
	}
	return nil
}

// Init writes an empty ring into mem.
func Init(mem []byte, capacity, size int) error {
	if err := check(mem, capacity, size); err != nil {
		return err
	}
	C.cring_init(unsafe.Pointer(&mem[0]), C.uint64_t(capacity), C.uint64_t(size))
	return nil
}

// Produce sends producer id's messages from..to; the last of producers
// to finish also sends one poison message per consumer.
func Produce(mem []byte, id, from, to, producers, consumers int) {
	C.cring_produce(unsafe.Pointer(&mem[0]), C.uint32_t(id), C.uint32_t(from), C.uint32_t(to), C.uint64_t(producers), C.uint64_t(consumers))
}

// Consume receives until a poison message, checking each message's CRC
// and marking it in bitmap (rowBits bits per producer): it returns the
// messages received, those already marked, and torn ones.
func Consume(mem []byte, bitmap []uint64, rowBits, producers int) (got, dup, torn int64) {
	var g, d, t C.int64_t
	C.cring_consume(unsafe.Pointer(&mem[0]), (*C.uint64_t)(unsafe.Pointer(&bitmap[0])), C.uint64_t(rowBits), C.uint64_t(producers), &g, &d, &t)
	return int64(g), int64(d), int64(t)
}
