package queue

import "github.com/shmkit/shmkit/semaphore"

// Inspection is what Inspect finds in a queue: a look at a moving target
// while processes use it.
type Inspection struct {
	Capacity int                 `json:"capacity"`
	MaxSize  int                 `json:"max_size"`
	Len      int                 `json:"len"`      // messages between head and tail
	Head     int64               `json:"head"`     // positions: messages received so far (and dropped)
	Tail     int64               `json:"tail"`     // messages sent (reserved) so far
	Closed   bool                `json:"closed"`   // CloseSend was called
	Ready    int                 `json:"ready"`    // published cells, waiting for a receiver
	Attached []semaphore.Process `json:"attached"` // processes whose generation is in the slot areas, alive or not
	// Writing and Taking are cells a process is in the middle of: a
	// reserved cell not yet published, a message being taken. Those of
	// dead processes are settled by the next receiver that reaches them,
	// or by Repair. A reserved cell's process is the one whose lane
	// names it; Slot -1 when none does (its producer died, and its
	// slot's next process cleared its lanes).
	Writing []CellState `json:"writing"`
	Taking  []CellState `json:"taking"`
	// Impossible counts cells whose state the protocol never makes.
	Impossible int `json:"impossible"`
}

// CellState is a cell some process is working on.
type CellState struct {
	Position int64 `json:"position"`
	semaphore.Process
	Seized bool `json:"seized"` // a receiver is taking it over (or died doing so)
}
