//go:build linux

package cyard

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strconv"
	"strings"
	"sync"

	"github.com/shmkit/shmkit/process"
)

// Cmd is one run of a yard command, read line by line. A Cmd is for one
// goroutine.
type Cmd struct {
	name   string
	cmd    *exec.Cmd
	out    *bufio.Scanner
	stderr syncBuffer
	once   sync.Once
	err    error
}

// Start starts the yard program (the path Build returned) with args. It
// dies with this process however this process dies (process.StartCommand),
// and with ctx. Read its lines with Line; end with Wait.
func Start(ctx context.Context, yard string, args ...string) (*Cmd, error) {
	c := &Cmd{name: "yard " + strings.Join(args, " ")}
	c.cmd = exec.CommandContext(ctx, yard, args...)
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	c.cmd.Stderr = &c.stderr
	if err := process.StartCommand(c.cmd); err != nil {
		return nil, fmt.Errorf("%s: %w", c.name, err)
	}
	c.out = bufio.NewScanner(out)
	c.out.Buffer(nil, 1<<20) // a hist line is at most 8+61*8 pairs
	c.out.Split(wholeLines)
	return c, nil
}

// StartReady is Start for the commands that say "ready" once they are set
// up and wait on the start barrier (sell, the ring commands): it reads
// that line, and if it does not come, kills and reaps yard and says why.
func StartReady(ctx context.Context, yard string, args ...string) (*Cmd, error) {
	c, err := Start(ctx, yard, args...)
	if err != nil {
		return nil, err
	}
	if _, err := c.Line("ready"); err != nil {
		c.Kill()
		c.Wait()
		return nil, err
	}
	return c, nil
}

// errCut is the end of yard's output inside a line.
var errCut = fmt.Errorf("%w: a line cut short", ErrOutput)

// wholeLines is bufio.ScanLines without its last rule: text after the
// last newline is not a line but what a yard killed as it printed left,
// and a "sold" or "hist" line cut short can still parse (its last number
// shorter). The scan ends with errCut instead, and Line reports how yard
// ended.
func wholeLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return 0, nil, errCut
	}
	return 0, nil, nil
}

// Run runs a yard command to its end and returns its output.
func Run(ctx context.Context, yard string, args ...string) (string, error) {
	c, err := Start(ctx, yard, args...)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	for c.out.Scan() {
		b.Write(c.out.Bytes())
		b.WriteByte('\n')
	}
	err = c.Wait()
	if serr := c.out.Err(); err == nil && serr != nil {
		err = fmt.Errorf("%s: %w", c.name, serr)
	}
	return b.String(), err
}

// Pid is the process's id.
func (c *Cmd) Pid() int { return c.cmd.Process.Pid }

// Line reads the next line, which must begin with word, and returns its
// other fields. If yard ends first, or inside the line, the error says
// how (with the end of its stderr).
func (c *Cmd) Line(word string) ([]string, error) {
	if !c.out.Scan() {
		err := c.out.Err()
		if werr := c.Wait(); werr != nil {
			err = werr
		}
		if err == nil {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("%s: no %q line: %w", c.name, word, err)
	}
	f := strings.Fields(c.out.Text())
	if len(f) == 0 || f[0] != word {
		return nil, fmt.Errorf("%s: %w: %.200q, want a %q line", c.name, ErrOutput, c.out.Text(), word)
	}
	return f[1:], nil
}

// Ints reads the next line, which must be word and n whole numbers (as
// "sold", "took" and "consumed" are), and returns the numbers.
func (c *Cmd) Ints(word string, n int) ([]int64, error) {
	f, err := c.Line(word)
	if err != nil {
		return nil, err
	}
	out := make([]int64, len(f))
	for i, s := range f {
		if out[i], err = strconv.ParseInt(s, 10, 64); err != nil {
			break
		}
	}
	if err != nil || len(f) != n {
		return nil, fmt.Errorf("%s: %w: %s %.200q, want %d whole numbers", c.name, ErrOutput, word, f, n)
	}
	return out, nil
}

// Wait waits for yard to exit (draining what it still prints) and returns
// nil for status 0, else an error carrying the end of its stderr.
func (c *Cmd) Wait() error {
	c.once.Do(func() {
		for c.out.Scan() {
		}
		err := c.cmd.Wait()
		if err == nil {
			return
		}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			if msg := tail(c.stderr.Bytes(), 2000); msg != "" {
				err = fmt.Errorf("%w: %s", err, msg)
			}
		}
		c.err = fmt.Errorf("%s: %w", c.name, err)
	})
	return c.err
}

// Kill kills yard; Wait then reaps it.
func (c *Cmd) Kill() { c.cmd.Process.Kill() }

// syncBuffer is a bytes.Buffer that exec's copying goroutine writes while
// another may read it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.b.Len() > 64<<10 {
		return len(p), nil // enough to say what went wrong
	}
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}
