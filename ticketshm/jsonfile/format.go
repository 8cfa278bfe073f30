package jsonfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// count is a parsed db file: the count, and where its digits lie in the
// file, so a buy can overwrite them in place.
type count struct {
	n          int64
	start, end int // b[start:end] is the count's decimal digits
}

// parseCount reads {"count": N} and finds N's digits. The common spellings
// (the ones json.dump and this package write) are parsed by hand without
// allocating; anything else goes through encoding/json, for a precise error
// and for the count's place among other keys. A file that is not one JSON
// value is ErrTorn (a writer may be half way); JSON of the wrong shape is
// ErrFormat.
func parseCount(b []byte) (count, error) {
	if c, ok := parseFast(b); ok {
		return c, nil
	}
	// JSON's whitespace only: bytes.TrimSpace also takes \f, \v and
	// Unicode spaces, which encoding/json and Python's json.load refuse
	// around a value (FuzzParseCount found "{\"count\":2}\f" read as 2).
	const jsonSpace = " \t\r\n"
	lead := len(b) - len(bytes.TrimLeft(b, jsonSpace))
	trimmed := bytes.TrimRight(b[lead:], jsonSpace)
	if len(trimmed) == 0 || !json.Valid(trimmed) {
		return count{}, fmt.Errorf("%w: %q", ErrTorn, clip(b))
	}
	dec := json.NewDecoder(bytes.NewReader(trimmed))
	dec.UseNumber()
	if tok, _ := dec.Token(); tok != json.Delim('{') {
		return count{}, fmt.Errorf("%w: not a JSON object: %q", ErrFormat, clip(b))
	}
	var (
		raw   json.RawMessage
		c     count
		found bool
	)
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return count{}, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		if err := dec.Decode(&raw); err != nil {
			return count{}, fmt.Errorf("%w: %v", ErrFormat, err)
		}
		if key != "count" {
			continue
		}
		// The last "count" wins, as in Python's json.load and Go's
		// encoding/json.
		end := int(dec.InputOffset())
		c = count{start: lead + end - len(raw), end: lead + end}
		found = true
	}
	if !found {
		return count{}, fmt.Errorf("%w: no \"count\" in %q", ErrFormat, clip(b))
	}
	digits := b[c.start:c.end]
	n, err := strconv.ParseInt(string(digits), 10, 64)
	if err != nil || n < 0 || !isDigits(digits) {
		return count{}, fmt.Errorf("%w: count is %s", ErrFormat, digits)
	}
	c.n = n
	return c, nil
}

// parseFast accepts `{"count": N}` with optional spaces and a trailing
// newline, N a non-negative decimal.
func parseFast(b []byte) (count, bool) {
	const key = `"count"`
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return count{}, false
	}
	i = skipSpace(b, i+1)
	if !bytes.HasPrefix(b[i:], []byte(key)) {
		return count{}, false
	}
	i = skipSpace(b, i+len(key))
	if i >= len(b) || b[i] != ':' {
		return count{}, false
	}
	i = skipSpace(b, i+1)
	start := i
	var n int64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if n > (1<<63-1-9)/10 {
			return count{}, false
		}
		n = n*10 + int64(b[i]-'0')
	}
	if i == start || (b[start] == '0' && i-start > 1) {
		return count{}, false
	}
	c := count{n: n, start: start, end: i}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '}' {
		return count{}, false
	}
	return c, skipSpace(b, i+1) == len(b)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// isDigits reports whether b is a JSON integer without sign: digits, no
// leading zero (ParseInt alone would take "+5" and "05").
func isDigits(b []byte) bool {
	if len(b) == 0 || (b[0] == '0' && len(b) > 1) {
		return false
	}
	for _, d := range b {
		if d < '0' || d > '9' {
			return false
		}
	}
	return true
}

// appendCount formats the file as json.dump({"count": n}) does.
func appendCount(dst []byte, n int64) []byte {
	dst = append(dst, `{"count": `...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '}')
}

// appendPadded formats n right-aligned in width bytes, spaces before the
// digits: written over a count's digits, it leaves valid JSON of the same
// length ({"count": 10} becomes {"count":  9}). A decrement never needs
// more digits than the count it replaces.
func appendPadded(dst []byte, n int64, width int) []byte {
	var digits [20]byte
	d := strconv.AppendInt(digits[:0], n, 10)
	for range width - len(d) {
		dst = append(dst, ' ')
	}
	return append(dst, d...)
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
