package redisbuy

import (
	"crypto/sha1"
	"encoding/hex"
	"testing"
)

// TestScriptDigests: each script's digest is its source's SHA-1. A
// script edited without its digest would still run (EVALSHA's NOSCRIPT
// falls back to EVAL) but send its whole source every time.
func TestScriptDigests(t *testing.T) {
	for name, s := range map[string]script{"buy": buyScript, "init": initScript} {
		sum := sha1.Sum([]byte(s.src))
		if got := hex.EncodeToString(sum[:]); got != s.sha {
			t.Errorf("%s script: digest %s written, its source's is %s", name, s.sha, got)
		}
	}
}
