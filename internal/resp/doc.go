// Package resp is a small client of the Redis protocol (RESP2) over TCP,
// made of system calls (golang.org/x/sys/unix) and the Go runtime's
// poller: it does not import package net.
//
// That is its reason to exist. Built with cgo available (the default
// where gcc is installed), package net brings its cgo resolver, so any
// program that imports net, however deep, is linked dynamically against
// the C library and the cgo runtime; cmd/bench starts a process of
// itself per buyer, and that link cost each one 0.5 to 0.65 ms more, and
// go-redis (with crypto/tls and x509) about 0.4 ms more again. The bench
// reaches Redis through this package instead; users keep go-redis, through
// ticketshm/redisstore, and both run the same purchase protocol
// (internal/redisbuy).
//
// # Basics
//
//	c, err := resp.Dial(ctx, "127.0.0.1:6379")
//	r, err := c.Do(ctx, "INCR", "visits") // r.Kind == resp.Integer, r.Int
//	r, err = c.Do(ctx, "GET", "missing")  // r.Kind == resp.BulkString, r.Null
//	_, err = c.Do(ctx, "NOSUCH")          // a *resp.ServerError, Prefix() "ERR"
//	err = c.Close()
//
// A Conn is one connection, safe for concurrent use, one request (or one
// Pipeline) in flight at a time. Each call is bounded by its context:
// the deadline is the socket's deadline, the cancellation interrupts the
// wait. SetIOTimeout bounds calls besides, as go-redis's read and write
// timeouts do. The socket is close-on-exec: a child process does not
// inherit it.
//
// # Failures
//
// A failure that may have come after a request reached the server
// (a reset, the server closing the connection, a deadline, a reply that
// is not RESP) breaks the Conn for good: later calls return ErrBroken
// without sending anything. The Conn never dials again by itself,
// because whether a request that may have run can be sent again is the
// caller's to decide (ticketshm/redisstore's purchases can: each carries
// an id the server remembers). Server error replies are *ServerError and
// leave the Conn working; Close makes every call return ErrClosed (with
// ErrInterrupted for a call it interrupted, whose request may have run).
//
// # Caveats
//
// No DNS: Dial takes an IP literal ("10.0.0.5:6379", "[::1]:6379") or
// localhost, which is 127.0.0.1 then ::1. A resolver is precisely what
// this package exists to leave out; a program that needs host names has
// package net already, and can use go-redis.
//
// No TLS, no AUTH handshake, no RESP3, no pub/sub or MONITOR (replies the
// client did not ask for), no connection pool: one Conn is one
// connection. Send AUTH or SELECT with Do after Dial if the server wants
// them.
//
// Replies are read within bounds (Reader's MaxBulk, MaxArray, MaxDepth);
// memory grows with the bytes that arrive, not with the lengths a header
// announces. Linux only: elsewhere Dial returns errors.ErrUnsupported.
package resp
