//go:build race

package process

// raceEnabled: this binary, and so every child it starts, runs under the
// race detector.
const raceEnabled = true
