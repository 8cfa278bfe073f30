// Package forkexec will be Python's multiprocessing.Process for Go: children
// that are the program re-executed with a registered entry name, with
// start, join, is_alive, terminate, kill, exit codes and daemon children.
// Not built yet.
package forkexec
