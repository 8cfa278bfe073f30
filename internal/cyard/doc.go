// Package cyard builds and runs the C yardsticks shmkit is measured
// against: glibc's robust, process-shared pthread mutex around an
// increment, a bare C compare-and-swap, and Dmitry Vyukov's bounded MPMC
// ring (crobust/yard.h), as a program of their own (crobust/yard.c) that cmd/bench
// compiles at run time with the machine's C compiler and runs as its C
// buyers, holders, waiters, producers and consumers.
//
// Why a program and not cgo: whatever a binary links, every process it
// starts pays for at start. cmd/bench re-executes itself for each buyer,
// and cgo made every one of them load glibc through the dynamic loader
// and start cgo's runtime: about 0.6 ms more per child on the machine of
// docs/runs/startcost.txt, Go children that otherwise start in about
// 1 ms. Built apart, the C costs only the processes that run C, and the
// bench builds and runs without a C compiler (the C rows are then left
// out, with a message saying why).
//
// The program maps the file of a shm segment and takes byte offsets into
// it (checked against the file's size and alignment); it reports on
// stdout, a word and numbers per line: the commands and their lines are
// listed at the top of crobust/yard.c. Build caches the binary under the user's
// cache directory, named by a hash of the source, the compiler and its
// flags, so a change to any of them builds afresh.
//
// Package crobust, in the same directory as the C so that Go rebuilds it
// when the C changes, reaches the same functions through cgo for the
// semaphore package's tests and benchmarks.
package cyard
