// Package semaphore provides a robust inter-process Mutex and a counting
// Semaphore that live in a shared-memory segment (package shm) and survive
// the death of a process that holds them.
//
// # Basics
//
//	m, err := semaphore.OpenMutex(ctx, "orders") // /dev/shm/shmkit.orders
//	err = m.Lock()
//	if errors.Is(err, semaphore.ErrOwnerDead) {
//		repair()           // the previous owner died mid-update
//		err = m.Consistent()
//	}
//	...
//	m.Unlock()
//
// A Mutex or Semaphore can also sit inside a segment of your own, at an
// offset (NewMutex, NewSemaphore): a Mutex record of zeros is an unlocked
// Mutex; a Semaphore record is written by InitSemaphore in the segment's
// init function.
//
// POSIX robust-mutex semantics, as glibc's PTHREAD_MUTEX_ROBUST: when the
// owner dies (SIGKILL at any instruction, a crash, an exit), the next locker
// gets the lock and ErrOwnerDead; it repairs the protected state and calls
// Consistent. If it unlocks without Consistent, the mutex becomes
// ErrNotRecoverable for every process. Unlock by a process that does not
// hold the mutex returns ErrNotOwner; like sync.Mutex, any goroutine of the
// owning process may unlock it. Lock calls return ErrOwnerDead itself, not
// wrapped with the segment's path as every other error is: it reports a
// lock that was taken, and errors.Is on a wrapped error cost 1.7 µs of a
// takeover in a waiter that woke with cold caches (0.14 µs bare).
//
// A BiasedMutex (NewBiasedMutex) is a Mutex for one goroutine at a time
// that stays with its process between critical sections while no other
// process asks for it: Lock and Unlock are then plain stores, no locked
// instruction, three to four times faster than glibc's robust mutex. See
// # Biased locking.
//
// Blocking calls come as Lock / LockContext(ctx) / TryLock and
// Acquire(ctx, n) / TryAcquire(n); Semaphore is shaped like
// golang.org/x/sync/semaphore.Weighted.
//
// # How a death is noticed
//
// The kernel keeps, per thread, a "robust list" of futex words (see
// set_robust_list(2)). When a thread exits, however it exits, the kernel
// walks its list: each word whose low 30 bits equal the thread's TID gets
// the OWNER_DIED bit, and one waiter is woken. The Go runtime registers no
// list, so this package does: for each process-slot index a process uses, a
// goroutine locks itself to an OS thread for the life of the process and
// registers a list head from there. That thread's TID is the process's
// owner id, which any goroutine on any thread writes into a futex word when
// it locks.
//
// Every entry of one list must sit at the same distance from its futex
// word. So a Mutex record holds one list node per process slot: a process
// that claimed slot i of a segment (an OFD byte lock, see shm.ClaimSlot)
// links node i of each record into list i once, when it attaches, and
// unlinks it when the segment is closed. Lock and Unlock are then plain
// CASes on the word: the fast path is one CAS, no syscall, no list work.
// (Linking per acquisition, as glibc does, costs several stores per lock.)
//
// The kernel cannot cover one window: an owner killed after it released the
// word but before it woke a sleeper. And a word may hold an id the kernel
// never knew (a corrupt file). So sleepers sleep in slices of 10ms; after a
// slice in which the word did not change they look the owner id up in the
// record's table of per-slot owner ids and ask the kernel whether that
// slot's OFD lock is still held. If not, they mark the word OWNER_DIED as
// the kernel would have. A missed wake costs bounded latency, never a hang.
//
// # Layout
//
// All integers little-endian. A Mutex record is MutexSize (1600) bytes at a
// data offset that is a multiple of 64:
//
//	offset size field
//	     0    4 futex word: bits 0-29 owner id (TID of the owner process's
//	            robust thread; 0 unlocked; 0x3fffffff not recoverable),
//	            bit 30 OWNER_DIED, bit 31 WAITERS (the kernel's format)
//	     4    4 hand-off: owner id of a starving waiter, bit 31 set once granted
//	     8    8 bias: bits 0-29 owner id of the process the lock is biased
//	            to (0 none), bits 32-61 owner id of a process revoking it
//	    16   48 reserved, zero
//	    64  512 owner ids of process slots 0-127, uint32 each (0: none yet);
//	            bit 31: that process is inside a critical section it
//	            entered through the bias
//	   576 1024 robust-list nodes of slots 0-127, 8 bytes each: a pointer in
//	            the address space of the process holding the slot;
//	            futex_offset of list i is -(576+8i)
//
// A Semaphore record is SemaphoreSize (2688) bytes, 64-aligned:
//
//	offset size field
//	     0 1600 Mutex record guarding the fields below
//	  1600    8 capacity, int64 (> 0)
//	  1608    8 permits available, int64
//	  1616    4 release sequence, uint32 futex word: waiters sleep on it
//	  1620   44 reserved, zero
//	  1664 1024 permits held by the process in slot 0-127, int64 each
//
// Whenever its mutex is free, available + sum(held) == capacity. A process
// that dies holding permits leaves them in its slot; they go back when an
// Acquire finds too few permits (it checks which slots are dead), when a
// waiter's sleep slice ends, or when a new process claims that slot. A
// process killed inside Acquire or Release leaves the mutex OWNER_DIED; the
// next caller rebuilds available from the live slots' counts.
//
// # Mutex fairness
//
// Barging with hand-off, like sync.Mutex's normal and starvation modes: a
// busy lock stays with the process that runs, waiters back off while the
// lock is hot and sleep on the futex while it is held for long, and a
// waiter that waited more than 1ms is handed the lock directly by the next
// Unlock. See the comment above starvationThreshold in mutex_linux.go. No
// strict FIFO: it collapses when processes outnumber cores.
//
// # Biased locking
//
// A lock biased to process P keeps P's owner id in its futex word between
// critical sections, so to everyone else it is held. P enters a critical
// section by setting bit 31 of its slot's owner-id entry and then checking
// that the bias word still names P alone; it leaves by clearing the bit.
// Both are plain stores. A process that wants the lock writes its id into
// the bias word's revoker half, calls membarrier(MEMBARRIER_CMD_GLOBAL_
// EXPEDITED), which makes every CPU running a thread of P execute a full
// barrier, and waits for P's bit to clear. Then P cannot enter (it would
// see the revoker) and is not inside: the revoker moves the futex word to
// itself and clears the bias word. bias_linux.go has the argument.
//
// A Mutex on a biased lock treats it as hot while P's bit keeps changing
// (it backs off, and revokes after starvationThreshold, like a hand-off),
// and revokes at once when P is idle, inside a long critical section, or
// dead. The kernel marks the word OWNER_DIED when P dies as for any owner;
// P's bit says whether it died inside (ErrOwnerDead) or between critical
// sections (the lock is free). A revoker that dies mid-way leaves its id
// in the bias word; whoever sees it dead undoes its claim, or, if it had
// taken the word, treats it as an owner that died holding it.
//
// P biases the lock when it unlocks one it took through the word and
// nobody waits: no waiters bit, no hand-off request. Biasing needs amd64
// (x86's store and load ordering) and the expedited global membarrier
// (Linux 4.16); elsewhere a BiasedMutex never biases and is a Mutex for
// one goroutine at a time.
//
// # Caveats
//
// Linux only (the robust list, futexes and OFD locks are Linux's); other
// systems get errors.ErrUnsupported.
//
// At most MaxProcs (128) processes use the mutexes of one segment at once,
// and a process can attach at most 2048 records per slot index (the
// kernel's list limit). A Mutex must not be used after its segment is
// closed; closing it unlinks the nodes. A process that opens one segment
// twice holds two slots and two owner ids: a lock taken through one handle
// cannot be unlocked through the other.
//
// A BiasedMutex is used by one goroutine at a time, and it is the only user
// of its record in its process (ErrInUse otherwise). A record that a
// BiasedMutex uses must only be used by builds that know the bias word: an
// older build sees a biased lock as held for good. Segments whose records
// may be biased bump their type tag (ticketshm.Counter/3 did). A process
// whose membarrier(2) calls are refused (a seccomp filter) cannot revoke a
// bias: its lock calls on a record biased to another process return that
// error.
//
// Robust means a dead owner is detected, not that the data is right: the
// code that gets ErrOwnerDead must repair or discard what the lock guards.
//
// The race detector does not see synchronisation through shared mappings;
// Mutex reports its lock/unlock edges to it in -race builds, so data guarded
// by a Mutex within one process is checked as with sync.Mutex.
package semaphore
