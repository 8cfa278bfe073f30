//go:build linux

package resp_test

import (
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/shmkit/shmkit/internal/resp"
)

// BenchmarkRoundTrip: one request and its reply on one connection to a
// local redis-server, through resp and through go-redis (the baseline:
// what redisstore's users have). PING measures the client; EVALSHA, a
// small script with a key and arguments, is the shape of a purchase.
func BenchmarkRoundTrip(b *testing.B) {
	srv := benchServer(b)
	ctx := b.Context()
	c, err := resp.Dial(ctx, srv.Addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	rdb := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, PoolSize: 1})
	defer rdb.Close()
	sha, err := rdb.ScriptLoad(ctx, "return redis.call('INCRBY', KEYS[1], ARGV[1])").Result()
	if err != nil {
		b.Fatal(err)
	}
	b.Run("cmd=PING/client=resp", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Do(ctx, "PING"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cmd=PING/client=go-redis", func(b *testing.B) {
		for b.Loop() {
			if err := rdb.Ping(ctx).Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cmd=EVALSHA/client=resp", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Do(ctx, "EVALSHA", sha, "1", "n", "1"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cmd=EVALSHA/client=go-redis", func(b *testing.B) {
		for b.Loop() {
			if err := rdb.EvalSha(ctx, sha, []string{"n"}, "1").Err(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
