// Package ticketshm is the course notes' ticket sale (抢票) in shared
// memory: a Counter of tickets that many processes buy from, with a lock
// (Locked) or without (LockFree), and the Store interface that every
// backend of the sale implements, including the notes' own JSON file
// (package ticketshm/jsonfile).
//
// # Basics
//
//	c, err := ticketshm.OpenCounter(ctx, "tickets", 100, ticketshm.LockFree)
//	t, err := c.Buy(ctx) // ticket number, or ErrSoldOut
//	a, err := c.Audit()  // a.OK(): sold + remaining == total, nothing lost
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
//     CAS (the intent) and counts it after (the commit); every 63 buys,
//     and on Close, the log goes into the ledger. A buyer killed anywhere
//     leaves a log that the next process to attach, or Audit, empties
//     into the ledger, the intent included when it names a taken ticket
//     nobody else owns. log_linux.go has the protocol and why.
//
// Audit counts the ledger against the count: sold + remaining == total,
// Lost (taken, no owner) and Oversold (owned, never taken) both zero.
//
// # Layout
//
// A Counter segment has the shm tag "ticketshm.Counter/3" (the suffix is
// the layout version; /2 had a Mutex that never biased, /1 also one intent
// word per slot and no logs) and
// 67200+total data bytes, little-endian:
//
//	offset size        field
//	     0 1600        semaphore.Mutex record, used through a BiasedMutex
//	                   (Locked: every buy; LockFree: settling dead
//	                   buyers' logs and Audit)
//	  1600    8        total tickets, int64
//	  1608    8        remaining tickets, int64: the word Buy decrements
//	  1616    4        mode, uint32: 1 Locked, 2 LockFree
//	  1620   44        reserved, zero
//	  1664 512*128     buy log of process slot i at 1664+512i (LockFree;
//	                   zero in a Locked counter):
//	                     +0  committed entries, int64, 0-63
//	                     +8  63 entries, int64: the remaining count r of
//	                         each lock-free buy (ticket total-r+1); the
//	                         entry after the committed ones is the intent
//	 67200 total       ledger: byte t-1 is slot+1 of ticket t's buyer, 0
//	                   unsold or still in a live buyer's log
//
// # Caveats
//
// Linux only. At most 128 processes buy from one Counter at once (the
// semaphore's process slots). Audit reads the whole ledger. While a
// lock-free buyer lives, up to 63 of its tickets are in its log and not in
// the ledger: Audit reads the live logs too, but a raw look at the ledger
// bytes does not see them.
package ticketshm
