//go:build linux

// Package examples_test runs every lesson's program, so that none rots:
// each must exit 0 and print what its lesson says it prints.
package examples_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shmkit/shmkit/shm"
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
	"leftover": {`^buyer: exit code -9 \(killed by SIGKILL after 10 buys\)$`,
		`^left /dev/shm/shmkit.lesson7.tickets behind: see it with go run ./cmd/shmctl ls$`},
	"queue": {`^eater-1 died holding bun 3 of chef-1 \(exit code -9\)$`, `^10 buns made, 10 eaten, 10 of them exactly once$`,
		`^bun 3 of chef-1 eaten by eater-2: true$`},
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
			if name == "leftover" {
				shm.Remove(leftover) // left for shmctl: TestLeftoverWithShmctl follows it there
			}
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

const leftover = "lesson7.tickets"

// TestLeftoverWithShmctl is lesson 7's shmctl session: the segment the
// leftover program leaves behind, listed, looked at, audited, repaired
// and removed, with the lines the lesson shows. (ls is given the file:
// other packages' tests may have corrupt segments in /dev/shm meanwhile,
// which make a plain ls exit 1.)
func TestLeftoverWithShmctl(t *testing.T) {
	bin := t.TempDir()
	build := exec.Command("go", "build", "-o", bin+"/", "./leftover", "../../cmd/shmctl")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	shm.Remove(leftover)
	t.Cleanup(func() { shm.Remove(leftover) })
	if out, err := exec.Command(filepath.Join(bin, "leftover")).CombinedOutput(); err != nil {
		t.Fatalf("leftover: %v\n%s", err, out)
	}
	for _, step := range []struct {
		args  string
		lines []string
	}{
		{"ls /dev/shm/shmkit.lesson7.tickets", []string{`^lesson7.tickets +ticketshm.Counter/4 +71.7K +ready +\S+ \S+ +0 +1 +- +\d+$`}},
		{"stat lesson7.tickets", []string{
			`^counter +lock-free, 1000 tickets, 990 remaining$`,
			`^audit +OK: sold 10 \+ remaining 990 of 1000; lost 0, oversold 0, double sold 0, in flight 0$`,
			`^unsettled +10 tickets in dead buyers' logs \(the next open or shmctl repair settles them\)$`,
			`^lock +free; consistent$`,
			`^bias +pid \d+ \(slot 0, dead\), inside a critical section: no$`,
			`^0 +\d+ +no +10 +0 +10 +yes$`}},
		{"audit lesson7.tickets", []string{`^lesson7.tickets: OK$`, `^  1 process\(es\) died with it open$`,
			`^  10 ticket\(s\) in dead buyers' logs, counted as settled; the next open or shmctl repair writes them to the ledger$`}},
		{"repair lesson7.tickets", []string{`^lesson7.tickets: settled 10 ticket\(s\) from dead buyers' logs into the ledger$`}},
		{"rm lesson7.tickets", []string{`^removed lesson7.tickets$`}},
	} {
		out, err := exec.Command(filepath.Join(bin, "shmctl"), strings.Fields(step.args)...).CombinedOutput()
		if err != nil {
			t.Fatalf("shmctl %s: %v\n%s", step.args, err, out)
		}
		lines := strings.Split(string(out), "\n")
		for _, p := range step.lines {
			re := regexp.MustCompile(p)
			if !slices.ContainsFunc(lines, re.MatchString) {
				t.Errorf("shmctl %s: no line matches %q in:\n%s", step.args, p, out)
			}
		}
	}
}
