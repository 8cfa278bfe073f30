// Command plain does nothing: what starting a Go program costs by itself
// (bench spawn -exec; lesson 1).
package main

func main() {}
