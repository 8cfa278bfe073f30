//go:build linux && !cgo

package semaphore

import "errors"

const haveCgo = false

var errNoCgo = errors.New("built without cgo: no glibc comparison")

func initPthread([]byte) error                           { return nil }
func pthreadLockUnlock([]byte, int) error                { return errNoCgo }
func pthreadContend(_, _ []byte, _ int64) (int64, error) { return 0, errNoCgo }
func casContend([]byte, int64) (int64, error)            { return 0, errNoCgo }
func pthreadLock([]byte) error                           { return errNoCgo }
func pthreadTakeover([]byte) error                       { return errNoCgo }
