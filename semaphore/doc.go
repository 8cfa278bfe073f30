// Package semaphore provides a robust inter-process Mutex and a counting
// Semaphore that live in a shared-memory segment (package shm) and survive
// the death of a process that holds them.
//
// # Basics
//
//	m, err := semaphore.OpenOrCreateMutex(ctx, "orders") // /dev/shm/shmkit.orders
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
// instruction, three to four times faster than glibc's robust mutex (see
// the section on biased locking below).
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
// that holds slot i of a segment (shm.Segment.Slot) links node i of each
// record into list i once, when it attaches, and unlinks it when the
// segment is closed. Lock and Unlock are then plain CASes on the word: the
// fast path is one CAS, no syscall, no list work. (Linking per
// acquisition, as glibc does, costs several stores per lock.)
//
// The kernel cannot cover one window: an owner killed after it released the
// word but before it woke a sleeper. Nor a store into the word made by
// another thread of a dying process after its robust thread's exit walked
// the list. And a word may hold an id the kernel never knew (a corrupt
// file). So sleepers sleep in slices of 10ms; after a slice in which the
// word did not change they ask whether a live process has the owner id
// (ownerSlot, below). If not, they mark the word OWNER_DIED as the kernel
// would have. A missed wake costs bounded latency, never a hang.
//
// # Identity
//
// A thread id is not an identity: ids are reused, a restarted container
// starts again at small ones, and an id means something else in another
// PID namespace. A slot index is not one either: a dead process's slot is
// claimed by the next process. So only the futex word holds a thread id
// (the kernel's robust walk needs it there), and every other word that
// names a process names a slot whose meaning a generation pins down:
//
//   - shm gives every claim of a slot a new generation (shm.Slot: index
//     and generation, never reused). Slot i's process is alive while the
//     slot's generation is still its own and its OFD lock is held.
//   - A record's entry i holds the owner id of the process that attached
//     the record from slot i, and gen i that process's slot generation.
//     Every slot+1 in the record's words (bias holder and revoker,
//     hand-off requester) names that process: the one gen i records.
//   - A process that attaches a record from slot i, where gen i records an
//     earlier process (dead: we hold its slot now), first settles every
//     word that names slot i as any locker would, without needing an
//     identity of its own in the record (Mutex.join), and only then writes
//     entry i and gen i.
//   - The owner id in the word is alive when some entry i holds it, gen i
//     is alive, and nothing else: a dead process's id left in the word
//     (the exit race above) is dead to everyone even after the id has been
//     handed to a new process, unless that process attached this record,
//     and one that attaches finds its own id in the word only as a dead
//     process's, which it marks OWNER_DIED before it writes its entry.
//   - A bias word names its holder by slot; the word's owner id is that
//     holder's only while the holder's slot is the live one with that id.
//     A holder that died leaves its id to be handed on: a process with
//     the same id, in another slot, may take the word. So whoever takes a
//     dead owner's word while the bias word names a holder first judges
//     that holder, under its seizure of the word, with a verdict in the
//     bias word (Mutex.judgeBias), which voids any revocation claim made
//     while the holder lived; a revoker whose claim still stands under
//     its own seizure is looking at the holder's word. TryLock checks the
//     slot, not the id.
//   - Processes of one segment are of one PID namespace (shm refuses a
//     claim while another namespace's process holds a slot), so two live
//     processes never share an owner id, and the kernel's walk at one's
//     exit never marks another's word. (glibc's robust mutexes have no such
//     check: shared across namespaces they lose exclusion silently.)
//
// # Invariants
//
//  1. The word's owner is 0 (free), the owner id of a live process that
//     holds it, a dead owner's id or OWNER_DIED with no owner (left by a
//     death, for the next taker), handedOff (granted, see below) or
//     notRecoverable. Nothing but the kernel and the process whose id it
//     is writes an owner id into the word.
//  2. A free word (owner 0 without OWNER_DIED) is never biased: a bias is
//     made by the word's holder and given up, or moved with the word,
//     before the word is free.
//  3. While the hand-off word holds a grant, nobody is inside a critical
//     section: grants are made in Unlock after one, and whoever takes the
//     word clears the grant before its lock call returns.
//  4. While the bias word names a slot, that slot's entry and gen are not
//     replaced (join settles the bias first). Every change of the bias
//     word bumps its epoch, so a CAS computed from a stale value fails.
//  5. Whoever takes a word left by a death decides whether the protected
//     state needs repair only once it holds the word or has it seized,
//     from what the records say then (Mutex.judgeBias, Mutex.settle): a grant or a bias verdict of
//     "outside" says no, a bias naming a dead holder asks that holder's
//     in-critical-section bit, and otherwise a death is a death.
//  6. A decision made on other words (this owner id is no live process's;
//     our revocation claim stands) lands on the word only through a
//     seizure (mutex.seize): the word goes from the id to a seized value
//     (bit 29, the seizer's slot, the id), which no one takes and only its
//     seizer commits; the decision is made again; the seizer commits or
//     undoes with a CAS from its seized value. The id cannot come back
//     into a word that does not hold it, so a stopped process that resumes
//     with an old decision cannot take a later, equal value. A seized
//     value names its seizer by slot index only: a dead seizer's value is
//     undone by whoever finds its slot's generation gone, and first of all
//     by a process that joins in its slot; an undo that comes late (its
//     maker was stopped) can undo a later seizer's equal value, which
//     costs that seizer one attempt, as its commit CAS fails; a decision
//     with a side effect of its own (Mutex.judgeBias's verdict) is made
//     only while the word still holds the seizer's value.
//
// # Steps
//
// Each store a process makes, and what a SIGKILL right after it leaves:
//
//   - Lock, fast path: CAS 0 -> id. Killed after: the kernel marks the word
//     OWNER_DIED; the next locker gets ErrOwnerDead.
//   - Unlock: CAS id -> 0 (or a hand-off, below). Killed after: nothing to
//     do; a sleeper that was not woken finds the word changed after its
//     slice.
//   - Hand-off: CAS hand-off s -> s|granted, CAS word id -> handedOff, wake.
//     Killed between: the kernel marks the word OWNER_DIED; the grant says
//     nobody was inside, so the next taker gets nil. The grantee takes the
//     word (CAS handedOff -> its id) and then clears the grant; killed
//     between, the same. A grantee that died before taking: whoever sees
//     it dead clears the grant, then frees the word. One alive that has
//     not taken the word a millisecond (or two turns) after a waiter first
//     saw the grant (stopped, or its CPU taken away) loses it: that waiter
//     takes the word as one handed to nobody, and the grantee asks again.
//     The millisecond is counted over the waiter's lock calls that did
//     not get the lock, so that TryLocks and calls with tight deadlines
//     add up to it (TestStoppedGranteeShortCalls); so is the one of a
//     revoker's claim, below.
//   - Bias (BiasedMutex.Unlock): CAS bias (none) -> (us). Killed after: we
//     hold the word as a biased holder; the kernel marks it; the next taker
//     asks our entry, which says outside.
//   - Biased lock: entry = id|inCS, load bias; unlock: entry = id. Killed
//     inside: the next taker finds inCS and returns ErrOwnerDead.
//   - Revocation (bias_linux.go): CAS bias +revoker; the holder's ack, or
//     a membarrier and a wait for the holder's inCS to clear; CAS bias to
//     won; CAS word holder -> us (under a seizure); settle (clears the
//     bias). A revoker killed or stopped after its claim and before its
//     win holds up nobody: the holder takes its bias back once its ack has
//     stood 20 µs, and another waiter undoes a claim that has stood a
//     millisecond with the holder outside its critical section (a holder
//     that does not lock, idle or its BiasedMutex closed, does not take
//     its bias back). One killed after its win is seen dead and its
//     claim undone (the word still the holder's) or judged (it took the
//     word); one stopped after its win is the lock's next owner, waited
//     for as a stopped owner is.
//   - Take of a dead owner's id, and a revoker's take: CAS word id ->
//     seized, decide again, CAS seized -> our id (or back to the id).
//     Killed while seized: whoever finds the seizer dead CASes the word
//     back to the id, and the take starts over.
//   - Join: a dead predecessor's seizure undone, a verdict into the bias
//     word, grants and requests of the slot cleared, our entry. Each is a
//     single CAS or store; killed between, the slot is dead again and the
//     next joiner does the rest.
//
// TestTIDReuseBias, TestNamespaceMutex, TestRevokerKeepsOwnerDead,
// TestSlotReuseBetween, TestOtherRecordSlotReuse, TestCloseWhileHeld and
// TestSemaphoreIdentity force each reuse; TestRevokerDeath and the kill
// storms kill at every step; the TestStale*, TestDead*SlotReused,
// Test*TIDReuse, TestSettleWaitsForSeizure and TestWithdrawKeepsRepair
// tests stop processes at each step of a seizure, a revocation and a
// settlement (stepHook) and resume them after the ids and slots they
// decided on have changed hands.
//
// # Layout
//
// All integers little-endian. A Mutex record is MutexSize (2624) bytes at a
// data offset that is a multiple of 64:
//
//	offset size field
//	     0    4 futex word: bits 0-29 owner (0 free; the owner id, the TID
//	            of the owner process's robust thread, below 2^22-2;
//	            0x3fffffff not recoverable; 0x3ffffffe handed off; seized:
//	            bit 29, bits 22-28 the seizer's slot, bits 0-21 the owner
//	            id), bit 30 OWNER_DIED, bit 31 WAITERS (the kernel's format)
//	     4    4 hand-off: slot+1 of a starving waiter (0 none), bit 31 set
//	            once granted
//	     8    8 bias: bits 0-7 slot+1 of the holder, 8-15 slot+1 of a
//	            revoker, 16-17 verdict on a dead holder (1 it was outside
//	            a critical section, 2 inside), 18 the holder's ack of the
//	            revoker's claim, 19 the revoker's win, 20-63 epoch
//	    16   48 reserved, zero
//	    64  512 entries of slots 0-127, uint32 each: the owner id of the
//	            process that attached from that slot (0 none yet); bit 31:
//	            it is inside a critical section entered through the bias
//	   576 1024 gens of slots 0-127, uint64 each: that process's slot
//	            generation (shm.Slot.Gen); 0 none
//	  1600 1024 robust-list nodes of slots 0-127, 8 bytes each: a pointer in
//	            the address space of the process holding the slot;
//	            futex_offset of list i is -(1600+8i)
//
// A Semaphore record is SemaphoreSize (4736) bytes, 64-aligned:
//
//	offset size field
//	     0 2624 Mutex record guarding the fields below
//	  2624    8 capacity, int64 (> 0)
//	  2632    8 permits available, int64
//	  2640    4 release sequence, uint32 futex word: waiters sleep on it
//	  2644   44 reserved, zero
//	  2688 2048 per slot 0-127, 16 bytes each: permits held, int64, and the
//	            slot generation of the process holding them, uint64
//
// Whenever its mutex is free, available + sum(held) == capacity. A process
// that dies holding permits leaves them in its slot with its generation;
// they go back when an Acquire finds too few permits (it checks which
// holders are dead), when a waiter's sleep slice ends, and at every
// NewSemaphore. A process killed inside Acquire or Release leaves the
// mutex OWNER_DIED; the next caller rebuilds available from the live
// holders' counts.
//
// # Versions
//
// The records' layout is the segment tags' version: semaphore.Mutex/3 and
// semaphore.Semaphore/3. Version 2's bias word had no taking bit and its
// epoch began at bit 19: a revoker of one version and a holder of the
// other would each wait for the other for good. Version 1 named processes
// by thread id in the bias, hand-off and entry words, and had no
// generations. Types that embed records bump their own tags
// (ticketshm.Counter/5).
//
// # Mutex fairness
//
// Barging with turns, like sync.Mutex's normal and starvation modes: a
// busy lock stays with the process that runs, and a waiter lets it have a
// turn (SetTurn; 10µs by default, 1ms while CPUs are crowded) without
// touching the lock, then asks for it: a hand-off from the next Unlock of
// a plain lock, a revocation of a biased one, which a running holder
// answers within a microsecond. A process arriving at a random moment
// waits a fraction of a turn, and none waits without bound. No strict
// FIFO: it collapses when processes outnumber cores. wait_linux.go and
// mutex_linux.go ("Mutex fairness") have the details; `bench latency`
// measures what a waiting process feels (docs/10-measuring.md).
//
// # Biased locking
//
// A lock biased to process P keeps P's owner id in its futex word between
// critical sections, so to everyone else it is held. P enters a critical
// section by setting bit 31 of its slot's entry and then checking that the
// bias word is still the value P made it (P alone, same epoch); it leaves
// by clearing the bit. Both are plain stores. A process that wants the
// lock writes its slot into the bias word's revoker field, calls
// membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED), which makes every CPU
// running a thread of P execute a full barrier, and waits for P's bit to
// clear. Then P cannot enter (it would see the revoker) and is not inside:
// the revoker wins the bias word (the taking bit), moves the futex word to
// itself and clears the bias word. Until the win, P may take its bias
// back, and does once its answer has waited 20 µs; a P that does not
// lock (idle, or its BiasedMutex closed) never answers, and a waiter
// gives the claim up for it once it has stood 1 ms with P outside: a
// revoker stopped before its win holds up nobody for long.
// bias_linux.go has the argument. It moves the word under a seizure
// (below), if its claim still stands there, without asking the kernel
// whether P lives: whoever takes a dead P's word first judges P with a
// verdict in the bias word, under its own seizure, which voids the claim
// (Identity, above). When P answers, the revoker's side of a hand-over
// is a few CASes, without a system call.
//
// A Mutex on a biased lock treats it as hot while P's bit keeps changing
// (it lets P have a turn, and then revokes, like a hand-off), and revokes
// at once when P is idle or inside a long critical section. A running P
// answers the revoker's claim itself (an ack in the bias word), which
// spares the membarrier. If
// P is dead, the kernel has marked the word OWNER_DIED as for any owner
// (or a sleeper does, after a slice), and the next taker reads P's bit:
// it says whether P died inside (ErrOwnerDead) or between critical
// sections (the lock is free). A revoker that dies mid-way leaves its slot
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
// all of one PID namespace, and a process can attach at most 2048 records
// per slot index (the kernel's list limit). A process is one owner however
// many handles it opens on a segment (shm maps a segment once per
// process). A Mutex is closed by the segment's last Close in this
// process; that Close unlinks the nodes, gives up a bias, and abandons a
// lock still held (the next locker gets ErrOwnerDead). Calls racing it get
// shm.ErrClosed or finish as if before it, and never fault: the segment's
// range is retired, not unmapped.
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
// Two windows stay open, both needing a corrupt record or a dying
// process's straggler thread: a word holding a seized value whose slot is
// held by a live process that is not seizing (only a corrupt file writes
// one) is waited on as a live seizure; and a thread of a dying process
// that stores the process's id into a word after the kernel's robust walk
// at its exit, if that id is handed at once to a process that attaches
// the record, makes the word look held by that live process (the 10ms
// check cannot tell). Owner ids at or above 2^22-2 (pid_max raised past
// 4 million) are refused at attach.
//
// Robust means a dead owner is detected, not that the data is right: the
// code that gets ErrOwnerDead must repair or discard what the lock guards.
//
// The race detector does not see synchronisation through shared mappings;
// Mutex reports its lock/unlock edges to it in -race builds, so data guarded
// by a Mutex within one process is checked as with sync.Mutex.
package semaphore
