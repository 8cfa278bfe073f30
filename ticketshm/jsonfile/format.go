package jsonfile

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
)

// parseCount reads {"count": N}. The common spellings (the ones json.dump
// and this package write) are parsed by hand without allocating; anything
// else goes through encoding/json, for a precise error.
func parseCount(b []byte) (int64, error) {
	if n, ok := parseFast(b); ok {
		return n, nil
	}
	trimmed := bytes.TrimSpace(b)
	if len(trimmed) == 0 || !json.Valid(trimmed) {
		return 0, fmt.Errorf("%w: %q", ErrTorn, clip(b))
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &doc); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrFormat, err)
	}
	raw, ok := doc["count"]
	if !ok {
		return 0, fmt.Errorf("%w: no \"count\" in %q", ErrFormat, clip(b))
	}
	n, err := strconv.ParseInt(string(raw), 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%w: count is %s", ErrFormat, raw)
	}
	return n, nil
}

// parseFast accepts `{"count": N}` with optional spaces and a trailing
// newline, N a non-negative decimal.
func parseFast(b []byte) (int64, bool) {
	const key = `"count"`
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if !bytes.HasPrefix(b[i:], []byte(key)) {
		return 0, false
	}
	i = skipSpace(b, i+len(key))
	if i >= len(b) || b[i] != ':' {
		return 0, false
	}
	i = skipSpace(b, i+1)
	start := i
	var n int64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if n > (1<<63-1-9)/10 {
			return 0, false
		}
		n = n*10 + int64(b[i]-'0')
	}
	if i == start || (b[start] == '0' && i-start > 1) {
		return 0, false
	}
	i = skipSpace(b, i)
	if i >= len(b) || b[i] != '}' {
		return 0, false
	}
	return n, skipSpace(b, i+1) == len(b)
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// appendCount formats the file as json.dump({"count": n}) does.
func appendCount(dst []byte, n int64) []byte {
	dst = append(dst, `{"count": `...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '}')
}

func clip(b []byte) []byte {
	if len(b) > 64 {
		return b[:64]
	}
	return b
}
