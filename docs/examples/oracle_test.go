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
//   - a line "..." matches any number of lines, each like another line of
//     the block (more heartbeats, say);
//   - lines A to B of the block (counted from 1 in the block, commands
//     included) may come in any order.
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
	more  []*regexp.Regexp // "...": any number of lines like these
	group []*regexp.Regexp // any order
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
		// Regexps of every line, for "..." to match any of them.
		var all []*regexp.Regexp
		res := make([]*regexp.Regexp, len(block))
		for j, bl := range block {
			if norm(bl) == "..." || (session && strings.HasPrefix(bl, "$ ")) {
				continue
			}
			re, err := lineRegexp(bl, vary)
			if err != nil {
				return nil, fmt.Errorf("%s: %v", pos, err)
			}
			res[j] = re
			all = append(all, re)
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
			case norm(bl) == "...":
				s.want = append(s.want, elem{more: all})
			case ok && j == lo:
				g := elem{}
				for k := lo; k <= hi && k < len(block); k++ {
					g.group = append(g.group, res[k])
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
			if n == len(out) || !slices.ContainsFunc(e.more, func(re *regexp.Regexp) bool { return re.MatchString(norm(out[n])) }) {
				return false
			}
		}
	default:
		k := len(e.group)
		return len(out) >= k && permutes(e.group, out[:k]) && matches(want[1:], out[k:])
	}
}

// permutes reports whether each line matches its own one of res.
func permutes(res []*regexp.Regexp, lines []string) bool {
	if len(lines) == 0 {
		return true
	}
	for i, re := range res {
		if re.MatchString(norm(lines[0])) && permutes(slices.Delete(slices.Clone(res), i, i+1), lines[1:]) {
			return true
		}
	}
	return false
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
		{[]elem{{group: []*regexp.Regexp{x, y}}}, "y\nx", true},
		{[]elem{{group: []*regexp.Regexp{x, y}}}, "y\ny", false},
		{[]elem{{re: x}, {more: []*regexp.Regexp{x, y}}, {re: y}}, "x\nx\ny\nx\ny", true},
		{[]elem{{re: x}, {more: []*regexp.Regexp{x, y}}, {re: y}}, "x\ny", true},
		{[]elem{{re: x}, {more: []*regexp.Regexp{x, y}}, {re: y}}, "x\nz\ny", false},
	} {
		if got := matches(c.want, outLines([]byte(c.out))); got != c.ok {
			t.Errorf("%q: %v, want %v", c.out, got, c.ok)
		}
	}
}
