//go:build linux

package examples_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// A lesson's shown output is the expected output. A fenced block that a
// lesson checks follows an HTML comment (invisible on GitHub):
//
//	<!-- output of NAME [ARGS...]
//	vary: REGEXP
//	any order: A-B
//	-->
//
// NAME is a program under docs/examples (or shmctl, for cmd/shmctl).
// "<!-- session" instead of "output of" makes a block of commands, each
// a line "$ go run ./docs/examples/NAME ARGS" or "$ go run ./cmd/shmctl
// ARGS" followed by its output. The output must match the block line for
// line, with runs of spaces taken as one, except that:
//   - a part of a line matching a vary regexp (e.g. "pid \d+") matches
//     any text the regexp matches;
//   - "…" inside a line matches any text;
//   - a line "... TEXT" matches any number of lines (none included), each
//     like TEXT (more heartbeats, say); a bare "..." any number of lines
//     like the block's line above it;
//   - lines A to B of the block (counted from 1 in the block, commands
//     included) may come in any order, except that lines beginning with
//     the same "name:" keep their order (one process's lines come in the
//     order it prints them).
//
// Blocks run in the order the lesson shows them, so a session can look at
// what the program before it left.

// check is one checked block of a lesson.
type check struct {
	pos   string // lesson:line, for messages
	steps []step
}

// step is one command of a block and the output it must print.
type step struct {
	prog string // a program under docs/examples, or "shmctl"
	args []string
	want []elem
	text []string // the block's lines for this step, for messages
}

// elem is one element of a step's expected output.
type elem struct {
	re    *regexp.Regexp   // one line
	more  *regexp.Regexp   // "...": any number of lines like this
	group []*regexp.Regexp // any order, but in order within a name
	keys  []string         // the group's lines' names
}

var spaces = regexp.MustCompile(`[ \t]+`)

// norm is a line as compared: trailing spaces gone, runs of spaces one.
func norm(s string) string {
	return spaces.ReplaceAllString(strings.TrimRight(s, " \t\r"), " ")
}

// lineRegexp makes a block line into a regexp: literal text, except where
// a vary regexp matches, and "…".
func lineRegexp(line string, vary []*regexp.Regexp) (*regexp.Regexp, error) {
	line = norm(line)
	type span struct{ lo, hi int }
	var spans []span
	var res []string
	for _, v := range vary {
		for _, m := range v.FindAllStringIndex(line, -1) {
			if m[0] == m[1] || slices.ContainsFunc(spans, func(s span) bool { return m[0] < s.hi && s.lo < m[1] }) {
				continue
			}
			spans = append(spans, span{m[0], m[1]})
			res = append(res, v.String())
		}
	}
	idx := make([]int, len(spans))
	for i := range idx {
		idx[i] = i
	}
	slices.SortFunc(idx, func(a, b int) int { return spans[a].lo - spans[b].lo })
	var b strings.Builder
	b.WriteString("^")
	at := 0
	lit := func(s string) {
		parts := strings.Split(s, "…")
		for i, p := range parts {
			if i > 0 {
				b.WriteString(".*")
			}
			b.WriteString(regexp.QuoteMeta(p))
		}
	}
	for _, i := range idx {
		lit(line[at:spans[i].lo])
		b.WriteString("(?:" + res[i] + ")")
		at = spans[i].hi
	}
	lit(line[at:])
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// parseLesson reads the checked blocks of one lesson.
func parseLesson(path string) ([]check, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	var checks []check
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		var head string
		switch {
		case strings.HasPrefix(l, "<!-- output of "):
			head = strings.TrimPrefix(l, "<!-- output of ")
		case strings.HasPrefix(l, "<!-- session"):
			head = strings.TrimPrefix(l, "<!-- session")
		default:
			continue
		}
		pos := fmt.Sprintf("%s:%d", filepath.Base(path), i+1)
		session := strings.HasPrefix(l, "<!-- session")
		var dirs []string
		head, closed := strings.CutSuffix(head, "-->")
		for !closed {
			i++
			if i == len(lines) {
				return nil, fmt.Errorf("%s: comment never closed", pos)
			}
			var d string
			d, closed = strings.CutSuffix(strings.TrimSpace(lines[i]), "-->")
			if d = strings.TrimSpace(d); d != "" {
				dirs = append(dirs, d)
			}
		}
		var vary []*regexp.Regexp
		var orders [][2]int
		for _, d := range dirs {
			switch k, v, _ := strings.Cut(d, ":"); k {
			case "vary":
				re, err := regexp.Compile(strings.TrimSpace(v))
				if err != nil {
					return nil, fmt.Errorf("%s: %v", pos, err)
				}
				vary = append(vary, re)
			case "any order":
				a, b, _ := strings.Cut(strings.TrimSpace(v), "-")
				lo, err1 := strconv.Atoi(a)
				hi, err2 := strconv.Atoi(b)
				if err1 != nil || err2 != nil || lo < 1 || hi < lo {
					return nil, fmt.Errorf("%s: bad range %q", pos, v)
				}
				orders = append(orders, [2]int{lo, hi})
			default:
				return nil, fmt.Errorf("%s: unknown directive %q", pos, d)
			}
		}
		i++
		for i < len(lines) && strings.TrimSpace(lines[i]) == "" {
			i++
		}
		if i == len(lines) || !strings.HasPrefix(lines[i], "```") {
			return nil, fmt.Errorf("%s: no fenced block after the comment", pos)
		}
		var block []string
		for i++; i < len(lines) && !strings.HasPrefix(lines[i], "```"); i++ {
			block = append(block, lines[i])
		}
		c := check{pos: pos}
		if !session {
			f := strings.Fields(head)
			if len(f) == 0 {
				return nil, fmt.Errorf("%s: output of what?", pos)
			}
			c.steps = []step{{prog: f[0], args: f[1:]}}
		}
		res := make([]*regexp.Regexp, len(block))
		for j, bl := range block {
			text, more := strings.CutPrefix(norm(bl), "... ")
			switch {
			case norm(bl) == "...":
				if j == 0 || res[j-1] == nil {
					return nil, fmt.Errorf("%s: a bare ... repeats the line above it, and there is none", pos)
				}
				res[j] = res[j-1]
				continue
			case session && strings.HasPrefix(bl, "$ "):
				continue
			case !more:
				text = bl
			}
			re, err := lineRegexp(text, vary)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", pos, err)
			}
			res[j] = re
		}
		inOrder := func(j int) (lo, hi int, ok bool) {
			for _, o := range orders {
				if j+1 >= o[0] && j+1 <= o[1] {
					return o[0] - 1, o[1] - 1, true
				}
			}
			return 0, 0, false
		}
		for j := 0; j < len(block); j++ {
			bl := block[j]
			if session && strings.HasPrefix(bl, "$ ") {
				f := strings.Fields(strings.TrimPrefix(bl, "$ "))
				if len(f) < 3 || f[0] != "go" || f[1] != "run" {
					return nil, fmt.Errorf("%s: a session runs go run ./docs/examples/NAME or ./cmd/shmctl, not %q", pos, bl)
				}
				prog := filepath.Base(f[2])
				if f[2] != "./cmd/shmctl" && f[2] != "./docs/examples/"+prog {
					return nil, fmt.Errorf("%s: unknown program %q", pos, f[2])
				}
				c.steps = append(c.steps, step{prog: prog, args: f[3:]})
				continue
			}
			if len(c.steps) == 0 {
				return nil, fmt.Errorf("%s: output before the session's first command", pos)
			}
			s := &c.steps[len(c.steps)-1]
			s.text = append(s.text, bl)
			switch lo, hi, ok := inOrder(j); {
			case norm(bl) == "..." || strings.HasPrefix(norm(bl), "... "):
				s.want = append(s.want, elem{more: res[j]})
			case ok && j == lo:
				g := elem{}
				for k := lo; k <= hi && k < len(block); k++ {
					g.group = append(g.group, res[k])
					g.keys = append(g.keys, name(block[k]))
				}
				s.want = append(s.want, g)
				s.text = append(s.text, block[lo+1:min(hi+1, len(block))]...)
				j = hi
			default:
				s.want = append(s.want, elem{re: res[j]})
			}
		}
		checks = append(checks, c)
	}
	return checks, nil
}

// matches reports whether the output lines are what the elements say.
func matches(want []elem, out []string) bool {
	if len(want) == 0 {
		return len(out) == 0
	}
	e := want[0]
	switch {
	case e.re != nil:
		return len(out) > 0 && e.re.MatchString(norm(out[0])) && matches(want[1:], out[1:])
	case e.more != nil:
		for n := 0; ; n++ {
			if matches(want[1:], out[n:]) {
				return true
			}
			if n == len(out) || !e.more.MatchString(norm(out[n])) {
				return false
			}
		}
	default:
		k := len(e.group)
		return len(out) >= k && permutes(e.group, e.keys, out[:k]) && matches(want[1:], out[k:])
	}
}

// permutes reports whether each line matches its own one of res, taking
// the lines of one name in order: a line may only match the first of the
// regexps left with its name.
func permutes(res []*regexp.Regexp, keys []string, lines []string) bool {
	if len(lines) == 0 {
		return true
	}
	for i, re := range res {
		if slices.Index(keys, keys[i]) < i && keys[i] != "" {
			continue // an earlier line of this name is still unmatched
		}
		if re.MatchString(norm(lines[0])) &&
			permutes(slices.Delete(slices.Clone(res), i, i+1), slices.Delete(slices.Clone(keys), i, i+1), lines[1:]) {
			return true
		}
	}
	return false
}

// name is what a line begins with up to its first ": " ("Process-1" in
// "Process-1: cooking..."), or "" if it has none.
func name(line string) string {
	n, _, ok := strings.Cut(line, ": ")
	if !ok || strings.ContainsAny(n, " <") {
		return ""
	}
	return n
}

// outLines is a program's output as lines, without the last newline's
// empty line.
func outLines(out []byte) []string {
	s := strings.TrimSuffix(string(out), "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func TestOracle(t *testing.T) {
	vary := []*regexp.Regexp{regexp.MustCompile(`pid \d+`)}
	re, err := lineRegexp("a (pid 123)   took …  ms", vary)
	if err != nil {
		t.Fatal(err)
	}
	for s, want := range map[string]bool{
		"a (pid 9) took 3 ms":     true,
		"a (pid 9)  took 3.5  ms": true,
		"a (pid x) took 3 ms":     false,
		"a (pid 9) took 3 ms!":    false,
		"b (pid 9) took 3 ms":     false,
	} {
		if got := re.MatchString(norm(s)); got != want {
			t.Errorf("%q against %q: %v, want %v", s, re, got, want)
		}
	}
	x, y := regexp.MustCompile(`^x$`), regexp.MustCompile(`^y$`)
	for _, c := range []struct {
		want []elem
		out  string
		ok   bool
	}{
		{[]elem{{re: x}, {re: y}}, "x\ny", true},
		{[]elem{{re: x}, {re: y}}, "y\nx", false},
		{[]elem{{re: x}, {re: y}}, "x\ny\ny", false},
		{[]elem{{group: []*regexp.Regexp{x, y}, keys: []string{"", ""}}}, "y\nx", true},
		{[]elem{{group: []*regexp.Regexp{x, y}, keys: []string{"", ""}}}, "y\ny", false},
		{[]elem{{re: x}, {more: x}, {re: y}}, "x\nx\nx\ny", true},
		{[]elem{{re: x}, {more: x}, {re: y}}, "x\ny", true},
		{[]elem{{re: x}, {more: x}, {re: y}}, "x\ny\ny", false},
		{[]elem{{re: x}, {more: x}, {re: y}}, "x\nz\ny", false},
	} {
		if got := matches(c.want, outLines([]byte(c.out))); got != c.ok {
			t.Errorf("%q: %v, want %v", c.out, got, c.ok)
		}
	}
	// One name's lines keep their order within an any-order group.
	a1, a2, b1 := regexp.MustCompile(`^a: 1$`), regexp.MustCompile(`^a: 2$`), regexp.MustCompile(`^b: 1$`)
	g := []elem{{group: []*regexp.Regexp{a1, a2, b1}, keys: []string{"a", "a", "b"}}}
	for out, ok := range map[string]bool{"a: 1\nb: 1\na: 2": true, "b: 1\na: 1\na: 2": true, "a: 2\na: 1\nb: 1": false} {
		if got := matches(g, outLines([]byte(out))); got != ok {
			t.Errorf("%q: %v, want %v", out, got, ok)
		}
	}
	if name("Process-1: cooking... 1 of 4") != "Process-1" || name("<Process name='x' pid=1>") != "" || name("hello world 3") != "" {
		t.Error("name: wrong")
	}
}
