// Command bench will compare ticket sales across shmkit's backends. It is
// not built yet: it says so and exits non-zero.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench: not built yet; see the open cmd/bench issue. Meanwhile: go test -race ./...")
	os.Exit(1)
}
