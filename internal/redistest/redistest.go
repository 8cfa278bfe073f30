//go:build linux

// Package redistest starts a real redis-server on a free loopback port,
// for the tests and for the bench when no -redis address is given. Like
// internal/resp, which it pings the server with, it does not import
// package net: the bench links it, and net would make every process of
// the bench pay for a dynamically linked cgo runtime.
package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/internal/resp"
	"github.com/shmkit/shmkit/process"
)

// ErrNoServer is returned when no redis-server binary is on PATH.
var ErrNoServer = errors.New("redistest: redis-server not found on PATH; install it: apt-get install redis-server")

// Server is a redis-server child process with its own directory.
type Server struct {
	Addr string // 127.0.0.1:port
	Dir  string // working directory: the append-only file lives here

	port    int
	durable bool
	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{}
}

// Start starts redis-server on a free port of 127.0.0.1, with dir as its
// working directory (created if need be). Durable servers keep an
// append-only file fsynced on every write (appendfsync always), so that
// Restart finds every acknowledged write; others keep nothing on disk.
func Start(dir string, durable bool) (*Server, error) {
	if _, err := exec.LookPath("redis-server"); err != nil {
		return nil, ErrNoServer
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	s := &Server{Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, port: port, durable: durable}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// freePort asks the kernel for a free port of 127.0.0.1: it binds a
// socket to port 0 and reads back the port it got. The port is free
// again once the socket is closed, for redis-server to bind; another
// program could take it meanwhile, as with any free-port probe.
func freePort() (int, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return 0, fmt.Errorf("redistest: %w", os.NewSyscallError("socket", err))
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		return 0, fmt.Errorf("redistest: %w", os.NewSyscallError("bind", err))
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		return 0, fmt.Errorf("redistest: %w", os.NewSyscallError("getsockname", err))
	}
	return sa.(*unix.SockaddrInet4).Port, nil
}

func (s *Server) start() error {
	args := []string{
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--dir", s.Dir, "--save", "", "--daemonize", "no",
		"--logfile", filepath.Join(s.Dir, "redis.log"),
		"--protected-mode", "yes",
	}
	if s.durable {
		args = append(args, "--appendonly", "yes", "--appendfsync", "always")
	} else {
		args = append(args, "--appendonly", "no")
	}
	cmd := exec.Command("redis-server", args...)
	// The server dies with whoever started it, even if that is killed:
	// Pdeathsig, from a thread that lives as long as the process.
	if err := process.StartCommand(cmd); err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.mu.Lock()
	s.cmd, s.done = cmd, done
	s.mu.Unlock()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-done:
			return fmt.Errorf("redistest: redis-server exited at start: %s", s.logTail())
		default:
		}
		if ping(s.Addr) {
			return nil
		}
		time.Sleep(5 * time.Millisecond)
	}
	s.Stop()
	return fmt.Errorf("redistest: redis-server on %s did not answer PING within 10s: %s", s.Addr, s.logTail())
}

// ping reports whether the server at addr answers PING with PONG.
func ping(addr string) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	dctx, dcancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer dcancel()
	c, err := resp.Dial(dctx, addr)
	if err != nil {
		return false
	}
	defer c.Close()
	r, err := c.Do(ctx, "PING")
	return err == nil && r.Kind == resp.SimpleString && r.Str == "PONG"
}

func (s *Server) logTail() string {
	b, _ := os.ReadFile(filepath.Join(s.Dir, "redis.log"))
	if len(b) > 600 {
		b = b[len(b)-600:]
	}
	return strings.TrimSpace(string(b))
}

// Kill stops the server with SIGKILL, as a crash would, and waits for it.
func (s *Server) Kill() {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-done
}

// Pid returns the server's process id, for tests that signal it (0 if
// it never started).
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

// Restart starts the server again on the same port and directory (a
// durable server replays its append-only file).
func (s *Server) Restart() error {
	s.Kill()
	return s.start()
}

// TearAOF cuts the last n bytes off a durable server's append-only file,
// as a crash in the middle of the server's last write to it leaves the
// file: a SIGKILL during write(2) ends the copy at a page boundary, and
// the rest of the server's buffer is lost. Call it between Kill and
// Restart. It cuts the file Redis 7 appends to, the last incr file in
// appendonlydir's manifest.
func (s *Server) TearAOF(n int64) error {
	dir := filepath.Join(s.Dir, "appendonlydir")
	manifest, err := os.ReadFile(filepath.Join(dir, "appendonly.aof.manifest"))
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	// Lines read "file appendonly.aof.1.incr.aof seq 1 type i"; the
	// last incr file is the one the server was writing.
	var name string
	for _, line := range strings.Split(string(manifest), "\n") {
		if f := strings.Fields(line); len(f) == 6 && f[0] == "file" && f[4] == "type" && f[5] == "i" {
			name = f[1]
		}
	}
	if name == "" {
		return fmt.Errorf("redistest: no incr file in %s's manifest", dir)
	}
	path := filepath.Join(dir, name)
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	if n <= 0 || n > fi.Size() {
		return fmt.Errorf("redistest: tear %d bytes off %s of %d bytes", n, path, fi.Size())
	}
	if err := os.Truncate(path, fi.Size()-n); err != nil {
		return fmt.Errorf("redistest: %w", err)
	}
	return nil
}

// Stop kills the server; its directory is the caller's to remove.
func (s *Server) Stop() { s.Kill() }
