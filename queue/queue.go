package queue

import "github.com/shmkit/shmkit/shm"

// Tag is the shm type tag of a queue segment; its suffix is the layout
// version.
const Tag = "queue.Queue/2"

// MaxProcs is how many processes can use one queue at once: each holds
// one of the segment's process slots.
const MaxProcs = shm.MaxSlots

// Bounds of a queue's shape.
const (
	MaxCapacity = 1 << 24 // cells
	MaxMessage  = 1 << 24 // bytes in one message
)
