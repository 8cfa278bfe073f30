//go:build linux

// Package examples_test runs every lesson's programs and compares what
// they print with what the lesson shows (oracle_test.go says how a lesson
// marks its output): twice in a row, and again after each program is
// SIGKILLed mid-run. A run must leave no process and no segment behind.
package examples_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// lesson is one lesson's checked blocks.
type lesson struct {
	name   string
	checks []check
}

func lessons(t *testing.T) []lesson {
	t.Helper()
	files, err := filepath.Glob("../[0-9][0-9]-*.md")
	if err != nil || len(files) == 0 {
		t.Fatalf("no lessons: %v", err)
	}
	var ls []lesson
	for _, f := range files {
		cs, err := parseLesson(f)
		if err != nil {
			t.Fatal(err)
		}
		if len(cs) > 0 {
			ls = append(ls, lesson{filepath.Base(f), cs})
		}
	}
	return ls
}

// build compiles every example and shmctl into a temporary directory.
func build(t *testing.T) string {
	t.Helper()
	bin := t.TempDir()
	cmd := exec.Command("go", "build", "-o", bin+"/", "./...", "../../cmd/shmctl")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestEveryProgramShown: each program is checked by some lesson, and each
// lesson's block names a program that exists.
func TestEveryProgramShown(t *testing.T) {
	mains, _ := filepath.Glob("*/main.go")
	shown := map[string]bool{}
	for _, l := range lessons(t) {
		for _, c := range l.checks {
			for _, s := range c.steps {
				shown[s.prog] = true
				if _, err := os.Stat(s.prog + "/main.go"); err != nil && s.prog != "shmctl" {
					t.Errorf("%s: no program %s", c.pos, s.prog)
				}
			}
		}
	}
	for _, m := range mains {
		if p := filepath.Dir(m); !shown[p] {
			t.Errorf("no lesson shows the output of %s", p)
		}
	}
}

// TestLessons runs each lesson's blocks, in order, twice.
func TestLessons(t *testing.T) {
	bin := build(t)
	for _, l := range lessons(t) {
		t.Run(l.name, func(t *testing.T) {
			before := segments(t)
			for run := 1; run <= 2; run++ {
				runLesson(t, bin, l, fmt.Sprintf("run %d", run), nil)
			}
			leftBehind(t, before)
		})
	}
}

// TestKilledMidRun SIGKILLs each program at its first line of output and
// half way through a run (the program alone, as a crash would: its
// children see their parent die and may still be at work), and half way
// with its whole process group, as kill -9 -PGID would; and each time
// runs its lesson again at once, which must print what it shows. What
// the killed run started must then end on its own.
func TestKilledMidRun(t *testing.T) {
	if testing.Short() {
		t.Skip("-short")
	}
	bin := build(t)
	for _, l := range lessons(t) {
		t.Run(l.name, func(t *testing.T) {
			before := segments(t)
			took := map[string]time.Duration{}
			runLesson(t, bin, l, "first run", took)
			var progs []step
			for _, c := range l.checks {
				for _, s := range c.steps {
					if s.prog != "shmctl" && !slices.ContainsFunc(progs, func(p step) bool { return p.prog == s.prog }) {
						progs = append(progs, s)
					}
				}
			}
			for _, s := range progs {
				for _, k := range []struct {
					at    string
					group bool
				}{{"first line", false}, {"half way", false}, {"half way", true}} {
					what := fmt.Sprintf("%s killed at its %s", s.prog, k.at)
					if k.group {
						what = fmt.Sprintf("%s's process group killed at its %s", s.prog, k.at)
					}
					pgid := killMidRun(t, bin, s, k.at, took[s.prog]/2, k.group)
					runLesson(t, bin, l, "right after "+what, nil)
					if err := awaitGroup(pgid, 20*time.Second); err != nil {
						t.Errorf("%s: %v", what, err)
					}
				}
			}
			leftBehind(t, before)
		})
	}
}

// runLesson runs the lesson's steps in order and compares their output.
func runLesson(t *testing.T, bin string, l lesson, what string, took map[string]time.Duration) {
	t.Helper()
	for _, c := range l.checks {
		for _, s := range c.steps {
			start := time.Now()
			stdout, stderr, err := runStep(bin, s)
			if took != nil {
				took[s.prog] = max(took[s.prog], time.Since(start))
			}
			switch {
			case err != nil:
				t.Fatalf("%s, %s: %s %s: %v\n%s%s", what, c.pos, s.prog, strings.Join(s.args, " "), err, stdout, stderr)
			case len(stderr) > 0 && s.prog != "shmctl" && !cleanedUp(stderr):
				t.Errorf("%s, %s: %s wrote to stderr:\n%s", what, c.pos, s.prog, stderr)
			}
			if !matches(s.want, outLines(stdout)) {
				t.Errorf("%s, %s: %s %s printed\n%s\nwhere the lesson shows\n%s",
					what, c.pos, s.prog, strings.Join(s.args, " "), stdout, strings.Join(s.text, "\n"))
			}
		}
	}
}

// cleanedUp: all the program said on stderr is that it removed what an
// earlier run left behind.
func cleanedUp(stderr []byte) bool {
	for _, l := range outLines(stderr) {
		if !strings.Contains(l, "left by an earlier run") {
			return false
		}
	}
	return true
}

// runStep runs one program to its end in a process group of its own and
// waits for every process of the group to be gone.
func runStep(bin string, s step) (stdout, stderr []byte, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, s.prog), s.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	if gerr := awaitGroup(cmd.Process.Pid, 5*time.Second); gerr != nil {
		err = errors.Join(err, gerr)
	}
	return o.Bytes(), e.Bytes(), err
}

// killMidRun starts the program in a process group of its own and
// SIGKILLs it (or the whole group) at its first line of output, or after
// the given time. It returns the group's id.
func killMidRun(t *testing.T, bin string, s step, at string, after time.Duration, group bool) int {
	t.Helper()
	cmd := exec.Command(filepath.Join(bin, s.prog), s.args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case lines <- sc.Text():
			default:
			}
		}
		close(lines)
	}()
	if at == "first line" {
		select {
		case <-lines:
		case <-time.After(time.Minute):
			t.Errorf("%s: no line in a minute", s.prog)
		}
	} else {
		time.Sleep(after)
	}
	if group {
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	} else {
		cmd.Process.Kill()
	}
	cmd.Wait()
	return cmd.Process.Pid
}

// awaitGroup waits until no live process (zombies of an orphan aside:
// reaping them is init's business) is left in process group pgid, and
// kills what is left after the timeout.
func awaitGroup(pgid int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		left := group(pgid)
		if len(left) == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			syscall.Kill(-pgid, syscall.SIGKILL)
			return fmt.Errorf("processes left behind: %s", strings.Join(left, "; "))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// group lists the live processes of a process group, as "pid (comm)".
func group(pgid int) []string {
	dirs, _ := os.ReadDir("/proc")
	var left []string
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			continue
		}
		i := bytes.LastIndexByte(b, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" || f[2] != strconv.Itoa(pgid) {
			continue
		}
		left = append(left, fmt.Sprintf("%d %s", pid, b[:i+1]))
	}
	return left
}

// segments lists the lessons' files in /dev/shm and the temporary
// directory (other packages' tests may add their own meanwhile).
func segments(t *testing.T) []string {
	t.Helper()
	var all []string
	for _, dir := range []string{"/dev/shm", os.TempDir()} {
		m, err := filepath.Glob(filepath.Join(dir, "shmkit.lesson*"))
		if err != nil {
			t.Fatal(err)
		}
		all = append(all, m...)
	}
	return all
}

func leftBehind(t *testing.T, before []string) {
	t.Helper()
	for _, s := range segments(t) {
		if !slices.Contains(before, s) {
			t.Errorf("left behind: %s", s)
			os.RemoveAll(s)
		}
	}
}
