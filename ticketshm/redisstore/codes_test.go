//go:build linux

package redisstore_test

import (
	"errors"
	"testing"

	"github.com/shmkit/shmkit/ticketshm/redisstore"
)

// TestScriptErrorCodes: the scripts' own refusals reach the caller as
// their sentinels. Redis 7 prefixes "ERR " to a script's error reply
// that is a single word, so the scripts' codes carry a message after
// them. Before, a counter deleted under a Store, or a hash that is not a
// counter, came out of Buy and Init as a bare "ERR NOCOUNTER" or
// "ERR NOTCOUNTER", neither ErrNoCounter nor ErrWrongType.
func TestScriptErrorCodes(t *testing.T) {
	srv := server(t, false)
	rdb := client(t, srv.Addr)
	ctx := t.Context()
	if err := redisstore.Init(ctx, rdb, "c", 10, false); err != nil {
		t.Fatal(err)
	}
	st, err := redisstore.New(ctx, rdb, "c", "b")
	if err != nil {
		t.Fatal(err)
	}
	rdb.Del(ctx, "c")
	if _, err := st.Buy(ctx); !errors.Is(err, redisstore.ErrNoCounter) || errors.Is(err, redisstore.ErrUncertain) {
		t.Errorf("Buy on a deleted counter: %v, want ErrNoCounter, certain", err)
	}
	rdb.HSet(ctx, "c", "x", "1")
	if _, err := st.Buy(ctx); !errors.Is(err, redisstore.ErrWrongType) || errors.Is(err, redisstore.ErrUncertain) {
		t.Errorf("Buy on a hash that is not a counter: %v, want ErrWrongType, certain", err)
	}
	if err := redisstore.Init(ctx, rdb, "c", 10, false); !errors.Is(err, redisstore.ErrWrongType) {
		t.Errorf("Init on a hash that is not a counter: %v, want ErrWrongType", err)
	}
}
