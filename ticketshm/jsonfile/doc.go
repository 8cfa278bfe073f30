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
// # Writing in place
//
// The notes write with open(path, 'w') and json.dump: truncate, then
// write. If the write fails (a full disk, EIO, a quota) the file is left
// empty and the whole sale is gone. FlockStore never truncates: a buy
// overwrites the count's digits where they are, right-aligned, so
// {"count": 10} becomes {"count":  9} — valid JSON that Python's json.load
// reads, the same length, inside the blocks the file already has. A write
// that fails leaves the old count. Every other key of the object is kept.
// UnlockedStore keeps the notes' truncate-then-write: its torn reads are
// the lesson.
//
// Reset resets an existing file in place too, under LOCK_EX (the same
// inode, mode and owner; stores that have it open sell from the new count),
// reserving the blocks of a longer file before it writes a byte; a missing
// file is written under a temporary name and renamed into place.
//
// # Errors that are permanent
//
// Under flock no writer is ever half way through, so a FlockStore that
// cannot parse the file (empty, "05", a UTF-8 BOM, {"count": 958}}) returns
// ErrFormat, which waiting cannot fix; only the UnlockedStore returns
// ErrTorn, which it may. Nothing in this module retries an error without a
// bound.
//
// # The name, and the file behind it
//
// A store opens the file once and keeps it. Before each call it compares
// the path's inode with its open file's (one stat(2), about a microsecond
// against a buy's several): if another program renamed a new file over the
// name, the store reopens and sells from the file everyone else sees; if
// the name was removed, the call fails with fs.ErrNotExist. The comparison
// is made under the flock, so a reset (Reset, in place, under the lock)
// is never missed; a program that renames over the name without the lock
// can still race a buy in flight, as it could race Python's.
//
// # Concurrency and Close
//
// Both stores are safe for concurrent use: calls on one store take turns
// (flock alone would not keep them apart: it locks per open file, and the
// goroutines share one). After Close, every method returns an error
// wrapping ticketshm.ErrClosed; a Close waits for calls in flight.
//
// # Caveats
//
// flock locks are advisory: a process that writes the file without flock
// breaks the FlockStore's guarantee. A buy's write is a few bytes inside
// one page, which the kernel copies whole; a count whose digits straddle a
// 4 KiB page boundary (a file with kilobytes of other keys before it) could
// be torn by a SIGKILL mid-copy. Reset's write of a file longer than a
// page is not atomic against SIGKILL either. For buyers that may die at any
// instruction, use shared memory (ticketshm.Counter).
package jsonfile
