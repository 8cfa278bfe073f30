// Package queue is a bounded queue of byte messages between processes,
// in one shared-memory segment (package shm): Python's
// multiprocessing.Queue, or a Go channel between processes, that no
// process's death can tear, lose a message from, or stall.
//
// # Basics
//
//	q, err := queue.OpenOrCreate(ctx, "jobs", 1024, 256) // 1024 messages of up to 256 bytes
//	err = q.Send(ctx, []byte("job 1"))                   // waits while full
//	n, err := q.Recv(ctx, buf)                           // waits while empty; io.EOF once closed and drained
//	err = q.RecvFunc(ctx, func(msg []byte) error {...})  // removed only when fn returns nil
//	err = q.CloseSend()                                  // any process, once: receivers drain, then io.EOF
//
// A queue lives in /dev/shm until Remove, and CloseSend is for good: a
// program that closes its queue at the end makes a new one at its next
// start (Remove, then Create); OpenOrCreate would open the closed one.
//
// A Queue is safe for concurrent use by many goroutines of many processes
// (at most MaxProcs processes at once, of one PID namespace). Waiting
// spins briefly, then sleeps on a futex: a Send wakes a sleeping receiver,
// an idle queue costs no CPU, and ctx deadlines and cancellation work
// while blocked.
//
// # What a death does
//
//   - A producer killed at any instruction of Send: if Send had not
//     returned, its message is either wholly in the queue or not at all,
//     never torn (receivers take only published cells); a cell it had
//     reserved and not published is dropped by the first receiver that
//     finds no live process saying it writes it. Other producers pass
//     it, and wait for it only once the ring comes round to its cell
//     again, until a receiver drops it. If Send returned nil, the
//     message is in the queue for good.
//   - A consumer killed in Recv before its copy is done and the cell
//     freed: the message it was taking stays in the queue and goes to the
//     next receiver (at least once for that message; exactly once for
//     every other). Once the cell is freed (the last steps of Recv), the
//     message is the caller's: a process killed after that loses it with
//     whatever else it held. RecvFunc closes that window: the message
//     leaves the queue only when fn returns nil, so work done in fn is
//     lost by no kill (it may be done twice).
//   - Order: the queue is FIFO; a producer's messages are received in the
//     order it sent them, except that a message whose receiver died comes
//     again after later ones may have been received.
//   - A process stopped (SIGSTOP) in the middle holds up what waits for
//     its cell: a stopped producer, the receivers that reach its cell, and
//     the producers once the ring comes round to it again; a stopped
//     receiver, the other receivers. A stopped process is alive: nothing
//     is taken from it.
//
// # Protocol
//
// The ring is a power-of-two number of cells, each with a 64-bit state
// word: the position (which lap of the ring: 40 bits), the low 8 bits of
// the slot generation of the process the state names, the seized bit, a
// 5-bit retry count, a state (free, published, taking) and that
// process's slot (+1). The tail and head are positions, only ever moved
// forward by one with a CAS, by anyone.
//
// Send is Vyukov's bounded queue with an intent: at the tail position t,
// the cell is free(t). The producer writes t into one of its slot's lanes
// (its intent: "I reserve, or write, the cell at t"), then reserves the
// cell by moving the tail t -> t+1 with a CAS, writes the length and
// bytes, stores published(t), and only then clears its lane. A failed CAS
// (another producer took t, or the queue was closed) clears the intent
// and tries again. The only locked instruction a Send makes on a line
// the other side reads is that CAS, on the producers' tail: the cell's
// words are plain stores (see Sleeping), so a producer does not wait for
// a consumer's cache to give the cell's line back.
//
// A reserved cell is free(t) with the tail past t. Its producer wrote its
// intent before its CAS moved the tail, and clears it only after its
// publish: so a receiver that reads the cell free(t), then the tail past
// t, then finds no live process whose lane names t, knows that nobody
// will ever write the cell (its producer died) and drops it: free(t) ->
// free(t+capacity) by a CAS, which fails if the publish came after all.
// A lane names no generation; it is its slot's. A lane of a live
// process that names t (a stale intent of a failed CAS, not yet cleared)
// makes the receiver wait: a stall while that process is stopped, never
// a drop. Lanes are per process, 6 of them, one per goroutine in Send at
// an instant; a seventh goroutine yields until one is free.
// Full: the cell still holds the last lap's message (or reservation).
//
// Recv: at the head position h, the cell is published(h): CAS it to
// taking(h, our slot, retries+1), copy the message out (or run fn), CAS
// it to free(h+capacity), the next lap's, and only then move the head.
// The head passing the cell only after the copy is what makes a
// receiver's death safe: its cell stays at the head, taking, and the next
// receiver that finds its process dead takes it over, taking(h, dead, n)
// -> taking(h, us, n+1) in two steps (see Identity), and delivers it.
//
// CloseSend sets the tail's top bit with a CAS: the tail never moves
// again, its position is where receivers find io.EOF, and a producer
// whose CAS fails on it returns ErrSendClosed, having reserved nothing.
// Every cell before that position was reserved before the close, so its
// message is delivered (or dropped, if its producer died). The closer
// then copies the closed tail to a word on the head's line (closedAt),
// which receivers that find the head's cell free look at instead of the
// tail: polling the producers' line would take it from them at every
// look. A receiver that reads the closed tail itself (its slow path)
// copies it too, for a closer that died between the two stores; receivers
// asleep on an empty queue then see the close when their 1 s sleep ends,
// as the closer's wake died with it.
//
// # Identity
//
// A cell names a process by slot and by the low 8 bits of that claim's
// generation; the process is alive while the slot's area holds a
// generation ending in those bits and shm.Segment.Alive says the
// generation's process holds the slot (an OFD lock the kernel drops with
// the process: no PID reuse hole). shm gives every claim of a slot a new
// generation, and a process that claims slot s first settles every cell
// naming slot s (its dead predecessors' taking cells, put back as
// published with the retry count bumped) and clears their lanes, then
// writes its generation into area s.
//
// A takeover is made in two steps, so that a look made long ago cannot
// take a cell from a live holder whose word has come round to the same
// value (a retry count brought round by put-backs, TestRetryCountABA; a
// slot's generation bits brought round by 256 re-opens,
// TestGenerationABA): the receiver writes the word it will seize into
// its area's seizing field, CASes the holder's word to the same word with
// the seized bit (frozen: nobody takes a seized cell from a live seizer),
// looks at the holder again, and then commits (the cell is its own) or,
// the holder alive, undoes (the holder's word again). A holder that finds
// its word seized when it frees or puts back its cell waits for the
// seizer's undo, or undoes it itself if no live process says it is
// seizing that word; a receiver that finds a cell seized by a dead seizer
// takes it over the same way. A taker frees and puts back its cell only
// by a CAS from its own word.
//
// Sleeping: a waiter sets its side's sleepers flag (a locked exchange,
// ordered before its last look at the cell) and sleeps on the side's
// futex word; the other side, after its publish or free, looks at the
// flag, takes it and wakes every sleeper of that side. One wake per round
// of sleep, however many messages follow; a sleeper killed asleep leaves
// a flag that the next wake clears. Both sides need a full barrier
// between their store and their look (Dekker). A receiver freeing a cell
// has one (its CAS). A producer's publish on amd64 is a plain store, and
// the receiver going to sleep makes the barrier for it: membarrier(2)'s
// MEMBARRIER_CMD_GLOBAL_EXPEDITED, after the flag and before the last
// look, makes every running thread of every process registered for it
// (each process that opens a queue registers) pass a full barrier. So
// either the publish is seen by that look, or the producer's look at the
// flag comes after its barrier and sees the flag. A process that cannot
// register publishes with an XCHG; a receiver whose membarrier fails
// sleeps in 1 ms slices. Spinning waiters, before they sleep, need none
// of this: they look again and again.
//
// # Layout
//
// A queue segment has the shm tag "queue.Queue/2" and 8512 + capacity x
// cell data bytes, little-endian:
//
//	offset size   field
//	     0    4   capacity: cells, a power of two
//	     4    4   maximum message size, bytes
//	     8    4   cell size: 16 + maximum size, rounded up to 64
//	    64    8   tail position; bit 63: closed for sending
//	   128    8   head position
//	   136    8   closedAt: the closed tail, once CloseSend says so
//	   192    4   not-empty futex word (bumped to wake receivers)
//	   196    4   receivers asleep: a flag, set by sleepers, taken by wakers
//	   256    4   not-full futex word (bumped to wake senders)
//	   260    4   senders asleep: the same
//	   320 64x128 area of process slot i at 320+64i:
//	                +0  its generation, uint64
//	                +8  the seized word it is taking over, 0 none
//	               +16  6 lanes, uint64 each: 0 free, 1<<63 in use,
//	                    1<<63|(t+1) an intent for position t
//	  8512        cells, cell size each:
//	                +0  state word, uint64
//	                +8  message length, uint32
//	               +16  message
//
// The tail, head and futex words sit on cache lines of their own, so that
// producers and receivers do not share a line but through the cells.
//
// # Caveats
//
// Linux only. A receiver runs RecvFunc's fn while its cell is the head:
// other receivers wait meanwhile. A cell's position wraps after 2^40
// messages, which the protocol tolerates: cells compare positions modulo
// 2^40, and the head and tail (64 bits) are never that far apart.
//
// A process sends from at most 6 goroutines at an instant (its lanes);
// more wait their turn, for the few instructions a Send holds a lane.
// Where membarrier(2) is refused (a seccomp filter, an old kernel), a
// producer publishes with an XCHG and a receiver sleeps in 1 ms slices:
// correct, a little slower. On other architectures than amd64,
// every publish is an atomic store.
package queue
