package redisbuy

import (
	"errors"
	"fmt"
	"strings"
)

// failure is what a client error says about a purchase.
type failure struct {
	sent  bool // the request may have reached the server
	final bool // no retry can change it
	kind  error
}

func (f failure) err(key string, err error) error {
	if f.kind == nil {
		return fmt.Errorf("%s: redisstore: %w", key, err)
	}
	if f.kind == err {
		return fmt.Errorf("%s: %w", key, err)
	}
	return fmt.Errorf("%s: %w: %v", key, f.kind, err)
}

// classify sorts an error from a command that was about to be sent: was
// it sent, can a retry help, and which sentinel it is. The Client says
// what the error means for the request; the replies are the scripts' and
// the server's own codes.
func classify(c Client, err error) failure {
	f := lastAttempt(c, err)
	if c.Resends() {
		// An earlier attempt of the call may have run the purchase and
		// lost its reply, then the client's own retry found the server
		// gone (refused, loading): TestRetriedThenRefused. Saying
		// "nothing sent" then would drop a purchase that was made.
		f.sent = true
	}
	return f
}

// lastAttempt is classify for the one attempt that err describes.
func lastAttempt(c Client, err error) failure {
	var re *replyError
	if errors.As(err, &re) {
		return failure{sent: true, final: true} // the script ran: its reply is not one it sends
	}
	f, reply := c.Classify(err)
	switch f {
	case Interrupted:
		// Before or after the request went out, we cannot tell.
		return failure{sent: true, final: true, kind: err}
	case Replied:
		switch {
		case strings.HasPrefix(reply, "NOCOUNTER"):
			return failure{final: true, kind: ErrNoCounter}
		case strings.HasPrefix(reply, "NOTCOUNTER"), strings.HasPrefix(reply, "WRONGTYPE"):
			return failure{final: true, kind: ErrWrongType}
		case strings.HasPrefix(reply, "CORRUPT"):
			return failure{final: true, kind: ErrCorrupt}
		case strings.HasPrefix(reply, "NOAUTH"), strings.HasPrefix(reply, "WRONGPASS"), strings.HasPrefix(reply, "NOPERM"):
			return failure{final: true, kind: ErrAuth}
		case strings.HasPrefix(reply, "LOADING"), strings.HasPrefix(reply, "BUSY"), strings.HasPrefix(reply, "TRYAGAIN"),
			strings.HasPrefix(reply, "MASTERDOWN"), strings.HasPrefix(reply, "OOM"):
			// Refused before running: nothing changed; later it may run.
			return failure{kind: ErrUnavailable}
		}
		return failure{final: true} // another error reply: the script did not run
	case Closed:
		return failure{final: true, kind: ErrUnavailable}
	case DialFailed, NotSent:
		return failure{kind: ErrUnavailable}
	case Broken:
		return failure{sent: true, kind: ErrUnavailable}
	}
	return failure{sent: true, final: true}
}

// wrap turns a client error from a command that changes nothing into
// this package's sentinels.
func wrap(c Client, key string, err error) error {
	if err == nil {
		return nil
	}
	e := classify(c, err).err(key, err)
	if f, _ := c.Classify(err); f == DialFailed {
		e = fmt.Errorf("%w (is redis-server running?)", e)
	}
	return e
}
