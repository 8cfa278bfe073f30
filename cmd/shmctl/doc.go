// Command shmctl sees, audits and repairs what lives in /dev/shm: the
// ipcs and ipcrm of shmkit's segments.
//
//	go run ./cmd/shmctl ls                 # every segment in /dev/shm
//	go run ./cmd/shmctl stat tickets       # /dev/shm/shmkit.tickets, inside out
//	go run ./cmd/shmctl audit tickets      # exit 0 only if its invariants hold
//	go run ./cmd/shmctl repair tickets     # settle what dead processes left
//	go run ./cmd/shmctl rm tickets         # refused while a live process uses it
//
// Install it with go install github.com/shmkit/shmkit/cmd/shmctl@latest.
//
// # Commands
//
//   - ls [DIR|PATH...]: every segment in the directories (default
//     /dev/shm) and files given: name, type tag, size, state (ready,
//     initializing, empty, corrupt with the reason, unreadable), modified
//     time, process slots held by live processes and by processes that
//     died with the segment open, the pids that have it open (process
//     slots, and /proc for processes that hold the file without a slot),
//     owner uid. Files that are not segments are skipped; outside
//     /dev/shm/shmkit.*, a file of zeros or one still being made is not
//     taken for one (other programs' shared memory looks the same).
//   - stat NAME...: the header, the slot table, and what the type holds,
//     from the type's own package (semaphore.InspectMutex,
//     semaphore.InspectSemaphore, ticketshm.Inspect): a Mutex's state,
//     owner and whether it lives, bias, waiters and hand-off; a
//     Semaphore's permits and holders; a Counter's counts, its Audit,
//     unsettled logs of dead buyers and sales per process.
//   - audit NAME...: each type's invariants: a Counter's Audit, a Mutex
//     that is recoverable, a Semaphore whose books balance.
//   - rm [-f] NAME...: removes segments; refused while a live process has
//     one open, unless -f. Never follows a symbolic link, never removes a
//     file that is not a segment.
//   - repair [-f] [-timeout D] NAME...: a Counter's dead buyers' logs
//     settled into its ledger (what any process's next Open does, safe
//     with live buyers); a Semaphore's permits held by dead processes
//     given back; a not-recoverable Mutex reset, refused while a live
//     process has it open unless -f. Each says what it did and what it
//     left alone.
//
// Every command takes -json: one JSON object per segment, one per line.
//
// # Looking changes nothing
//
// ls, stat and audit read segments through shm.OpenPrivate, a private
// mapping of the file: they claim no process slot and take no lock, and a
// Counter's audit settles dead buyers' logs on the private copy only.
// Liveness is asked of the kernel (the slots' OFD locks), so a look from
// another uid or PID namespace sees it too. A look at a segment in use is
// a look at a moving target: its words may come from different moments.
//
// # Exit status
//
// 0: done (audit: every check holds). 1: an audit failed, rm or repair
// refused or failed, or a segment is corrupt. 2: bad usage, or a name
// that is invalid, missing, unreadable or not a segment.
package main
