// Command withredis does nothing but link the Redis client the bench
// binary linked until it reached Redis through internal/resp: what its
// package initializers (and TLS's, which it imports) add to a Go
// program's start. bench spawn -exec; lesson 1.
package main

import _ "github.com/redis/go-redis/v9"

func main() {}
