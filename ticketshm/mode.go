package ticketshm

import "fmt"

// Tag is the shm type tag of a Counter segment; its suffix is the layout
// version.
const Tag = "ticketshm.Counter/5"

// MaxTickets bounds a Counter: one byte of owner ledger per ticket.
const MaxTickets = 1 << 32

// Mode is how a Counter serialises buyers.
type Mode uint32

const (
	// Locked: read, check, decrement and write back under a robust
	// semaphore.Mutex, the course notes' lesson done right.
	Locked Mode = 1
	// LockFree: one compare-and-swap on the remaining count.
	LockFree Mode = 2
)

func (m Mode) String() string {
	switch m {
	case Locked:
		return "locked"
	case LockFree:
		return "lock-free"
	}
	return fmt.Sprintf("Mode(%d)", uint32(m))
}

// MarshalText is the mode's String, so JSON says "locked" or "lock-free".
func (m Mode) MarshalText() ([]byte, error) { return []byte(m.String()), nil }

// UnmarshalText reads what MarshalText writes.
func (m *Mode) UnmarshalText(b []byte) error {
	switch string(b) {
	case "locked":
		*m = Locked
	case "lock-free":
		*m = LockFree
	default:
		return fmt.Errorf("ticketshm: unknown mode %q", b)
	}
	return nil
}

// Audit is a consistency check of a Counter.
type Audit struct {
	Total     int64   `json:"total"`
	Remaining int64   `json:"remaining"`
	Sold      int64   `json:"sold"`      // tickets with an owner in the ledger
	Lost      int64   `json:"lost"`      // tickets taken from the count with no owner
	Oversold  int64   `json:"oversold"`  // owners recorded for tickets the count never gave out
	PerSlot   []int64 `json:"per_slot"`  // tickets sold by process slot
	InFlight  int64   `json:"in_flight"` // lock-free buys of live processes between CAS and ledger (counted in Lost too)

	// Sales is what the process slots counted as they sold (Locked
	// only): equal to Sold unless tickets were sold twice.
	Sales int64 `json:"sales"`
	// DoubleSold is Sales - Sold (Locked): sales of tickets that another
	// sale had sold already, which mutual exclusion forbids.
	DoubleSold int64 `json:"double_sold"`
}

// OK reports whether sold + remaining == total with nothing lost,
// oversold or sold twice.
func (a Audit) OK() bool {
	return a.Lost == 0 && a.Oversold == 0 && a.DoubleSold == 0 && a.Sold+a.Remaining == a.Total
}
