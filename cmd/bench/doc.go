// Command bench sells tickets from many processes through each of shmkit's
// ticket stores and shows, side by side, what the course notes' JSON file
// behind flock costs against shared memory with a robust futex lock and
// with a lock-free counter, with glibc's robust pthread mutex next to them
// (in C, in a program of its own: see C yardsticks below).
//
//	go run ./cmd/bench                     # the default comparison, a table
//	go run ./cmd/bench -json               # one JSON object per run on stdout
//	go run ./cmd/bench -out docs/charts    # results.json and throughput.svg
//	go run ./cmd/bench chaos -kills 1000   # SIGKILL buyers mid-purchase, churn slots, verify
//	go run ./cmd/bench latency             # what a waiting buyer feels: gaps between its buys
//	go run ./cmd/bench recover -n 300      # owner-death takeover latency
//	go run ./cmd/bench spawn -n 300        # Start+Join latency of a child
//	go run ./cmd/bench spawn -exec /bin/true  # the same for any program: a yardstick (lesson 1)
//	go run ./cmd/bench replot docs/charts  # redraw throughput.svg from results.json
//	go run ./cmd/bench queue               # messages/s: shm-queue, c-ring, pipe, unix
//	go run ./cmd/bench pingpong            # one message there and back: latency
//	go run ./cmd/bench queue chaos -kills 1000   # producers and consumers SIGKILLed
//
// # Queues
//
// bench queue moves -msgs messages (default 2 million, 64 bytes) from P
// producer processes to C consumer processes (-pairs 1x1,4x4) through each
// transport: shm-queue (package queue, 1024 cells), c-ring (Vyukov's
// bounded MPMC ring with a sequence number per cell, in C, spinning, 1024
// cells: the limit of the algorithm, with nothing for a
// dead process), pipe (one os.Pipe shared by all, a message per write;
// -batch N writes up to PIPE_BUF bytes at once) and unix (an AF_UNIX
// SOCK_SEQPACKET socket pair, a message per send). Every message carries
// its producer id, sequence number and a CRC-32C; consumers mark each in a
// shared bitmap, so a run counts lost, duplicated and torn messages. The
// clock runs from the start barrier to the last consumer's last message;
// each row is the median of -rounds runs, the backends taking turns.
// JSON fields: backend, producers, consumers, size, msgs, seconds,
// msgs_per_sec, lost, dup, torn, rounds, round_msgs_per_sec.
//
// bench pingpong times -n round trips of one message to a child process
// and back (after 1000 untimed): p50_us, p99_us, max_us per transport.
//
// bench queue chaos SIGKILLs a random producer or consumer -kills times,
// at random moments 0.5-5 ms apart, and starts a new one each time; a new
// producer takes a new id, and consumers process each message inside
// RecvFunc. JSON: kills, producer_kills, consumer_kills, sent (Sends that
// returned nil), received, lost (sent, never received: must be 0), dup
// (received again: only where a consumer died), torn (must be 0),
// in_flight (messages of killed producers whose Send had not returned).
//
// # Throughput
//
// Every buyer is a real process (process) that opens the store
// (and faults in a shm Counter's pages: its ledger has a byte per ticket)
// and waits at a start barrier in a control segment; the clock starts when
// all are ready and stops at the last buyer's last buy (each records the
// moment on CLOCK_MONOTONIC), so spawning, opening, closing and exiting
// are not timed. Each run then checks the store: sold + remaining == tickets,
// oversold (sales the count never gave out), lost (tickets gone from the
// count with no buyer) and, for json-nolock, torn reads. A buyer's share
// is its sales over the fair share (sold/procs): min_share and max_share
// show fairness.
//
// Without -tickets, each (backend, procs) run is sized to last about a
// second: a short calibration run (not reported) measures the rate first.
//
// A run is sold in -rounds rounds (3 by default), each a fresh store and
// fresh buyers with its share of the tickets, and at each process count
// the backends take turns, a round each, each going first in turn. The
// machine is noisy (a VM on a shared host: its speed drifts over seconds),
// and ratios between backends are what the numbers are for: backends run
// one after another would compare moments as much as backends. A run's
// ops_per_sec is its median round's rate, which one disturbed round moves
// less than a total would; round_ops_per_sec has them all. Its counts
// (tickets, sold, oversold, ...) and seconds add up over the rounds, and a
// buyer's share is over its sales in all of them.
//
// Backends: shm-mutex (ticketshm.Counter, Locked), shm-lockfree
// (ticketshm.Counter, LockFree), json-flock and json-nolock
// (ticketshm/jsonfile), redis (ticketshm/redisstore's purchase code,
// internal/redisbuy, through internal/resp, a client without package net;
// on -redis IP:PORT or on a redis-server the harness starts on a free
// loopback port; in the default set when redis-server is installed), and,
// when there is a C compiler,
// c-robust (glibc's robust process-shared pthread mutex around a counter,
// the loop in C) and c-cas (a C compare-and-swap loop: no lock at all, the
// ceiling).
//
// # C yardsticks
//
// The C rows (c-robust, c-cas, c-ring) run internal/cyard's yard, a C
// program the harness compiles on first use with cc, gcc or $CC and keeps
// in the user's cache directory (named by a hash of its source and
// compiler, so a change builds afresh). A C buyer is a buyer process that
// runs yard for its loop; yard waits on the same start barrier, so the
// clock is the same. The bench binary itself links no C: linked in through
// cgo, C made every process it starts slower to start, the shm buyers
// included (lesson 1, docs/runs/startcost.txt). Without a C compiler, or
// with one that cannot build yard, the default runs leave the C rows out
// and say so.
//
// # Profile
//
// A shm buyer's loop (sellBuyer) calls the Counter's Buyer.Buy directly,
// once per ticket, as a Go program's buyer would; other stores' loops call
// Buy through the ticketshm.Store interface. Buy is too big to inline
// without a profile, and at 3 to 6 ns a buy the call and its result are a
// quarter to a third of the cost (the last lines of
// docs/runs/bench-chart.txt: shm-lockfree alone 245M and 251M tickets/s
// without the profile, 367M and 373M with it); the C backends' loops are
// one function that gcc optimizes whole. default.pgo, a CPU profile of the
// buyers, producers and consumers, is what `go build` and `go run` use by
// default (-pgo=auto) to inline the hot Buy into the loop, as any Go
// program built with a profile of its own hot path would. (Through the
// interface, the profile devirtualized the call behind a type check on
// every buy: one lock-free buyer sold 377-379M tickets/s that way and
// 388-392M called directly, docs/runs/buy-loop.txt.)
// `-pgo=off` builds the plain binary. Made on the machine of docs/runs
// with:
//
//	rm -rf /tmp/p && mkdir /tmp/p
//	go build -pgo=off -o /tmp/bench ./cmd/bench
//	SHMKIT_BENCH_CPUPROFILE=/tmp/p /tmp/bench -backends shm-mutex,shm-lockfree -procs 1,2,4
//	SHMKIT_BENCH_CPUPROFILE=/tmp/p /tmp/bench queue -backends shm-queue
//	go tool pprof -proto /tmp/p/*.pprof > cmd/bench/default.pgo
//
// (A child that used less than 20 ms of CPU writes no profile: merged,
// one without samples makes a file go build refuses.) TestProfileInlinesTheBuy
// fails when the profile no longer reaches the loop.
//
// # JSON
//
// A throughput object has at least backend, procs, tickets, seconds,
// ops_per_sec, sold, remaining, oversold, lost, torn, min_share and
// max_share (and rounds, round_ops_per_sec, broken; when json-nolock's
// writers tore the db file for good, broken_file has the file's first 40
// bytes as the run left them, which the table's footnote quotes); chaos
// has kills, buys, oversold, lost, double_sold, not_recoverable,
// slot_claims, foreign and foreign_refused; recover and spawn have n,
// p50_us, p99_us, max_us. Scripts rely on these names.
//
// # Latency
//
// Throughput per buy hides stalls: a lock that lets each process have it
// for milliseconds at a time sells as fast as one that takes turns every
// microsecond, but a process that arrives at a random moment waits a
// thousand times longer. bench latency sells with -procs buyers through
// each backend twice, untimed (ops/s) and with each buyer reading the
// clock after every buy (timed), and reports the gaps between a buyer's
// consecutive buys, all buyers together, from a histogram with eight
// buckets per power of two (internal/gaphist): p50, p99, p99.9 and the
// longest; the mean wait of a buyer arriving at a random moment (ΣG²/2ΣG:
// a random moment falls in a long gap in proportion to its length); the
// gap below which 99% of the time falls (time p99); and the share of the
// time spent in gaps over 100µs. Every gap includes one clock read, whose
// cost (clock) is reported: Go's monotonic clock for the Go backends,
// clock_gettime in C's timed loops for c-robust and c-cas, which run in
// the same invocation, at each process count in turn. -turn sets the shm
// locks' turn (semaphore.SetTurn) in every buyer, to draw the curve of
// wait against throughput. -rounds R sells R times per backend and
// process count, the backends taking turns round by round, and pools
// each backend's gaps: the longest gaps are the machine's (a vCPU taken
// away for milliseconds stalls c-cas, which has no lock at all, as long),
// and in a single one-second sale one of them decides the mean wait.
// JSON fields: backend, procs, turn_us, rounds, tickets, gaps,
// gap_p50_ns, gap_p99_ns, gap_p999_ns, gap_max_ns, mean_wait_us,
// mean_wait_over_1ms_us (the part of the mean wait that gaps over a
// millisecond make: the machine's stalls, mostly), time_p99_us,
// share_over_100us, ops_per_sec, timed_ops_per_sec, clock_ns, and hist:
// the histogram itself, its non-empty buckets as lo_ns (included), hi_ns
// (excluded) and count.
//
// # Chaos
//
// bench chaos runs -procs buyers on a Counter and SIGKILLs a random one at
// a random moment, -kills times, starting a new one each time; a counter
// that sells out is audited and replaced, and every counter is audited at
// the end: buys, oversold, lost and double_sold (Audit.DoubleSold) are
// reported, and any of the last three but 0 fails the run. With -churn (on
// by default) one buyer opens and closes the counter over and over, and
// after each kill a process that does not buy takes the lowest free slot,
// the dead buyer's: slots and the logs in them are reused all the time
// (slot_claims counts the claims). With -foreign (on when run as root),
// every tenth kill starts a buyer in a PID namespace of its own, as in
// another container sharing /dev/shm: it must be refused (shm.ErrNamespace)
// while the others buy (foreign, foreign_refused).
//
// # Recover
//
// A holder process takes the lock and is SIGKILLed while a waiter in the
// harness sleeps on it; the time is from the kill to the waiter's return
// with the owner's death reported (ErrOwnerDead; EOWNERDEAD for glibc),
// the lock made consistent and unlocked. shm-mutex and c-robust take
// turns, one death each, and each reports first_share: the share of those
// back-to-back pairs in which its waiter returned first. Both wait for the
// same kernel event (the robust-list walk as the holder's thread exits),
// so about 0.5 each is a tie, and a lock whose own code were slower would
// fall below it before its p50 showed it.
package main
