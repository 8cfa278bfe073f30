// Package semaphore will hold a robust inter-process Mutex and a counting
// Semaphore living inside a shm segment: a Mutex that survives a SIGKILLed
// owner with POSIX robust semantics (ErrOwnerDead, Consistent,
// ErrNotRecoverable), and a Semaphore that gives back the permits of a dead
// holder. Not built yet: see ../DESIGN notes in the project's issues.
package semaphore
