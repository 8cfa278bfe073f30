//go:build linux && cgo

package semaphore

import "github.com/shmkit/shmkit/internal/cyard/crobust"

const haveCgo = true

func initPthread(b []byte) error {
	m, err := crobust.At(b)
	if err != nil {
		return err
	}
	return m.Init()
}

func pthreadLockUnlock(b []byte, n int) error {
	m, err := crobust.At(b)
	if err != nil {
		return err
	}
	return m.LockUnlock(n)
}

func pthreadContend(b, ctr []byte, limit int64) (int64, error) {
	m, err := crobust.At(b)
	if err != nil {
		return 0, err
	}
	return m.Contend(ctr, limit)
}

func casContend(ctr []byte, limit int64) (int64, error) {
	return crobust.CASContend(ctr, limit)
}

func pthreadLock(b []byte) error {
	m, err := crobust.At(b)
	if err != nil {
		return err
	}
	return m.Lock()
}

// pthreadTakeover locks, expecting EOWNERDEAD, repairs and unlocks.
func pthreadTakeover(b []byte) error {
	m, err := crobust.At(b)
	if err != nil {
		return err
	}
	return m.Takeover()
}
