package redisbuy

import "context"

// Client is a connection to a Redis server as the protocol needs one:
// the commands it sends, and what a failure means. Replies come as
// go-redis gives them: int64 for an integer, string for a simple or bulk
// string, nil for a null, []any for an array. An error reply is returned
// as an error that Classify calls Replied. A Client must be safe for
// concurrent use.
type Client interface {
	// EvalSha runs a script the server has cached, by its SHA-1 in
	// hex; a server without it replies NOSCRIPT.
	EvalSha(ctx context.Context, sha1 string, keys []string, args ...string) (any, error)
	// Eval runs a script by its source (and caches it on the server).
	Eval(ctx context.Context, script string, keys []string, args ...string) (any, error)
	// ScriptLoad caches a script on the server.
	ScriptLoad(ctx context.Context, script string) error
	// HMGet returns the fields' values, nil for a missing one.
	HMGet(ctx context.Context, key string, fields ...string) ([]any, error)
	// Exists returns 1 if key exists, 0 if not.
	Exists(ctx context.Context, key string) (int64, error)
	// HGetAll returns the hash at key; empty if there is none.
	HGetAll(ctx context.Context, key string) (map[string]string, error)
	// HDel removes fields of the hash at key.
	HDel(ctx context.Context, key string, fields ...string) error

	// Classify says what err, returned by one of the methods above,
	// means for the request that failed, and for Replied, the error
	// reply's text as the server sent it ("NOSCRIPT No matching ...").
	Classify(err error) (f Failure, reply string)

	// Resends reports whether the client may send one call's request
	// more than once by itself, as go-redis does on a new connection
	// after a broken one (unless its MaxRetries is -1). An error is then
	// the last attempt's: Classify can say that attempt was not sent,
	// or not run, while an earlier one ran.
	Resends() bool
}

// Failure is what an error means for the request that failed: whether it
// may have reached the server, and whether trying again may help.
type Failure int

const (
	// Unknown: the request may have reached the server, and nothing
	// says a retry would help.
	Unknown Failure = iota

	// Interrupted: the call's context ended during it, before or after
	// the request went out; no one can tell which.
	Interrupted

	// Replied: the server answered with an error reply.
	Replied

	// Closed: the client was closed by its owner; nothing was sent, and
	// nothing will be.
	Closed

	// DialFailed: no connection could be made (refused, unreachable, a
	// connect that timed out): nothing was sent.
	DialFailed

	// NotSent: nothing was sent for another reason (no connection free
	// in a pool): later it may be.
	NotSent

	// Broken: the connection broke during the call (a reset, the server
	// gone, an I/O timeout): the request may have been sent.
	Broken
)
