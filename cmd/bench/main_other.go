//go:build !linux

package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "bench: shmkit runs on Linux only (futexes, robust lists, OFD locks)")
	os.Exit(1)
}
