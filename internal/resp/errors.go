package resp

import (
	"errors"
	"io/fs"
	"strings"
)

// Errors returned by this package, wrapped with the server's address;
// test them with errors.Is. A failure of the kernel (connect, read,
// write) is wrapped as an *os.SyscallError around its errno, so
// errors.Is(err, syscall.ECONNREFUSED) works too.
var (
	// ErrClosed is returned by calls on a Conn after Close, and by a call
	// that Close interrupted. It wraps fs.ErrClosed.
	ErrClosed error = closedError{}

	// ErrBroken is returned by a call on a Conn that an earlier call
	// left broken (an I/O error, a reply that was not RESP, a call its
	// context interrupted): this call sent nothing. Dial again. The
	// error that broke the Conn is wrapped too, and Conn.Err returns it.
	ErrBroken = errors.New("resp: connection broken by an earlier failure (dial again)")

	// ErrInterrupted is wrapped, beside ErrClosed, by the error of a call
	// that Close interrupted: unlike a call that found the Conn closed
	// (ErrClosed alone: nothing sent), its request may have reached the
	// server.
	ErrInterrupted = errors.New("resp: call interrupted: its request may have reached the server")

	// ErrProtocol is returned when the server sent bytes that are not a
	// RESP2 reply, or a reply past the Reader's bounds. The Conn is
	// broken.
	ErrProtocol = errors.New("resp: protocol error")

	// ErrAddress is returned by Dial and CheckAddr for an address that
	// is not ip:port, [ipv6]:port or localhost:port. There are no DNS
	// lookups: give the server's IP address.
	ErrAddress = errors.New("resp: bad address")
)

type closedError struct{}

func (closedError) Error() string { return "resp: connection closed" }
func (closedError) Unwrap() error { return fs.ErrClosed }

// ServerError is an error reply: the server understood the request and
// refused it or failed to run it. The Conn stays usable.
type ServerError struct {
	Msg string // the reply as the server sent it, without "-" and CRLF: "WRONGTYPE Operation against a key ..."
}

func (e *ServerError) Error() string { return e.Msg }

// Prefix returns the error's code, its first word by Redis's convention:
// "ERR", "WRONGTYPE", "NOSCRIPT", "LOADING", ... A script's
// redis.error_reply("NOCOUNTER") is prefixed "NOCOUNTER".
func (e *ServerError) Prefix() string {
	code, _, _ := strings.Cut(e.Msg, " ")
	return code
}
