package resp

import (
	"strconv"
	"strings"
)

// AppendCommand appends a request, an array of bulk strings (the only
// form a server must accept), to dst and returns it.
func AppendCommand(dst []byte, args ...string) []byte {
	dst = appendHeader(dst, '*', int64(len(args)))
	for _, a := range args {
		dst = appendHeader(dst, '$', int64(len(a)))
		dst = append(dst, a...)
		dst = append(dst, '\r', '\n')
	}
	return dst
}

// AppendReply appends r as a server would send it, for tests and fake
// servers; a Reader reads it back equal. It panics on a Reply that has no
// RESP2 form: Kind 0, or a simple string or error holding CR or LF.
func AppendReply(dst []byte, r Reply) []byte {
	switch r.Kind {
	case SimpleString, Error:
		if strings.ContainsAny(r.Str, "\r\n") {
			panic("resp: a simple string or error reply holds CR or LF")
		}
		c := byte('+')
		if r.Kind == Error {
			c = '-'
		}
		dst = append(dst, c)
		dst = append(dst, r.Str...)
		return append(dst, '\r', '\n')
	case Integer:
		return appendHeader(dst, ':', r.Int)
	case BulkString:
		if r.Null {
			return appendHeader(dst, '$', -1)
		}
		dst = appendHeader(dst, '$', int64(len(r.Str)))
		dst = append(dst, r.Str...)
		return append(dst, '\r', '\n')
	case Array:
		if r.Null {
			return appendHeader(dst, '*', -1)
		}
		dst = appendHeader(dst, '*', int64(len(r.Elems)))
		for _, e := range r.Elems {
			dst = AppendReply(dst, e)
		}
		return dst
	}
	panic("resp: AppendReply of a Reply without a Kind")
}

func appendHeader(dst []byte, c byte, n int64) []byte {
	dst = append(dst, c)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, '\r', '\n')
}
