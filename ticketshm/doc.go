// Package ticketshm is the course notes' ticket sale (抢票) in shared
// memory: a Counter of tickets that many processes buy from, with a lock
// (Locked) or without (LockFree), and the Store interface that every
// backend of the sale implements, including the notes' own JSON file
// (package ticketshm/jsonfile).
//
// # Basics
//
//	c, err := ticketshm.OpenOrCreate(ctx, "tickets", 100, ticketshm.LockFree)
//	t, err := c.Buy(ctx) // ticket number, or ErrSoldOut
//	a, err := c.Audit(ctx) // a.OK(): sold + remaining == total, nothing lost or sold twice
//
// A buy is all-or-nothing whatever instruction a buyer is killed at:
//
//   - Locked: under the segment's robust semaphore.BiasedMutex (a buyer
//     that runs alone keeps it between buys: two plain stores instead of
//     two CASes; a buyer in another process revokes it) the buyer writes
//     the ledger entry of ticket t, then decrements remaining. If it dies
//     in between, the next locker gets ErrOwnerDead and completes the
//     decrement (the ledger says the ticket was sold).
//   - LockFree: the buyer CASes remaining from r to r-1, which sells it
//     ticket total-r+1. It does not write the shared ledger per ticket:
//     its process slot has a log of its own, where it writes r before the
//     CAS (the intent) and counts it after (the commit); every 61 buys,
//     and on Close, the log goes into the ledger. A buyer killed anywhere
//     leaves a log that the next process to attach, or Audit, empties
//     into the ledger, the intent included when it names a taken ticket
//     nobody else owns. log_linux.go has the protocol and why.
//
// Audit counts the ledger against the count: sold + remaining == total,
// Lost (taken, no owner), Oversold (owned, never taken) and DoubleSold
// (Locked: sold twice) all zero.
//
// # Layout
//
// A Counter segment has the shm tag "ticketshm.Counter/5" (the suffix is
// the layout version; /4 had a Mutex whose bias word had no revoker's win,
// /3 named processes by slot alone, /2 had a Mutex
// that never biased, /1 also one intent word per slot and no logs) and
// 68224+total data bytes, little-endian:
//
//	offset size        field
//	     0 2624        semaphore.Mutex record, used through a BiasedMutex
//	                   (Locked: every buy; LockFree: settling dead
//	                   buyers' logs and Audit)
//	  2624    8        total tickets, int64
//	  2632    8        remaining tickets, int64: the word Buy decrements
//	  2640    4        mode, uint32: 1 Locked, 2 LockFree
//	  2644   44        reserved, zero
//	  2688 512*128     area of process slot i at 2688+512i:
//	                     +0  generation, uint64: the shm slot generation of
//	                         the process the area belongs to (0 none yet)
//	                     +8  sales, uint64 (Locked): tickets this slot sold,
//	                         in the high 32 bits, and the last one's number
//	                     +16 committed entries, int64, 0-61 (LockFree)
//	                     +24 61 entries, int64: the remaining count r of
//	                         each lock-free buy (ticket total-r+1); the
//	                         entry after the committed ones is the intent
//	 68224 total       ledger: byte t-1 is slot+1 of ticket t's buyer, 0
//	                   unsold or still in a live buyer's log
//
// An area's log belongs to the process its generation names (a later
// process in the same slot settles it before it takes the area over), so
// a dead buyer's tickets are never mistaken for a live one's. Sales count
// every locked sale as it is made, so that a ticket sold twice (two
// processes that both believed they held the lock) shows in Audit as
// DoubleSold although its ledger byte holds one owner.
//
// # Caveats
//
// Linux only. At most 128 processes buy from one Counter at once (the
// segment's process slots), all of one PID namespace (shm.ErrNamespace
// otherwise). A process has one Counter per segment (one slot, however many
// goroutines share it or open it again), safe for concurrent use; its
// goroutines' buys take turns on an in-process lock. Audit reads the whole ledger. While a lock-free buyer lives,
// up to 61 of its tickets are in its log and not in the ledger: Audit
// reads the live logs too, but a raw look at the ledger bytes does not
// see them.
package ticketshm
