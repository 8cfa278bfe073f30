//go:build linux

package semaphore

// biasSupported: biasing relies on x86's ordering (stores in order with
// stores, loads in order with loads; see bias_linux.go).
const biasSupported = true
