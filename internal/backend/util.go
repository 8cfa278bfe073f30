//go:build linux

package backend

import (
	"errors"
	"io/fs"
	"os"
)

func isNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }

func removeFile(path string) error { return os.Remove(path) }
