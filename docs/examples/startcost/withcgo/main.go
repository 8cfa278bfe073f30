// Command withcgo does nothing but call one C function: what linking C
// adds to a Go program's start (the dynamic loader, the C library's
// start-up, threads made by pthread_create). bench spawn -exec; lesson 1.
package main

// static int nothing(void) { return 0; }
import "C"

func main() { C.nothing() }
