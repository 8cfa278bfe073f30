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
//   - Locked: under the segment's robust semaphore.Mutex the buyer writes
//     the ledger entry of ticket t, then decrements remaining. If it dies
//     in between, the next locker gets ErrOwnerDead and completes the
//     decrement (the ledger says the ticket was sold).
//   - LockFree: the buyer writes the remaining count r it saw into its
//     slot's intent word, CASes remaining from r to r-1 and writes the
//     ledger entry of ticket total-r+1 (the intent stays: it names a ticket
//     with an owner from then on). A buyer killed after the CAS leaves an
//     intent that names its ticket with no owner: the next process to
//     attach, or Audit, attributes the ticket to it.
//
// Audit counts the ledger against the count: sold + remaining == total,
// Lost (taken, no owner) and Oversold (owned, never taken) both zero.
//
// # Layout
//
// A Counter segment has the shm tag "ticketshm.Counter/1" (the suffix is
// the layout version) and 9856+total data bytes, little-endian:
//
//	offset size        field
//	     0 1600        semaphore.Mutex record (Locked mode; LockFree uses its slot table)
//	  1600    8        total tickets, int64
//	  1608    8        remaining tickets, int64: the word Buy decrements
//	  1616    4        mode, uint32: 1 Locked, 2 LockFree
//	  1620   44        reserved, zero
//	  1664 64*128      intent of process slot i at 1664+64i, int64: the
//	                   remaining count its last lock-free buy took or is
//	                   taking, 0 none
//	 9856 total        ledger: byte t-1 is slot+1 of ticket t's buyer, 0 unsold
//
// # Caveats
//
// Linux only. At most 128 processes buy from one Counter at once (the
// semaphore's process slots). Audit reads the whole ledger.
package ticketshm
