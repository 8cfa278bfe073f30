package jsonfile

import "errors"

var (
	// ErrTorn is returned when the file holds no complete JSON value: a
	// reader raced a writer that had truncated it (UnlockedStore), or a
	// writer died mid-write.
	ErrTorn = errors.New("jsonfile: torn or empty db file")

	// ErrBroken is returned by UnlockedStore once the file has stayed torn
	// for brokenReads reads in a row over at least brokenAfter: two
	// unlocked writers interleaved and left it unparsable for good (such
	// as {"count": 958}}), where Python's json.load would raise on every
	// read. It does not wrap ErrTorn: retrying cannot help.
	ErrBroken = errors.New("jsonfile: db file stays unparsable: unlocked writers tore it for good")

	// ErrFormat is returned when the file is JSON but not {"count": N}
	// with N a non-negative integer.
	ErrFormat = errors.New(`jsonfile: db file is not {"count": N} with N a non-negative integer`)
)
