//go:build !linux

// Command shmctl is Linux only, as shmkit is.
package main

import (
	"errors"
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "shmctl:", errors.ErrUnsupported, "(shmkit is Linux only)")
	os.Exit(2)
}
