//go:build linux

package resp

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/ctxlock"
)

// Conn is one connection to a Redis server. It is safe for concurrent
// use by goroutines of one process: calls take turns, one request (or
// pipeline) in flight at a time, so replies never cross. A Conn that
// failed stays broken (see ErrBroken): it never dials again behind its
// caller's back, since only the caller knows whether a request that may
// have reached the server can be sent again. Make a Conn with Dial; do
// not copy one.
type Conn struct {
	addr string

	// f is the socket, nonblocking, on the Go runtime's poller (os.NewFile
	// registers a nonblocking descriptor): a call waiting for its reply
	// parks its goroutine rather than an OS thread, and deadlines are the
	// poller's timers, as they are for package net's connections.
	f *os.File

	mu       ctxlock.Mutex // held from a request's first byte to its reply's last
	rd       *Reader       // guarded by mu
	wbuf     []byte        // guarded by mu
	deadline time.Time     // guarded by mu: the deadline f has now
	stale    bool          // guarded by mu: a cancellation moved f's deadline since

	fail    atomic.Pointer[error] // the failure that broke the Conn; nil while it works
	closed  atomic.Bool
	timeout atomic.Int64 // SetIOTimeout's, in nanoseconds
}

// past is a deadline already gone: setting it wakes the I/O in progress.
var past = time.Unix(1, 0)

// Dial connects to the server at addr: "ip:port", "[ipv6]:port" or
// "localhost:port" (127.0.0.1, then ::1). There are no DNS lookups (see
// the package doc); any other host name is an error wrapping ErrAddress.
// ctx bounds the connect: its deadline, and its cancellation, stop it. A
// refused or unreachable server is an error wrapping the errno
// (errors.Is(err, syscall.ECONNREFUSED)). The socket is close-on-exec and
// has Nagle's algorithm off.
func Dial(ctx context.Context, addr string) (*Conn, error) {
	aps, err := resolve(addr)
	if err != nil {
		return nil, err
	}
	var first error
	for _, ap := range aps {
		c, err := dial(ctx, addr, ap)
		if err == nil {
			return c, nil
		}
		if first == nil {
			first = err
		}
		if ctx.Err() != nil {
			break
		}
	}
	return nil, first
}

func dial(ctx context.Context, addr string, ap netip.AddrPort) (*Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("resp: dial %s: %w", addr, err)
	}
	family, sa := sockaddr(ap)
	fd, err := unix.Socket(family, unix.SOCK_STREAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, unix.IPPROTO_TCP)
	if err != nil {
		return nil, fmt.Errorf("resp: dial %s: %w", addr, os.NewSyscallError("socket", err))
	}
	// A request is one write and its caller waits for the reply:
	// Nagle's algorithm could only hold it back (net turns it off too).
	if err := unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("resp: dial %s: %w", addr, os.NewSyscallError("setsockopt", err))
	}
	cerr := unix.Connect(fd, sa)
	f := os.NewFile(uintptr(fd), addr) // from here on f owns fd
	switch cerr {
	case nil: // a loopback connect may complete at once
	case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
		if err := waitConnected(ctx, f); err != nil {
			f.Close()
			return nil, fmt.Errorf("resp: dial %s: %w", addr, err)
		}
	default:
		f.Close()
		return nil, fmt.Errorf("resp: dial %s: %w", addr, os.NewSyscallError("connect", cerr))
	}
	c := &Conn{addr: addr, f: f, stale: true} // the first call sets the deadlines, whatever the connect left
	c.rd = NewReader(f)
	return c, nil
}

func sockaddr(ap netip.AddrPort) (int, unix.Sockaddr) {
	ip := ap.Addr()
	if ip.Is4() {
		return unix.AF_INET, &unix.SockaddrInet4{Port: int(ap.Port()), Addr: ip.As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: ip.As16()}
	if z := ip.Zone(); z != "" {
		var id uint64
		for _, c := range z { // resolve checked it is a number
			id = id*10 + uint64(c-'0')
		}
		sa.ZoneId = uint32(id)
	}
	return unix.AF_INET6, sa
}

// waitConnected waits for a nonblocking connect to finish, as package
// net does: until the socket is writable, then SO_ERROR says how it went.
func waitConnected(ctx context.Context, f *os.File) error {
	rc, err := f.SyscallConn()
	if err != nil {
		return err
	}
	if d, ok := ctx.Deadline(); ok {
		if err := f.SetWriteDeadline(d); err != nil {
			return err
		}
	}
	stop := interruptOn(ctx, f)
	var serr error
	err = rc.Write(func(fd uintptr) bool {
		n, err := unix.GetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_ERROR)
		if err != nil {
			serr = os.NewSyscallError("getsockopt", err)
			return true
		}
		switch e := syscall.Errno(n); e {
		case 0:
			// No error yet: connected, or not writable yet (the
			// first call comes before any wait).
			if _, err := unix.Getpeername(int(fd)); err != unix.ENOTCONN {
				if err != nil {
					serr = os.NewSyscallError("getpeername", err)
				}
				return true
			}
			return false
		case unix.EINPROGRESS, unix.EALREADY, unix.EINTR:
			return false
		default:
			serr = os.NewSyscallError("connect", e)
			return true
		}
	})
	interrupted := stop()
	if err != nil || interrupted && serr == nil {
		// Even a connect that completed as ctx ended is given up: the
		// cancellation has moved the socket's deadlines into the past.
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return fmt.Errorf("connect: %w", ctxErr(ctx))
		}
		return fmt.Errorf("connect: %w", err)
	}
	if serr == nil {
		return f.SetWriteDeadline(time.Time{})
	}
	return serr
}

// ctxErr is ctx's error once its deadline or cancellation interrupted a
// wait, and DeadlineExceeded when the poller's timer for ctx's deadline
// fired a moment before ctx's own.
func ctxErr(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return context.DeadlineExceeded
}

// interruptOn makes ctx's cancellation interrupt the I/O in progress on
// f: a deadline in the past wakes it. stop ends that and reports whether
// it happened; once stop returns, no deadline will be set any more. With
// a ctx that cannot be cancelled it costs nothing.
func interruptOn(ctx context.Context, f *os.File) (stop func() bool) {
	if ctx.Done() == nil {
		return func() bool { return false }
	}
	done := make(chan struct{})
	stopFunc := context.AfterFunc(ctx, func() {
		f.SetDeadline(past) // fails only once f is closed, which wakes it anyway
		close(done)
	})
	return func() bool {
		if stopFunc() {
			return false
		}
		<-done
		return true
	}
}

// Addr returns the address the Conn was dialed with.
func (c *Conn) Addr() string { return c.addr }

// SetIOTimeout bounds each later call's I/O to d besides its context's
// deadline (whichever comes first): a server that stops answering makes
// the call fail after d with an error wrapping os.ErrDeadlineExceeded
// (not a context error: the caller's context is still alive), and the
// Conn broken. Zero or negative: the context alone bounds a call.
func (c *Conn) SetIOTimeout(d time.Duration) { c.timeout.Store(int64(d)) }

// Err returns nil while the Conn works; else an error wrapping ErrClosed,
// or the failure that broke it. It may be stale by the time it returns: a
// call in flight may break the Conn.
func (c *Conn) Err() error {
	if c.closed.Load() {
		return fmt.Errorf("%w: %s", ErrClosed, c.addr)
	}
	if p := c.fail.Load(); p != nil {
		return *p
	}
	return nil
}

// Do sends one command (args: its name and arguments) and returns the
// server's reply. An error reply is returned both as the Reply and as a
// *ServerError, and leaves the Conn working.
//
// Other failures say whether the request may have reached the server.
// Nothing was sent when the error wraps ErrClosed (Close came first),
// ErrBroken (an earlier call broke the Conn), or ctx's error from before
// the request went out (ctx was done, or ended while this call waited
// for another goroutine's): the Conn is unchanged. Every other failure
// may have come after the request was sent, and breaks the Conn: a
// syscall error (*os.SyscallError: errors.Is(err, syscall.ECONNRESET)),
// io.ErrUnexpectedEOF (the server closed the connection), ctx's error
// (its deadline or cancellation interrupted the call), os.ErrDeadlineExceeded
// (SetIOTimeout's timeout), ErrProtocol; or ErrClosed with
// ErrInterrupted when Close interrupted the call.
func (c *Conn) Do(ctx context.Context, args ...string) (Reply, error) {
	if len(args) == 0 {
		panic("resp: Do without a command")
	}
	if err := c.begin(ctx); err != nil {
		return Reply{}, err
	}
	defer c.mu.Unlock()
	c.wbuf = AppendCommand(c.wbuf[:0], args...)
	var one [1]Reply
	if err := c.exchange(ctx, one[:]); err != nil {
		return Reply{}, err
	}
	return one[0], one[0].Err()
}

// Pipeline sends the commands at once and returns their replies in
// order: one round trip for all. An error reply is one of the replies
// (Kind Error; see Reply.Err), not an error, and does not stop the
// others. Failures are Do's, for the pipeline as a whole: when one may
// have come after the requests went out, any of them may have run.
func (c *Conn) Pipeline(ctx context.Context, cmds ...[]string) ([]Reply, error) {
	for _, args := range cmds {
		if len(args) == 0 {
			panic("resp: Pipeline with an empty command")
		}
	}
	if err := c.begin(ctx); err != nil {
		return nil, err
	}
	defer c.mu.Unlock()
	c.wbuf = c.wbuf[:0]
	for _, args := range cmds {
		c.wbuf = AppendCommand(c.wbuf, args...)
	}
	replies := make([]Reply, len(cmds))
	if err := c.exchange(ctx, replies); err != nil {
		return nil, err
	}
	return replies, nil
}

// begin takes the Conn for a call. On failure nothing was sent and the
// Conn is not held.
func (c *Conn) begin(ctx context.Context) error {
	if c.closed.Load() {
		return fmt.Errorf("%w: %s", ErrClosed, c.addr)
	}
	if err := c.mu.Lock(ctx); err != nil {
		return fmt.Errorf("resp: %s: %w", c.addr, err)
	}
	var err error
	switch p := c.fail.Load(); {
	case c.closed.Load():
		err = fmt.Errorf("%w: %s", ErrClosed, c.addr)
	case p != nil:
		err = fmt.Errorf("%w: %w", ErrBroken, *p)
	case ctx.Err() != nil:
		err = fmt.Errorf("resp: %s: %w", c.addr, ctx.Err())
	}
	if err != nil {
		c.mu.Unlock()
	}
	return err
}

// exchange writes c.wbuf and reads len(replies) replies into replies,
// within ctx's deadline and the I/O timeout, interrupted by ctx's
// cancellation. On failure the Conn is broken.
func (c *Conn) exchange(ctx context.Context, replies []Reply) error {
	ctxDeadline, hasDeadline := ctx.Deadline()
	d := ctxDeadline
	if t := time.Duration(c.timeout.Load()); t > 0 {
		if until := time.Now().Add(t); !hasDeadline || until.Before(d) {
			d = until
		}
	}
	if c.stale || !d.Equal(c.deadline) {
		if err := c.f.SetDeadline(d); err != nil {
			return c.broke(ctx, "set deadline", err)
		}
		c.deadline, c.stale = d, false
	}
	stop := interruptOn(ctx, c.f)
	op := "write"
	_, err := c.f.Write(c.wbuf)
	if cap(c.wbuf) > bulkChunk {
		c.wbuf = nil // a large request's buffer is not kept
	}
	for i := 0; err == nil && i < len(replies); i++ {
		op = "read"
		replies[i], err = c.rd.ReadReply()
	}
	if stop() {
		c.stale = true // f's deadline is in the past now
	}
	if err != nil {
		return c.broke(ctx, op, err)
	}
	return nil
}

// broke records the failure err of an operation as the one that broke
// the Conn, and returns it in the words of Do's doc.
func (c *Conn) broke(ctx context.Context, op string, err error) error {
	if c.closed.Load() {
		// ErrInterrupted too: ErrClosed alone says nothing was sent,
		// and a caller that retries (redisbuy) must know it may have been.
		return fmt.Errorf("%w: %s: %s %w", ErrClosed, c.addr, op, ErrInterrupted)
	}
	var pe *fs.PathError
	switch {
	case errors.Is(err, ErrProtocol):
		err = fmt.Errorf("%w (from %s)", err, c.addr)
	case ctx.Err() != nil:
		err = fmt.Errorf("resp: %s: %s interrupted: %w", c.addr, op, ctx.Err())
	case errors.Is(err, os.ErrDeadlineExceeded):
		if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
			err = fmt.Errorf("resp: %s: %s interrupted: %w", c.addr, op, context.DeadlineExceeded)
		} else {
			err = fmt.Errorf("resp: %s: %s: no reply within %v: %w", c.addr, op, time.Duration(c.timeout.Load()), os.ErrDeadlineExceeded)
		}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		err = fmt.Errorf("resp: %s: %s: the server closed the connection: %w", c.addr, op, io.ErrUnexpectedEOF)
	case errors.As(err, &pe):
		err = fmt.Errorf("resp: %s: %w", c.addr, os.NewSyscallError(op, pe.Err))
	default:
		err = fmt.Errorf("resp: %s: %s: %w", c.addr, op, err)
	}
	c.fail.CompareAndSwap(nil, &err)
	return err
}

// Close closes the connection. A call in flight is interrupted and
// returns an error wrapping ErrClosed and ErrInterrupted; later calls,
// and a second Close, return ErrClosed.
func (c *Conn) Close() error {
	if c.closed.Swap(true) {
		return fmt.Errorf("%w: %s", ErrClosed, c.addr)
	}
	if err := c.f.Close(); err != nil {
		return fmt.Errorf("resp: %s: %w", c.addr, err)
	}
	return nil
}
