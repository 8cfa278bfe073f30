package semaphore

import "fmt"

// Process is a process a record names, by its slot in the segment.
type Process struct {
	Slot  int  `json:"slot"`  // process slot index
	Pid   int  `json:"pid"`   // its pid in its own PID namespace; 0 when no longer known (its slot went to another process)
	Alive bool `json:"alive"` // it still holds the slot it had when the record named it
}

func (p Process) String() string {
	switch {
	case p.Pid == 0:
		return fmt.Sprintf("slot %d (dead)", p.Slot)
	case p.Alive:
		return fmt.Sprintf("pid %d (slot %d)", p.Pid, p.Slot)
	}
	return fmt.Sprintf("pid %d (slot %d, dead)", p.Pid, p.Slot)
}

// MutexState is what InspectMutex finds in a Mutex record. It is a look
// at a moving target: with processes using the lock, it may be stale as
// soon as it is returned, and its fields may come from different moments.
type MutexState struct {
	// State is one word for the whole: "free", "held", "held by a dead
	// owner", "free, owner died" (the next locker gets ErrOwnerDead),
	// "handed off" (granted to a waiter that has not yet taken it),
	// "being taken over" (a locker is settling a dead owner's word) or
	// "not recoverable".
	State string `json:"state"`
	// Consistency is "consistent", "owner died" (the next locker gets
	// ErrOwnerDead and repairs) or "not recoverable" (every locker gets
	// ErrNotRecoverable until Reset).
	Consistency string   `json:"consistency"`
	Word        uint32   `json:"word"`            // the futex word, raw
	OwnerID     uint32   `json:"owner_id"`        // the owner id (thread id) the word holds, 0 none
	Owner       *Process `json:"owner,omitempty"` // the process with that id, nil if no live process that attached the record has it
	Waiters     bool     `json:"waiters"`         // someone may sleep on the word
	// BiasedTo is the process the lock is biased to (a BiasedMutex that
	// keeps the lock between critical sections), nil if none; InCS tells
	// whether that process is inside a critical section now.
	BiasedTo *Process  `json:"biased_to,omitempty"`
	InCS     bool      `json:"in_cs"`
	Revoker  *Process  `json:"revoker,omitempty"`  // a process revoking the bias, nil if none
	HandOff  *Process  `json:"hand_off,omitempty"` // a starving waiter a hand-off is pending for, nil if none
	Granted  bool      `json:"granted"`            // the hand-off was granted
	Attached []Process `json:"attached"`
}

// Held reports whether the lock is taken, by a live process or a dead one.
func (s MutexState) Held() bool {
	return s.State == "held" || s.State == "held by a dead owner" || s.State == "handed off" || s.State == "being taken over"
}

// Holder is a process holding permits of a Semaphore.
type Holder struct {
	Process
	Permits int64 `json:"permits"`
}

// SemaphoreState is what InspectSemaphore finds in a Semaphore record; a
// look at a moving target, as MutexState is.
type SemaphoreState struct {
	Capacity  int64      `json:"capacity"`
	Available int64      `json:"available"`
	Holders   []Holder   `json:"holders"` // slots that hold permits: live ones, and dead ones the next Acquire gives back
	Mutex     MutexState `json:"mutex"`   // the record's own mutex, which guards the counts
	// Balanced: Available plus every holder's permits is Capacity. It
	// holds whenever the mutex is free; a look while it is held may
	// catch an update half made.
	Balanced bool `json:"balanced"`
}
