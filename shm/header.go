package shm

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"sync"
	"unicode/utf8"
)

// The header layout; doc.go has it as a table. Every multi-byte field is
// little-endian (the byte order of every platform shmkit runs on).
const (
	// HeaderSize is the size of the header at offset 0 of every segment.
	// The process-slot table follows it, then the data region, at
	// DataOffset.
	HeaderSize = 128

	// MaxSlots is the number of process slots of every segment: at most
	// this many processes have a segment open at once.
	MaxSlots = 128

	// SlotEntrySize is the size of one entry of the slot table.
	SlotEntrySize = 32

	// DataOffset is where the data region starts in the file: after the
	// header and the slot table, at a 64-byte (cache line) boundary.
	DataOffset = HeaderSize + MaxSlots*SlotEntrySize

	// Magic is the first 8 bytes of every segment file.
	Magic = "SHMKITSG"

	// Version is the header layout version this package writes and reads.
	// Version 1 had no slot table: process slots carried no generation
	// and no PID namespace.
	Version = 2

	// MaxTagLen is the longest type tag, in bytes.
	MaxTagLen = 64

	// MaxDataSize bounds the data size of a segment (1 TiB): a bigger
	// request is a bug, not a segment.
	MaxDataSize = 1 << 40

	offMagic      = 0
	offVersion    = 8
	offHeaderSize = 12
	offTotalSize  = 16
	offState      = 24
	offChecksum   = 28
	offTag        = 32
	offInits      = 96
	offSlots      = 104
	offReserved   = 108
)

var _ [DataOffset % 64]struct{} // the data region stays cache-line aligned

// State is the life-cycle word of a segment, at offset 24 of the header.
type State uint32

// The states of a segment. A file of zeros (fresh from fallocate) reads as
// StateEmpty; the initializer writes the header with StateInitializing, runs
// the caller's init and then stores StateReady.
const (
	StateEmpty        State = 0
	StateInitializing State = 1
	StateReady        State = 2
)

func (s State) String() string {
	switch s {
	case StateEmpty:
		return "empty"
	case StateInitializing:
		return "initializing"
	case StateReady:
		return "ready"
	}
	return fmt.Sprintf("State(%d)", uint32(s))
}

// castagnoli is CRC-32C's table, made at the first checksum rather than
// at init: making it takes 0.15-0.25 ms here (the SSE4.2 tables), which
// every process that imports shm paid at start, whether it opened a
// segment or not.
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// header is the decoded form of the first HeaderSize bytes of a segment.
type header struct {
	version   uint32
	totalSize uint64 // file size: DataOffset + data size
	state     State
	checksum  uint32
	tag       string
	inits     uint64 // how many times an initialization has begun
}

// dataSize is the size of the data region the header records.
func (h *header) dataSize() uint64 { return h.totalSize - DataOffset }

// checksum is CRC-32C over the fixed fields: bytes [0,24), [32,96) and
// [104,128). The state word, the checksum itself and the init counter
// change during a segment's life and are left out.
func checksum(b []byte) uint32 {
	t := castagnoli()
	c := crc32.Update(0, t, b[0:offState])
	c = crc32.Update(c, t, b[offTag:offInits])
	return crc32.Update(c, t, b[offSlots:HeaderSize])
}

// encode writes h into b[:HeaderSize], with a fresh checksum.
func (h *header) encode(b []byte) {
	clear(b[:HeaderSize])
	copy(b[offMagic:], Magic)
	binary.LittleEndian.PutUint32(b[offVersion:], Version)
	binary.LittleEndian.PutUint32(b[offHeaderSize:], HeaderSize)
	binary.LittleEndian.PutUint64(b[offTotalSize:], h.totalSize)
	binary.LittleEndian.PutUint32(b[offState:], uint32(h.state))
	copy(b[offTag:offInits], h.tag)
	binary.LittleEndian.PutUint64(b[offInits:], h.inits)
	binary.LittleEndian.PutUint32(b[offSlots:], MaxSlots)
	h.checksum = checksum(b)
	binary.LittleEndian.PutUint32(b[offChecksum:], h.checksum)
}

// isZero reports whether b holds only zero bytes: a header never written.
func isZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}

// parseHeader decodes and validates a header. It never panics, whatever b
// holds; each failure wraps one sentinel error. It does not compare the
// recorded size with the file: the caller knows the file.
func parseHeader(b []byte) (header, error) {
	var h header
	if len(b) < HeaderSize {
		if isZero(b) {
			return h, fmt.Errorf("%w: %d-byte file was never initialized", ErrNotReady, len(b))
		}
		if !bytes.HasPrefix(b, []byte(Magic)) && !bytes.HasPrefix([]byte(Magic), b) {
			return h, fmt.Errorf("%w: first bytes %q, want %q", ErrBadMagic, b[:min(len(b), len(Magic))], Magic)
		}
		return h, fmt.Errorf("%w: file is %d bytes, a header needs %d", ErrTruncated, len(b), HeaderSize)
	}
	b = b[:HeaderSize]
	if isZero(b) {
		return h, fmt.Errorf("%w: header is all zeros", ErrNotReady)
	}
	if string(b[offMagic:offMagic+len(Magic)]) != Magic {
		return h, fmt.Errorf("%w: first bytes %q, want %q", ErrBadMagic, b[:len(Magic)], Magic)
	}
	h.version = binary.LittleEndian.Uint32(b[offVersion:])
	if h.version != Version {
		hint := "the file is damaged"
		if h.version > Version {
			hint = "a newer shmkit wrote it; upgrade this program"
		}
		return h, fmt.Errorf("%w: version %d, this build reads %d (%s)", ErrVersion, h.version, Version, hint)
	}
	if hs := binary.LittleEndian.Uint32(b[offHeaderSize:]); hs != HeaderSize {
		return h, fmt.Errorf("%w: header size %d, want %d", ErrCorrupt, hs, HeaderSize)
	}
	h.checksum = binary.LittleEndian.Uint32(b[offChecksum:])
	if want := checksum(b); h.checksum != want {
		return h, fmt.Errorf("%w: checksum %#08x, computed %#08x", ErrCorrupt, h.checksum, want)
	}
	if n := binary.LittleEndian.Uint32(b[offSlots:]); n != MaxSlots {
		return h, fmt.Errorf("%w: %d process slots, want %d", ErrCorrupt, n, MaxSlots)
	}
	h.totalSize = binary.LittleEndian.Uint64(b[offTotalSize:])
	if h.totalSize <= DataOffset || h.totalSize > DataOffset+MaxDataSize {
		return h, fmt.Errorf("%w: recorded size %d is impossible", ErrCorrupt, h.totalSize)
	}
	h.state = State(binary.LittleEndian.Uint32(b[offState:]))
	if h.state != StateInitializing && h.state != StateReady {
		return h, fmt.Errorf("%w: state %v", ErrCorrupt, h.state)
	}
	tag := b[offTag:offInits]
	n := bytes.IndexByte(tag, 0)
	if n < 0 {
		n = len(tag)
	}
	if !isZero(tag[n:]) || !validTag(string(tag[:n])) {
		return h, fmt.Errorf("%w: type tag %q is not a NUL-padded UTF-8 string", ErrCorrupt, tag)
	}
	h.tag = string(tag[:n])
	h.inits = binary.LittleEndian.Uint64(b[offInits:])
	if !isZero(b[offReserved:HeaderSize]) {
		return h, fmt.Errorf("%w: reserved bytes are not zero", ErrCorrupt)
	}
	return h, nil
}

func validTag(tag string) bool {
	return tag != "" && len(tag) <= MaxTagLen && utf8.ValidString(tag) && bytes.IndexByte([]byte(tag), 0) < 0
}

func checkTag(tag string) error {
	if !validTag(tag) {
		return fmt.Errorf("%w: %q (want 1-%d bytes of UTF-8 without NUL, e.g. \"myapp.Tickets/1\")", ErrInvalidTag, tag, MaxTagLen)
	}
	return nil
}

func checkSize(size int) error {
	if size <= 0 || size > MaxDataSize {
		return fmt.Errorf("%w: %d bytes (want 1 to %d)", ErrInvalidSize, size, MaxDataSize)
	}
	return nil
}
