package shm

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Dir is the directory that holds segments given by a bare name. It is a
// tmpfs on Linux, so a segment is memory that happens to have a file name.
const Dir = "/dev/shm"

// Prefix is put in front of a bare name, so that shmkit's files in Dir are
// easy to find (List) and cannot collide with other programs' segments.
const Prefix = "shmkit."

// maxNameLen keeps a bare name well inside NAME_MAX (255) with the prefix.
const maxNameLen = 200

// Path resolves a segment name to the path of its file. A bare name such as
// "tickets" means /dev/shm/shmkit.tickets; a name containing a slash is a path
// used as given, so a segment can live on disk. A name with a NUL byte or a
// ".." component is refused with ErrInvalidName.
func Path(name string) (string, error) {
	switch {
	case name == "":
		return "", fmt.Errorf("%w: empty name", ErrInvalidName)
	case strings.IndexByte(name, 0) >= 0:
		return "", fmt.Errorf("%w: %q holds a NUL byte", ErrInvalidName, name)
	}
	if !strings.Contains(name, "/") {
		if name == "." || name == ".." || len(name) > maxNameLen {
			return "", fmt.Errorf("%w: %q (a bare name is 1-%d bytes, not . or ..)", ErrInvalidName, name, maxNameLen)
		}
		return filepath.Join(Dir, Prefix+name), nil
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q has a .. component; give the path without it", ErrInvalidName, name)
		}
	}
	if strings.HasSuffix(name, "/") {
		return "", fmt.Errorf("%w: %q names a directory", ErrInvalidName, name)
	}
	return filepath.Clean(name), nil
}
