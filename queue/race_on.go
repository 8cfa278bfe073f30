//go:build race

package queue

// raceEnabled: the race detector is on. Send then copies a message with
// copy, which it sees, not with fillCell's assembly, which it does not: a
// caller writing its message while Send reads it is reported (the third
// review found the detector blind to fillCell's reads).
const raceEnabled = true
