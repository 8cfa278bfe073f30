package semaphore

import "errors"

// Errors returned by this package, wrapped with the segment's path and
// detail (except ErrOwnerDead, see there); test them with errors.Is.
var (
	// ErrOwnerDead is returned by a lock call that acquired the Mutex after
	// its previous owner died holding it. The caller owns the mutex; the
	// data it protects may be half updated. Repair it, then call
	// Consistent; unlocking without Consistent makes the mutex unusable
	// (ErrNotRecoverable) for every process. Lock calls return it bare,
	// not wrapped: it reports a lock that was taken, and the process
	// that gets it usually just woke up, with cold caches, where
	// errors.Is on a wrapped error costs over a microsecond of the
	// takeover.
	ErrOwnerDead = errors.New("semaphore: previous owner died holding the mutex; repair the protected state and call Consistent")

	// ErrNotRecoverable is returned by every lock call once an owner that
	// got ErrOwnerDead unlocked without calling Consistent. Reinitialize
	// the protected state and the mutex (e.g. recreate the segment).
	ErrNotRecoverable = errors.New("semaphore: mutex not recoverable; an owner unlocked it without Consistent after an owner died")

	// ErrNotOwner is returned by Unlock and Consistent when this process
	// does not hold the mutex.
	ErrNotOwner = errors.New("semaphore: mutex not held by this process")

	// ErrCorrupt is returned when a record's bytes cannot be a Mutex or a
	// Semaphore: reserved bytes set, impossible counts. Recreate the
	// segment.
	ErrCorrupt = errors.New("semaphore: corrupt record")

	// ErrPlacement is returned when a record's offset is outside the
	// segment's data region or not a multiple of 64.
	ErrPlacement = errors.New("semaphore: bad record offset")

	// ErrInUse is returned when a record that a BiasedMutex uses is
	// attached again in the same process (by NewMutex or NewBiasedMutex),
	// or a BiasedMutex is locked twice. A BiasedMutex must be its record's
	// only user in its process; share the BiasedMutex (one goroutine at a
	// time) or use a Mutex.
	ErrInUse = errors.New("semaphore: record already in use by this process")

	// ErrCapacityMismatch is returned by OpenOrCreateSemaphore when the
	// existing Semaphore was made with another number of permits.
	ErrCapacityMismatch = errors.New("semaphore: semaphore capacity mismatch")

	// ErrHeld is returned by Reset on a mutex that is held, or free but
	// waiting for its next locker to repair what a dead owner left: a
	// reset would let that state be used unrepaired.
	ErrHeld = errors.New("semaphore: mutex held or awaiting repair; Reset only re-initialises a not-recoverable mutex")

	// ErrCapacity is returned by Semaphore.Acquire for more permits than
	// the semaphore has: they can never be had.
	ErrCapacity = errors.New("semaphore: more permits than the semaphore's capacity")

	// ErrTooMany is returned when a process attaches more mutexes than the
	// kernel's robust list can track (2048 per process slot).
	ErrTooMany = errors.New("semaphore: too many mutexes attached")
)
