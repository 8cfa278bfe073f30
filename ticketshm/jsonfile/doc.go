// Package jsonfile is the course notes' ticket store, exactly: a file such
// as db.txt holding {"count": N}. Remaining reads it (in parallel, like the
// notes' search); Buy reads it, decrements the count and writes it back
// (the notes' get).
//
// FlockStore wraps the read-modify-write in flock(2): correct, and the
// baseline shared memory is measured against. It keeps the file open, takes
// LOCK_SH to read and LOCK_EX to buy, and parses and formats the count
// without allocating.
//
// UnlockedStore takes no lock, as the notes' first, broken version: buyers
// read the same count and sell the same ticket twice, and a reader can find
// the file truncated or half written by a writer. It exists to show that,
// so it reports it instead of hiding it: a file it cannot parse is an error
// wrapping ErrTorn, and Torn counts them; a file that stays unparsable
// (two writers interleaved: {"count": 958}}) is ErrBroken, so a buyer that
// retries torn reads does not retry forever. Overselling shows in the ticket
// numbers (the same number sold twice) and in the sum of sales.
//
// Ticket numbers are the count a buyer saw before its decrement: N for the
// first, 1 for the last.
//
// # Caveats
//
// flock locks are advisory: a process that writes the file without flock
// breaks the FlockStore's guarantee. A buyer killed in the middle of its
// write can leave a torn file for the FlockStore too (there is no journal):
// use shared memory (ticketshm.Counter) when buyers may die.
package jsonfile
