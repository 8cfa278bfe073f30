//go:build linux

// Package examples_test runs every lesson's program, so that none rots:
// each must exit 0 and print what its lesson says it prints.
package examples_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// want: for each program, lines its output must match (regexps).
var want = map[string][]string{
	"processes": {`^MainProcess: pid \d+$`, `^before start, is_alive: false$`, `^after start, is_alive: true name: Process-1$`,
		`^souper: cooking soup \(pid \d+, parent \d+\)$`, `^joined Process-1: exit code 0, is_alive false`},
	"isolation": {`^child: tickets = 0$`, `^parent: tickets = 10 `, `^parent: shared = 9 `},
	"terminate": {`^join with a deadline: context deadline exceeded \| still alive: true$`, `^after terminate, exitcode: -15$`,
		`^after kill, exitcode: -9$`, `^a child that exits 3, exitcode: 3$`},
	"daemon": {`^heartbeat: a daemon cannot have children`, `^heartbeat: alive$`, `^worker: step 3$`, `^main: the worker is done`},
	"zombies": {`^zombie: os/exec child not waited for, state: Z$`, `^zombie: after Wait, state: gone$`,
		`^process: exited child, state: gone$`, `^orphan: its parent exited; new parent is us: true$`, `^orphan: reaped by the subreaper, exit code 0`},
	"ticketgrab": {`^no lock: 2000 tickets, \d+ sold, db.txt now .*: oversold or torn$`, `^flock: 2000 tickets, 2000 sold, db.txt now \{"count":    0\}$`},
	"segment": {`^4 processes x 1000 atomic adds: 4000$`, `^header: path /dev/shm/shmkit.lesson7.visits, tag "lesson7.Visits/1", version 2, 64 data bytes, state ready$`,
		`^a JSON file is refused: true$`, `^another type is refused: true$`},
	"biased": {`^owner: 1000000 lock\+unlock pairs, biased to this process: true$`, `^main: owner idle; Lock revokes its bias: <nil> \| Unlock: <nil>$`,
		`^main: owner inside; LockContext waits: context deadline exceeded$`, `^main: owner killed inside; Lock returned ErrOwnerDead: true$`,
		`^main: owner killed between; Lock: <nil> \| Unlock: <nil>$`},
	"robust": {`^main: Lock returned ErrOwnerDead: true$`, `^main: Consistent, Unlock; Lock again: <nil> \| Unlock: <nil>$`, `killed by signal 9$`,
		`^main: Do: ownerDied true; returned <nil>$`, `^main: Do: ownerDied false; returned <nil>$`,
		`^main: Do: ownerDied true; returned the repair's error: true \| not recoverable: true$`,
		`^main: the next Do returns ErrNotRecoverable: true \| Reset: <nil>$`},
	"lockfree": {`^locked   : 4 buyers sold 2000000 of 2000000, lost 0, oversold 0, audit ok: true`,
		`^lock-free: 4 buyers sold 2000000 of 2000000, lost 0, oversold 0, audit ok: true`},
}

func TestExamples(t *testing.T) {
	dirs, _ := filepath.Glob("*/main.go")
	if len(dirs) != len(want) {
		t.Errorf("%d programs, %d in the want table: keep them in step", len(dirs), len(want))
	}
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./...")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for name, patterns := range want {
		t.Run(name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			out, err := exec.CommandContext(ctx, filepath.Join(bin, name)).CombinedOutput()
			if err != nil {
				t.Fatalf("%s: %v\n%s", name, err, out)
			}
			lines := strings.Split(string(out), "\n")
			for _, p := range patterns {
				re := regexp.MustCompile(p)
				found := false
				for _, l := range lines {
					found = found || re.MatchString(l)
				}
				if !found {
					t.Errorf("%s: no line matches %q in:\n%s", name, p, out)
				}
			}
		})
	}
}
