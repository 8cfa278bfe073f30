package resp

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
)

// The Reader's bounds when its fields are zero.
const (
	// DefaultMaxBulk is Redis's own limit on a bulk string
	// (proto-max-bulk-len).
	DefaultMaxBulk = 512 << 20

	// DefaultMaxArray bounds the elements of one array: sixteen million,
	// far above any reply this module asks for, far below what would
	// let a header alone ask for gigabytes.
	DefaultMaxArray = 1 << 24

	// DefaultMaxDepth bounds arrays within arrays. Redis nests only
	// what a script returns; 32 levels is deeper than any of ours.
	DefaultMaxDepth = 32

	// maxLine bounds a simple string, an error or a header line.
	maxLine = 64 << 10

	// readBufSize is the buffer of a Reader: a bulk string that fits is
	// copied out of it once.
	readBufSize = 16 << 10

	// bulkChunk is the most a bulk string that does not fit the buffer
	// allocates before its bytes arrive: it grows as they do, so a
	// header that announces 512 MiB costs memory only once the server
	// sends them.
	bulkChunk = 64 << 10
)

// Reader reads RESP2 replies from a stream, within bounds. It never
// allocates much more than the bytes it has read (a length header alone
// reserves at most 64 KiB), and a malformed or oversized reply
// is an error wrapping ErrProtocol, never a panic. A Reader is not safe
// for concurrent use; set its fields before the first read. Make one with
// NewReader: the zero Reader has no stream.
type Reader struct {
	MaxBulk  int // longest bulk string; zero: DefaultMaxBulk
	MaxArray int // most elements of one array; zero: DefaultMaxArray
	MaxDepth int // most levels of arrays in arrays; zero: DefaultMaxDepth

	br *bufio.Reader
}

// NewReader returns a Reader of replies from r, with its own buffer: it
// may read past the reply it returns.
func NewReader(r io.Reader) *Reader {
	return &Reader{br: bufio.NewReaderSize(r, readBufSize)}
}

// ReadReply reads one reply. It returns io.EOF when the stream ends
// before the reply's first byte and io.ErrUnexpectedEOF when it ends
// within a reply; an error from the stream as it came; an error wrapping
// ErrProtocol for bytes that are not a RESP2 reply or break a bound
// (after which the stream's position is undefined). An error reply is a
// Reply of Kind Error, not an error.
func (r *Reader) ReadReply() (Reply, error) { return r.read(0) }

func (r *Reader) read(depth int) (Reply, error) {
	c, err := r.br.ReadByte()
	if err != nil {
		if depth > 0 {
			err = unexpected(err)
		}
		return Reply{}, err
	}
	line, err := r.line()
	if err != nil {
		return Reply{}, err
	}
	switch c {
	case '+':
		return Reply{Kind: SimpleString, Str: string(line)}, nil
	case '-':
		return Reply{Kind: Error, Str: string(line)}, nil
	case ':':
		n, ok := parseInt(line)
		if !ok {
			return Reply{}, fmt.Errorf("%w: integer %q", ErrProtocol, line)
		}
		return Reply{Kind: Integer, Int: n}, nil
	case '$':
		n, err := length(line, bound(r.MaxBulk, DefaultMaxBulk), "bulk string")
		if err != nil {
			return Reply{}, err
		}
		if n < 0 {
			return Reply{Kind: BulkString, Null: true}, nil
		}
		s, err := r.bulk(n)
		if err != nil {
			return Reply{}, err
		}
		return Reply{Kind: BulkString, Str: s}, nil
	case '*':
		n, err := length(line, bound(r.MaxArray, DefaultMaxArray), "array")
		if err != nil {
			return Reply{}, err
		}
		if n < 0 {
			return Reply{Kind: Array, Null: true}, nil
		}
		if depth >= bound(r.MaxDepth, DefaultMaxDepth) {
			return Reply{}, fmt.Errorf("%w: arrays nested deeper than %d", ErrProtocol, bound(r.MaxDepth, DefaultMaxDepth))
		}
		// Capacity grows with the elements that arrive, not with
		// what the header promises.
		elems := make([]Reply, 0, min(n, 16))
		for range n {
			e, err := r.read(depth + 1)
			if err != nil {
				return Reply{}, err
			}
			elems = append(elems, e)
		}
		return Reply{Kind: Array, Elems: elems}, nil
	}
	return Reply{}, fmt.Errorf("%w: reply type byte %q", ErrProtocol, c)
}

func bound(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// unexpected turns the end of the stream inside a reply into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// line reads the rest of a line, ended by CRLF, and returns it without
// the CRLF; the bytes are valid until the next read.
func (r *Reader) line() ([]byte, error) {
	b, err := r.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		long := slices.Clone(b)
		for errors.Is(err, bufio.ErrBufferFull) && len(long) <= maxLine {
			b, err = r.br.ReadSlice('\n')
			long = append(long, b...)
		}
		if len(long) > maxLine {
			return nil, fmt.Errorf("%w: a line longer than %d bytes", ErrProtocol, maxLine)
		}
		b = long
	}
	if err != nil {
		return nil, unexpected(err)
	}
	if len(b) < 2 || b[len(b)-2] != '\r' {
		return nil, fmt.Errorf("%w: a line ended by a bare LF", ErrProtocol)
	}
	b = b[:len(b)-2]
	if bytes.IndexByte(b, '\r') >= 0 {
		return nil, fmt.Errorf("%w: a CR inside a line", ErrProtocol)
	}
	return b, nil
}

// bulk reads a bulk string's n bytes and the CRLF after them.
func (r *Reader) bulk(n int) (string, error) {
	if n+2 <= r.br.Size() {
		b, err := r.br.Peek(n + 2)
		if err != nil {
			return "", unexpected(err)
		}
		if b[n] != '\r' || b[n+1] != '\n' {
			return "", fmt.Errorf("%w: bulk string of %d bytes not followed by CRLF", ErrProtocol, n)
		}
		s := string(b[:n])
		_, _ = r.br.Discard(n + 2) // peeked: cannot fail
		return s, nil
	}
	b := make([]byte, 0, min(n+2, bulkChunk))
	for len(b) < n+2 {
		if len(b) == cap(b) {
			b = slices.Grow(b, min(n+2-len(b), len(b))) // double, up to what is left
		}
		k, err := io.ReadFull(r.br, b[len(b):min(cap(b), n+2)]) // Grow may round up
		b = b[:len(b)+k]
		if err != nil {
			return "", unexpected(err)
		}
	}
	if b[n] != '\r' || b[n+1] != '\n' {
		return "", fmt.Errorf("%w: bulk string of %d bytes not followed by CRLF", ErrProtocol, n)
	}
	return string(b[:n]), nil
}

// length parses a bulk string's or an array's length header: -1 (null)
// or a count from 0 to max.
func length(line []byte, max int, what string) (int, error) {
	n, ok := parseInt(line)
	switch {
	case !ok || n < -1:
		return 0, fmt.Errorf("%w: %s length %q", ErrProtocol, what, line)
	case n > int64(max):
		return 0, fmt.Errorf("%w: %s of %d, above the bound of %d", ErrProtocol, what, n, max)
	}
	return int(n), nil
}

// parseInt parses a decimal integer as Redis writes one: an optional
// minus, no plus, no leading zeros, no "-0", within int64. Being strict
// makes every reply read back byte for byte by AppendReply.
func parseInt(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	digits := b
	if neg {
		digits = b[1:]
	}
	if len(digits) == 0 || len(digits) > 19 || digits[0] == '0' && (len(digits) > 1 || neg) {
		return 0, false
	}
	var n uint64
	for _, c := range digits {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + uint64(c-'0') // 19 digits cannot overflow a uint64
	}
	if neg {
		if n > 1<<63 {
			return 0, false
		}
		return int64(-n), true
	}
	if n > 1<<63-1 {
		return 0, false
	}
	return int64(n), true
}
