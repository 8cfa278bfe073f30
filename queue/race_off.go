//go:build !race

package queue

// raceEnabled: the race detector is on (race_on.go).
const raceEnabled = false
