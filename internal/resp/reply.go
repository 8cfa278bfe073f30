package resp

import (
	"fmt"
	"strconv"
)

// Kind is the type of a reply, as its first byte says.
type Kind uint8

// The RESP2 reply types.
const (
	SimpleString Kind = iota + 1 // +OK
	Error                        // -ERR message: a *ServerError
	Integer                      // :42
	BulkString                   // $5 hello, or $-1, the null bulk string
	Array                        // *2 of replies, or *-1, the null array
)

func (k Kind) String() string {
	switch k {
	case SimpleString:
		return "simple string"
	case Error:
		return "error"
	case Integer:
		return "integer"
	case BulkString:
		return "bulk string"
	case Array:
		return "array"
	}
	return "Kind(" + strconv.Itoa(int(k)) + ")"
}

// Reply is one reply of the server. Which fields mean something depends
// on Kind: Str for SimpleString, Error and BulkString; Int for Integer;
// Elems for Array; Null for BulkString and Array ("$-1", "*-1": a missing
// value, not an empty one). The zero Reply is no reply (Kind 0).
type Reply struct {
	Kind  Kind
	Str   string
	Int   int64
	Elems []Reply
	Null  bool
}

// Err returns the reply as a *ServerError if it is an error reply, else
// nil. Do returns it for a top-level error; Pipeline and nested arrays
// leave it to the caller.
func (r Reply) Err() error {
	if r.Kind != Error {
		return nil
	}
	return &ServerError{Msg: r.Str}
}

// String renders the reply for messages and tests: "OK", "(error) ERR x",
// "(integer) 3", "\"bulk\"", "(nil)", "[1 \"a\" [...]]".
func (r Reply) String() string {
	switch r.Kind {
	case SimpleString:
		return r.Str
	case Error:
		return "(error) " + r.Str
	case Integer:
		return "(integer) " + strconv.FormatInt(r.Int, 10)
	case BulkString:
		if r.Null {
			return "(nil)"
		}
		return strconv.Quote(r.Str)
	case Array:
		if r.Null {
			return "(nil array)"
		}
		b := []byte{'['}
		for i, e := range r.Elems {
			if i > 0 {
				b = append(b, ' ')
			}
			b = append(b, e.String()...)
		}
		return string(append(b, ']'))
	}
	return fmt.Sprintf("(no reply: kind %d)", r.Kind)
}
