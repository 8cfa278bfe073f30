// Package outside holds one test: a program in a module of its own, as a
// user writes it, that imports shmkit through a replace directive and uses
// its public API (process, a shared ticketshm.Counter, semaphore.Mutex.Do).
// It fails if any of it is internal, or does not work from outside.
package outside
