//go:build linux

package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/semaphore"
	"github.com/shmkit/shmkit/shm"
	"github.com/shmkit/shmkit/ticketshm"
)

// segment is what the tool shows of one segment file. The type views come
// from the packages (semaphore.InspectMutex, ticketshm.Inspect...): the
// tool holds no layout of its own.
type segment struct {
	Name     string    `json:"name"`             // the bare name for /dev/shm/shmkit.*, else the path
	Path     string    `json:"path"`             // the file
	Type     string    `json:"type"`             // the header's type tag
	Size     int64     `json:"size"`             // file size, bytes
	State    string    `json:"state"`            // ready, initializing, empty, corrupt
	Reason   string    `json:"reason,omitempty"` // why corrupt, or why the contents could not be read
	Version  uint32    `json:"version"`          // header layout version
	Inits    uint64    `json:"inits"`            // initializations begun
	Modified time.Time `json:"modified"`         // the file's mtime (stores through a mapping do not change it)
	Uid      uint32    `json:"uid"`              // the file's owner
	Live     int       `json:"live"`             // process slots held by live processes
	Dead     int       `json:"dead"`             // slots of processes that died without closing the segment
	Pids     []int     `json:"pids"`             // live processes of this PID namespace that have it open or mapped
	// Foreign is how many live processes of other PID namespaces (other
	// containers) hold slots: their pids mean nothing here.
	Foreign int `json:"foreign"`

	Slots     []slotView                `json:"slots,omitempty"` // stat: every slot ever claimed
	Mutex     *semaphore.MutexState     `json:"mutex,omitempty"`
	Semaphore *semaphore.SemaphoreState `json:"semaphore,omitempty"`
	Counter   *ticketshm.Inspection     `json:"counter,omitempty"`
	Queue     *queue.Inspection         `json:"queue,omitempty"`
}

type slotView struct {
	Index   int       `json:"index"`
	Gen     uint64    `json:"gen"`
	Pid     int       `json:"pid"`
	Alive   bool      `json:"alive"`
	Closed  bool      `json:"closed"`  // its process closed the segment (not alive, not closed: it died)
	Foreign bool      `json:"foreign"` // its process is of another PID namespace: the pid is that namespace's
	Claimed time.Time `json:"claimed"`
}

// noView is the reason given for a type this build has no view of.
const noView = "no view of this type in this build of shmctl"

// errNotSegment: the file does not start with shm.Magic.
var errNotSegment = errors.New("not a shmkit segment")

// displayName is the name a user would give for path.
func displayName(path string) string {
	if ours(path) {
		return strings.TrimPrefix(filepath.Base(path), shm.Prefix)
	}
	return path
}

// ours reports whether path is named as a segment of a bare name,
// /dev/shm/shmkit.*.
func ours(path string) bool {
	return filepath.Dir(path) == shm.Dir && strings.HasPrefix(filepath.Base(path), shm.Prefix)
}

// look reads what a segment file is, without changing it: its header
// (shm.Stat), who has it open, and with deep its slots and contents
// through a private mapping (shm.OpenPrivate). The error is for a file
// that cannot be looked at, or is no segment; a corrupt segment is a
// segment whose State says so.
func look(name string, deep bool) (*segment, error) {
	path, err := shm.Path(name)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: fmt.Errorf("%w: not a regular file", errNotSegment)}
	}
	info, err := shm.Stat(path)
	switch {
	case errors.Is(err, shm.ErrBadMagic):
		return nil, &fs.PathError{Op: "stat", Path: path, Err: errNotSegment}
	case errors.Is(err, fs.ErrPermission), errors.Is(err, fs.ErrNotExist):
		return nil, err
	case err != nil && !errors.Is(err, shm.ErrCorrupt) && !errors.Is(err, shm.ErrTruncated) &&
		!errors.Is(err, shm.ErrVersion) && !errors.Is(err, shm.ErrNotReady):
		// The file could not be read (EMFILE, EIO...): that says
		// nothing of the segment, which is not corrupt for it.
		return nil, err
	case errors.Is(err, shm.ErrTruncated) && st.Size < shm.HeaderSize && !ours(path):
		// Shorter than a header: shmkit writes its header whole, so a
		// few bytes that happen to start like its magic are not its.
		return nil, &fs.PathError{Op: "stat", Path: path, Err: fmt.Errorf("%w: %d bytes, shorter than a header, and not named %s*", errNotSegment, st.Size, shm.Prefix)}
	case errors.Is(err, shm.ErrNotReady) && !ours(path):
		// Zeros, or nothing, or a header being written: what
		// OpenOrCreate makes before its segment is ready, and also any
		// other program's empty file or fresh shared memory (Python's
		// shared_memory). Only the name could say it is ours: outside
		// /dev/shm/shmkit.*, a segment is listed once it is ready.
		return nil, &fs.PathError{Op: "stat", Path: path, Err: fmt.Errorf("%w: not ready, and not named %s*", errNotSegment, shm.Prefix)}
	}
	s := &segment{
		Name: displayName(path), Path: path, Type: info.Tag, Size: int64(st.Size),
		Version: info.Version, Inits: info.Inits, Uid: st.Uid,
		Modified: time.Unix(st.Mtim.Unix()),
		State:    info.State.String(),
	}
	switch {
	case errors.Is(err, shm.ErrNotReady):
		// Never initialized, or being initialized now: not corrupt.
		// OpenOrCreate makes it, or redoes it.
		s.Reason = reason(err)
	case err != nil:
		s.State, s.Reason = "corrupt", reason(err)
	}
	s.Pids = append([]int{}, holders(uint64(st.Dev), st.Ino)...)
	if s.State != "ready" {
		return s, nil
	}
	seg, err := shm.OpenPrivate(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, err // removed since its header was read: missing, not failing
	}
	if err != nil {
		s.Reason = reason(err)
		return s, nil
	}
	defer seg.Close()
	slots, err := seg.Slots()
	if err != nil {
		s.Reason = reason(err)
		return s, nil
	}
	ns, _ := shm.PIDNamespace() // 0 if it cannot be told: then nobody is foreign
	for _, sl := range slots {
		foreign := ns != 0 && sl.PidNS != 0 && sl.PidNS != ns
		switch {
		case sl.Alive && foreign:
			s.Live++
			s.Foreign++
		case sl.Alive:
			s.Live++
			if !slices.Contains(s.Pids, sl.Pid) {
				s.Pids = append(s.Pids, sl.Pid) // perhaps in another PID namespace: /proc does not show it
			}
		case !sl.Closed:
			s.Dead++
		}
		if deep {
			s.Slots = append(s.Slots, slotView{Index: sl.Index, Gen: sl.Gen, Pid: sl.Pid, Alive: sl.Alive, Closed: sl.Closed, Foreign: foreign, Claimed: sl.Claimed})
		}
	}
	slices.Sort(s.Pids)
	if !deep {
		return s, nil
	}
	switch s.Type {
	case semaphore.MutexTag:
		m, err := semaphore.InspectMutex(seg, 0)
		s.Mutex, s.Reason = &m, reason(err)
	case semaphore.SemaphoreTag:
		m, err := semaphore.InspectSemaphore(seg, 0)
		s.Semaphore, s.Reason = &m, reason(err)
	case ticketshm.Tag:
		c, err := ticketshm.Inspect(seg)
		s.Counter, s.Reason = &c, reason(err)
	case queue.Tag:
		q, err := queue.Inspect(seg)
		s.Queue, s.Reason = &q, reason(err)
	default:
		s.Reason = noView
	}
	if s.Reason != "" && s.Reason != noView {
		s.Mutex, s.Semaphore, s.Counter, s.Queue = nil, nil, nil, nil
	}
	return s, nil
}

// reason is err's text without the path the tool shows anyway.
func reason(err error) string {
	if err == nil {
		return ""
	}
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Err != nil {
		err = pe.Err
	}
	return err.Error()
}

// holders are the live processes, other than this one, that have the file
// (dev, ino) open or mapped, as far as /proc lets this user see. /proc is
// read once per command (procIndex); rm reads it again right before it
// decides.
func holders(dev, ino uint64) []int {
	if procIndex == nil {
		procIndex = readProcs()
	}
	return slices.Clone(procIndex[fileID{dev, ino}])
}

type fileID struct{ dev, ino uint64 }

var procIndex map[fileID][]int

// readProcs maps every file that a process (but this one) has open or
// mapped to the processes.
func readProcs() map[fileID][]int {
	index := map[fileID][]int{}
	procs, _ := os.ReadDir("/proc")
	self := os.Getpid()
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil || pid == self {
			continue
		}
		files := map[fileID]bool{}
		mapped(pid, files)
		opened(pid, files)
		for f := range files {
			index[f] = append(index[f], pid)
		}
	}
	return index
}

// mapped adds the files of /proc/PID/maps (shared mappings) to files.
func mapped(pid int, files map[fileID]bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/maps", pid))
	if err != nil {
		return
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) < 5 || f[4] == "0" || !strings.HasSuffix(f[1], "s") {
			continue
		}
		var major, minor uint32
		ino, err := strconv.ParseUint(f[4], 10, 64)
		if _, serr := fmt.Sscanf(f[3], "%x:%x", &major, &minor); serr != nil || err != nil {
			continue
		}
		files[fileID{unix.Mkdev(major, minor), ino}] = true
	}
}

// opened adds the files of PID's descriptors to files.
func opened(pid int, files map[fileID]bool) {
	dir := fmt.Sprintf("/proc/%d/fd", pid)
	fds, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, fd := range fds {
		var st unix.Stat_t
		if unix.Stat(filepath.Join(dir, fd.Name()), &st) == nil && st.Mode&unix.S_IFMT == unix.S_IFREG {
			files[fileID{uint64(st.Dev), st.Ino}] = true
		}
	}
}
