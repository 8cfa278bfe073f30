package jsonfile

import "errors"

var (
	// ErrTorn is returned when the file holds no complete JSON value: a
	// reader raced a writer that had truncated it (UnlockedStore), or a
	// writer died mid-write.
	ErrTorn = errors.New("jsonfile: torn or empty db file")

	// ErrFormat is returned when the file is JSON but not {"count": N}
	// with N a non-negative integer.
	ErrFormat = errors.New(`jsonfile: db file is not {"count": N} with N a non-negative integer`)
)
