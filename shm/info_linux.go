//go:build linux

package shm

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"time"

	"golang.org/x/sys/unix"
)

// Info describes a segment file as its header and the file system see it.
type Info struct {
	Path     string    // the file
	FileSize int64     // bytes, as the file system reports
	Version  uint32    // header layout version
	Tag      string    // type tag
	State    State     // life-cycle state
	Size     int       // data bytes the header records
	Inits    uint64    // initializations begun
	Uid      uint32    // the file's owner
	ModTime  time.Time // the file's last modification (its size or header: tmpfs does not see stores through a mapping)
	Err      error     // why the header is invalid; nil for a valid segment
}

// Stat reads a segment's header without mapping it, for tools and
// debugging. It opens the file read-only, does not wait for an initializer,
// and reports a malformed header in both its error and Info.Err (the Info
// then holds what could be read). Unlike Open, it looks at files of other
// users too (read permission is enough): it is how a tool finds them.
func Stat(name string) (Info, error) {
	path, err := Path(name)
	if err != nil {
		return Info{Path: name, Err: err}, err
	}
	info := stat(path)
	return info, info.Err
}

func stat(path string) Info {
	info := Info{Path: path}
	fail := func(err error) Info {
		info.Err = &fs.PathError{Op: "stat", Path: path, Err: err}
		return info
	}
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC|unix.O_NONBLOCK, 0)
	if errors.Is(err, unix.ELOOP) {
		return fail(ErrNotRegular)
	}
	if err != nil {
		return fail(err)
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return fail(os.NewSyscallError("fstat", err))
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fail(fmt.Errorf("%w: file type %s", ErrNotRegular, fileType(st.Mode)))
	}
	info.FileSize, info.Uid, info.ModTime = st.Size, st.Uid, time.Unix(st.Mtim.Unix())
	buf, h, now, err := readParsed(f, info.FileSize)
	if buf == nil {
		return fail(err)
	}
	info.FileSize = now
	if len(buf) >= HeaderSize {
		// Show what the header says even when it fails validation.
		info.Version = binary.LittleEndian.Uint32(buf[offVersion:])
		info.State = State(binary.LittleEndian.Uint32(buf[offState:]))
	}
	if err != nil {
		return fail(err)
	}
	info.Tag, info.Inits = h.tag, h.inits
	info.Size = int(h.dataSize())
	switch {
	case h.state != StateReady:
		// Being made (or its maker died): the file grows to its size
		// after its header is written (initialize).
	case uint64(info.FileSize) < h.totalSize:
		return fail(ErrTruncated)
	case uint64(info.FileSize) > h.totalSize:
		return fail(ErrCorrupt)
	}
	return info
}

// List describes every segment with a bare name, that is every file
// /dev/shm/shmkit.*, sorted by path. A malformed one is listed with its Err.
func List() ([]Info, error) {
	paths, err := filepath.Glob(filepath.Join(Dir, Prefix+"*"))
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	infos := make([]Info, 0, len(paths))
	for _, p := range paths {
		infos = append(infos, stat(p))
	}
	return infos, nil
}
