package redisbuy

import (
	"context"
	"fmt"
	"strconv"
	"strings"
)

// parseCount parses a count as the server-side script does: a whole
// number from 0 to MaxTotal in canonical decimal.
func parseCount(s string) (int64, bool) {
	if s == "" || len(s) > 16 || (s[0] == '0' && len(s) > 1) {
		return 0, false
	}
	for i := range len(s) {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil && n <= MaxTotal
}

// Audit is a consistency check of a counter.
type Audit struct {
	Total, Remaining, Sold int64
	PerBuyer               map[string]int64
}

// OK reports whether sold + remaining == total.
func (a Audit) OK() bool { return a.Sold+a.Remaining == a.Total && a.Remaining >= 0 }

// AuditCounter reads the whole counter at key in one round trip (HGETALL
// is atomic) and adds up its ledger.
func AuditCounter(ctx context.Context, c Client, key string) (Audit, error) {
	m, err := c.HGetAll(ctx, key)
	if err != nil {
		return Audit{}, wrap(c, key, err)
	}
	if len(m) == 0 {
		return Audit{}, fmt.Errorf("%s: %w", key, ErrNoCounter)
	}
	a := Audit{PerBuyer: map[string]int64{}}
	var haveTotal, haveRemaining bool
	for f, v := range m {
		switch {
		case f == "total", f == "remaining", strings.HasPrefix(f, "sold:"):
			n, ok := parseCount(v)
			if !ok {
				return a, fmt.Errorf("%s: %w: field %s is %q", key, ErrCorrupt, f, v)
			}
			switch f {
			case "total":
				a.Total, haveTotal = n, true
			case "remaining":
				a.Remaining, haveRemaining = n, true
			default:
				a.PerBuyer[strings.TrimPrefix(f, "sold:")] = n
				a.Sold += n
			}
		case strings.HasPrefix(f, "last:"):
			// A Store's last purchase, for its retries.
		default:
			return a, fmt.Errorf("%s: %w: unknown field %s", key, ErrWrongType, f)
		}
	}
	if !haveTotal || !haveRemaining {
		return a, fmt.Errorf("%s: %w: a hash without total and remaining", key, ErrWrongType)
	}
	if a.Remaining > a.Total {
		return a, fmt.Errorf("%s: %w: remaining %d above total %d", key, ErrCorrupt, a.Remaining, a.Total)
	}
	return a, nil
}
