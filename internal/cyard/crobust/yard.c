// yard: the C yardsticks as a program of their own, so that the bench
// binary links no C. cmd/bench compiles it at run time (internal/cyard)
// and runs it as its C buyers, holders and waiters.
//
// Every command takes a file of a shm segment and byte offsets into it,
// maps the whole file shared, and checks each offset against the file's
// size and its alignment. Output is one line per fact, a word and numbers
// (internal/cyard parses it); failures go to stderr with exit status 1.
//
//	yard clock                                   clock NS
//	yard init FILE OFF                           (a robust, shared pthread mutex at OFF)
//	yard sell robust|cas FILE MOFF COFF LIMIT CTLFILE GOOFF TIMED
//	                                             ready / sold N ERRNO STOPPED [/ hist ...]
//	yard hold FILE OFF [CTLFILE READYOFF [THREADS]]
//	                                             held (and adds 1 to the int64 at
//	                                             READYOFF), then waits for its SIGKILL
//	                                             in a process of THREADS threads
//	yard takeover FILE OFF                       took NS (CLOCK_MONOTONIC of the EOWNERDEAD)
//	yard ring-init FILE OFF CAP SIZE
//	yard ring-produce FILE OFF ID FROM TO PRODUCERS CONSUMERS CTLFILE GOOFF
//	                                             ready
//	yard ring-consume FILE OFF BITSFILE BITSOFF WORDS ROWBITS PRODUCERS CTLFILE GOOFF
//	                                             ready / consumed GOT DUP TORN
//
// STOPPED is the CLOCK_MONOTONIC nanosecond the buyer stopped buying.
// "ready" means mapped and set up; the command then waits, as the Go
// buyers do, until the int64 at GOOFF of CTLFILE is not zero (the bench's
// start barrier), polling every 20 µs.
// cgo compiles every C file of its package, and this one shares its
// directory with crobust's cgo so that a change to yard.h rebuilds both;
// crobust defines YARD_NOT_A_PROGRAM.
#ifndef YARD_NOT_A_PROGRAM
#define _GNU_SOURCE
#include "yard.h"

#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *cmd = "";

static _Noreturn void fail(const char *what, int err) {
	fprintf(stderr, "yard %s: %s: %s\n", cmd, what, strerror(err));
	exit(1);
}

static _Noreturn void usage(const char *why) {
	fprintf(stderr, "yard%s%s: %s\n", *cmd ? " " : "", cmd, why);
	exit(2);
}

static int64_t num(const char *s, int64_t lo, int64_t hi) {
	char *end;
	errno = 0;
	long long v = strtoll(s, &end, 10);
	if (errno || end == s || *end || v < lo || v > hi) {
		fprintf(stderr, "yard %s: bad number %s (want %" PRId64 "..%" PRId64 ")\n", cmd, s, lo, hi);
		exit(2);
	}
	return v;
}

// at maps file shared, whole, and returns the address of [off, off+len),
// which must lie inside it, aligned to align. The mapping lives until exit.
static void *at(const char *file, int64_t off, int64_t len, int64_t align) {
	int fd = open(file, O_RDWR | O_CLOEXEC);
	if (fd < 0) fail(file, errno);
	struct stat st;
	if (fstat(fd, &st)) fail(file, errno);
	if (off < 0 || len < 0 || off > st.st_size || len > st.st_size - off || off % align) {
		fprintf(stderr, "yard %s: %s: bytes %" PRId64 "+%" PRId64 " (aligned %" PRId64 ") not inside its %lld bytes\n",
			cmd, file, off, len, align, (long long)st.st_size);
		exit(1);
	}
	char *p = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (p == MAP_FAILED) fail(file, errno);
	close(fd);
	return p + off;
}

static void say(const char *line) {
	fputs(line, stdout);
	fflush(stdout);
}

static void wait_start(const char *file, int64_t off) {
	int64_t *go = at(file, off, 8, 8);
	say("ready\n");
	struct timespec ts = {0, 20000};
	while (__atomic_load_n(go, __ATOMIC_ACQUIRE) == 0) nanosleep(&ts, NULL);
}

static void print_hist(const struct gaphist *h) {
	printf("hist %" PRIu64 " %" PRIu64 " %.17g %" PRIu64 " %" PRIu64, h->count, h->sum, h->sumsq, h->max, h->over);
	for (int i = 0; i < GH_BUCKETS; i++)
		if (h->bucket[i]) printf(" %d:%" PRIu64, i, h->bucket[i]);
	printf("\n");
}

static int sell(int argc, char **argv) {
	if (argc != 9) usage("want robust|cas FILE MOFF COFF LIMIT CTLFILE GOOFF TIMED");
	int robust = strcmp(argv[1], "robust") == 0;
	if (!robust && strcmp(argv[1], "cas")) usage("want robust or cas");
	void *m = robust ? at(argv[2], num(argv[3], 0, INT64_MAX), sizeof(pthread_mutex_t), 8) : NULL;
	int64_t *ctr = at(argv[2], num(argv[4], 0, INT64_MAX), 8, 8);
	int64_t limit = num(argv[5], 0, INT64_MAX);
	int timed = num(argv[8], 0, 1);
	static struct gaphist h; // zero; 4 KB, off the stack
	int64_t mine = 0;
	int r = 0;
	wait_start(argv[6], num(argv[7], 0, INT64_MAX));
	if (robust && timed) r = cr_contend_timed(m, ctr, limit, &mine, &h);
	else if (robust) r = cr_contend(m, ctr, limit, &mine);
	else if (timed) cr_cas_contend_timed(ctr, limit, &mine, &h);
	else cr_cas_contend(ctr, limit, &mine);
	printf("sold %" PRId64 " %d %" PRIu64 "\n", mine, r, gh_now());
	if (timed) print_hist(&h);
	fflush(stdout);
	return 0;
}

static _Noreturn void *idle(void *arg) {
	(void)arg;
	for (;;) pause();
}

// hold locks and waits for its SIGKILL. THREADS makes the holder a process
// of that many threads, as a Go holder is: a dying process's threads exit
// one by one, each needing a CPU, and a robust lock is handed over when
// its owner's turn comes; a one-thread holder would be handed over sooner
// whatever the lock.
static _Noreturn void hold(int argc, char **argv) {
	if (argc != 3 && argc != 5 && argc != 6) usage("want FILE OFF [CTLFILE READYOFF [THREADS]]");
	void *m = at(argv[1], num(argv[2], 0, INT64_MAX), sizeof(pthread_mutex_t), 8);
	int64_t *ready = argc >= 5 ? at(argv[3], num(argv[4], 0, INT64_MAX), 8, 8) : NULL;
	for (int64_t i = argc == 6 ? num(argv[5], 1, 64) : 1; i > 1; i--) {
		pthread_t t;
		int r = pthread_create(&t, NULL, idle, NULL);
		if (r) fail("pthread_create", r);
	}
	int r = cr_lock(m);
	if (r == EOWNERDEAD) r = cr_consistent(m); // a previous holder died: nothing to repair
	if (r) fail("pthread_mutex_lock", r);
	if (ready) __atomic_add_fetch(ready, 1, __ATOMIC_SEQ_CST);
	say("held\n");
	for (;;) pause(); // hold it until killed
}

static int takeover(int argc, char **argv) {
	if (argc != 3) usage("want FILE OFF");
	void *m = at(argv[1], num(argv[2], 0, INT64_MAX), sizeof(pthread_mutex_t), 8);
	int r = cr_lock(m);
	uint64_t t = gh_now();
	if (r == 0) {
		cr_unlock(m);
		fprintf(stderr, "yard takeover: the lock came without EOWNERDEAD\n");
		return 3;
	}
	if (r != EOWNERDEAD) fail("pthread_mutex_lock", r);
	if ((r = cr_consistent(m))) fail("pthread_mutex_consistent", r);
	if ((r = cr_unlock(m))) fail("pthread_mutex_unlock", r);
	printf("took %" PRIu64 "\n", t);
	return 0;
}

// ring checks that FILE holds, at OFF, room for a ring of CAP cells of
// SIZE-byte messages (or, with cap 0, the ring its header describes: its
// capacity, message size and cell stride, read once) and returns its view.
static ring_view ring(const char *file, int64_t off, int64_t cap, int64_t size) {
	ring_t *r = at(file, off, 256, 64);
	int from_header = cap == 0;
	uint64_t cell = 0;
	if (from_header) {
		// Each word once: the header may change under us.
		uint64_t mask = __atomic_load_n(&r->mask, __ATOMIC_RELAXED);
		uint64_t sz = __atomic_load_n(&r->size, __ATOMIC_RELAXED);
		cell = __atomic_load_n(&r->cell, __ATOMIC_RELAXED);
		cap = mask < (1 << 24) ? (int64_t)mask + 1 : -1;
		size = sz <= (1 << 20) ? (int64_t)sz : -1;
	}
	if (cap <= 0 || cap > (1 << 24) || (cap & (cap - 1)) || size < 12 || size > (1 << 20))
		usage("want a power-of-two capacity up to 2^24 and a message size of 12 bytes to 1 MiB");
	int64_t stride = (8 + size + 63) & ~(int64_t)63;
	if (from_header && cell != (uint64_t)stride) usage("the ring's header says cells of a size its messages do not make");
	at(file, off, 256 + cap * stride, 64); // the cells fit
	return (ring_view){r, (uint64_t)cap - 1, (uint64_t)size, (uint64_t)stride};
}

static int ring_init(int argc, char **argv) {
	if (argc != 5) usage("want FILE OFF CAP SIZE");
	int64_t cap = num(argv[3], 1, 1 << 24), size = num(argv[4], 12, 1 << 20);
	cring_init(ring(argv[1], num(argv[2], 0, INT64_MAX), cap, size).r, (uint64_t)cap, (uint64_t)size);
	return 0;
}

static int ring_produce(int argc, char **argv) {
	if (argc != 10) usage("want FILE OFF ID FROM TO PRODUCERS CONSUMERS CTLFILE GOOFF");
	ring_view r = ring(argv[1], num(argv[2], 0, INT64_MAX), 0, 0);
	int64_t producers = num(argv[6], 1, 1 << 20);
	uint32_t id = num(argv[3], 0, producers - 1);
	uint32_t from = num(argv[4], 1, UINT32_MAX - 1), to = num(argv[5], 0, UINT32_MAX - 1);
	int64_t consumers = num(argv[7], 1, 1 << 20);
	wait_start(argv[8], num(argv[9], 0, INT64_MAX));
	cring_produce(&r, id, from, to, (uint64_t)producers, (uint64_t)consumers);
	return 0;
}

static int ring_consume(int argc, char **argv) {
	if (argc != 10) usage("want FILE OFF BITSFILE BITSOFF WORDS ROWBITS PRODUCERS CTLFILE GOOFF");
	ring_view r = ring(argv[1], num(argv[2], 0, INT64_MAX), 0, 0);
	int64_t words = num(argv[5], 1, INT64_MAX / 8);
	uint64_t *bits = at(argv[3], num(argv[4], 0, INT64_MAX), words * 8, 8);
	int64_t row = num(argv[6], 1, UINT32_MAX), producers = num(argv[7], 1, 1 << 20);
	if (row > words * 64 / producers) usage("the bitmap is smaller than PRODUCERS rows of ROWBITS");
	int64_t got = 0, dup = 0, torn = 0;
	wait_start(argv[8], num(argv[9], 0, INT64_MAX));
	cring_consume(&r, bits, (uint64_t)row, (uint64_t)producers, &got, &dup, &torn);
	printf("consumed %" PRId64 " %" PRId64 " %" PRId64 "\n", got, dup, torn);
	return 0;
}

int main(int argc, char **argv) {
	if (argc < 2) {
		cmd = "";
		usage("want a command: clock, init, sell, hold, takeover, ring-init, ring-produce, ring-consume");
	}
	cmd = argv[1];
	argc--, argv++;
	if (!strcmp(cmd, "clock")) {
		printf("clock %.3f\n", gh_clock_cost(1000000));
		return 0;
	}
	if (!strcmp(cmd, "init")) {
		if (argc != 3) usage("want FILE OFF");
		int r = cr_init(at(argv[1], num(argv[2], 0, INT64_MAX), sizeof(pthread_mutex_t), 8));
		if (r) fail("pthread_mutex_init", r);
		return 0;
	}
	if (!strcmp(cmd, "sell")) return sell(argc, argv);
	if (!strcmp(cmd, "hold")) hold(argc, argv);
	if (!strcmp(cmd, "takeover")) return takeover(argc, argv);
	if (!strcmp(cmd, "ring-init")) return ring_init(argc, argv);
	if (!strcmp(cmd, "ring-produce")) return ring_produce(argc, argv);
	if (!strcmp(cmd, "ring-consume")) return ring_consume(argc, argv);
	usage("unknown command");
}

#endif // YARD_NOT_A_PROGRAM
