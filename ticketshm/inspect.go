package ticketshm

import "github.com/shmkit/shmkit/semaphore"

// Inspection is what Inspect finds in a Counter segment: a look at a
// moving target while buyers run, exact on a quiet counter.
type Inspection struct {
	Mode      Mode  `json:"mode"`
	Total     int64 `json:"total"`
	Remaining int64 `json:"remaining"`
	// Audit is what Counter.Audit would report now: dead buyers' logs
	// settled first, on the look's private copy.
	Audit Audit `json:"audit"`
	// Unsettled is how many tickets dead lock-free buyers' logs hold
	// that are not in the ledger yet: the next Open, Audit or Repair
	// writes them there (Audit above counts them as settled).
	Unsettled int64                `json:"unsettled"`
	Slots     []SlotState          `json:"slots"` // every process slot the counter's areas or ledger name
	Lock      semaphore.MutexState `json:"lock"`  // the counter's lock
}

// SlotState is one process slot's part in a Counter.
type SlotState struct {
	semaphore.Process
	Sold    int64 `json:"sold"`     // tickets the ledger (and live logs) give this slot, settled as Audit would
	Sales   int64 `json:"sales"`    // Locked: the sales the slot counted as it made them
	Logged  int64 `json:"logged"`   // LockFree: buys committed in its log, not yet in the ledger
	DeadLog bool  `json:"dead_log"` // its log is a dead process's, not yet settled
}

// Repaired is what Repair did.
type Repaired struct {
	Settled int64      // tickets Repair's settlement moved from dead buyers' logs into the ledger (0 if this process had the counter open: its open settled then)
	Before  Inspection // the counter before
	After   Inspection // and after
}
