// Package docs_test checks the lessons' figures against the committed
// output they come from.
package docs_test

import (
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/shmkit/shmkit/internal/human"
)

// TestFigures: every figure a lesson (docs/NN-*.md, docs/README.md, the
// top README.md) quotes with a unit of time, rate, ratio, share or count
// appears in one of the committed output files the same page links to
// (docs/runs/*.txt, docs/charts/*.json), and each linked run file says at
// its top what command made it and on what machine. A range or list
// (101–132 µs, 9.4/7.6/7.2 M/s, 4.7 and 5.8 million) is checked at every
// number. Numbers are compared normalized: thousands separators and
// thin spaces dropped, "us" read as "µs", and a file's raw counts and rates
// also in the bench's short form (a rate of 179 million ops/s is also read as 179M).
func TestFigures(t *testing.T) {
	pages, err := filepath.Glob("[0-9][0-9]-*.md")
	if err != nil || len(pages) == 0 {
		t.Fatalf("no lessons found (%v)", err)
	}
	pages = append(pages, "README.md", filepath.Join("..", "README.md"))
	for _, page := range pages {
		name := "docs/" + filepath.ToSlash(page) // named from the repository's root
		if strings.HasPrefix(page, "..") {
			name = "README.md"
		}
		t.Run(name, func(t *testing.T) {
			checkPage(t, page, name)
		})
	}
}

// allowed: figures with a unit that are not measurements, by page (its
// name from the repository's root, "" for any page) and figure as written.
var allowed = []struct{ page, figure, why string }{
	{"docs/03-join-terminate.md", "3 ×", "3 × 300 ms: the program's three sleeps, arithmetic"},
	{"docs/03-join-terminate.md", "300 ms", "the sleep of the program's mails, a setting"},
	{"docs/03-join-terminate.md", "0.1 s", "the notes' sleep before asking is_alive, a setting"},
	{"docs/04-daemons.md", "2 s", "Main's grace before SIGKILL, a constant of process"},
	{"docs/06-ticket-grab.md", "50 ms", "the notes' sleeps as the program cuts them, a setting"},
	{"docs/06-ticket-grab.md", "20 ms", "the notes' sleeps as the program cuts them, a setting"},
	{"docs/08-robust-locks.md", "10 ms", "the slice a sleeper sleeps in: a constant of semaphore"},
	{"docs/08-robust-locks.md", "1 ms", "the starvation threshold: a constant of semaphore"},
	{"docs/10-measuring.md", "100 µs", "the >100µs column's threshold, a definition"},
	{"docs/10-measuring.md", "99%", "the definition of time p99"},
	{"docs/10-measuring.md", "10 ms", "the slice a sleeper sleeps in: a constant of semaphore"},
	{"docs/10-measuring.md", "1 ms", "the example of the mean-wait formula (one 1 ms stall...)"},
	{"docs/10-measuring.md", "2 µs", "biasHot's watch and the revoker's spin: constants of semaphore"},
	{"docs/10-measuring.md", "0.0025%", "the example of the mean-wait formula: 1 in 40 000"},
	{"docs/10-measuring.md", "20 µs", "the turn a waiter granted (semaphore's default then, bench latency -turn)"},
	{"docs/10-measuring.md", "200 µs", "a -turn setting of the turn curve, the figures beside it are measured"},
	{"docs/10-measuring.md", "1 ms", "a -turn setting of the turn curve, the figures beside it are measured"},
	{"docs/12-queue.md", "2 million", "bench queue's default -msgs: a setting"},
	{"README.md", "20 µs", "the turn a waiter granted (semaphore's default then), a setting"},
}

// derived: ratios a page computes from two figures of one run in its
// files; both figures must be there, and their quotient round to the
// ratio quoted.
var derived = []ratio{
	// lesson 1: Python's spawn against the bench binary's Start+Join,
	// p50s of one run block of runs/spawn.txt each
	{"docs/01-processes.md", "14 times", "49994 µs", "3687 µs"},
	{"docs/01-processes.md", "16 times", "46691 µs", "3006 µs"},
	// the README's summary of lesson 10's run (runs/bench-chart.txt)
	{"README.md", "2.1×", "219M", "102M"},  // shm-mutex / c-robust, 1 process
	{"README.md", "4.3×", "117M", "27.1M"}, // 2 processes (the lowest)
	{"README.md", "6.1×", "151M", "24.7M"}, // 4 processes (the highest)
	{"README.md", "0.97×", "372M", "382M"}, // shm-lockfree / c-cas, 1 process
	{"README.md", "0.72×", "125M", "173M"}, // 4 processes (the lowest)
	{"README.md", "1.7×", "212M", "122M"},  // 2 processes (the highest)
	// the README's before/after of runs/bench-session.txt (each pair
	// from one run)
	{"README.md", "2.7×", "308M", "114M"},  // 4ec5a7c, 1 process
	{"README.md", "5.9×", "194M", "33M"},   // 4ec5a7c, 8 processes, second run (the lowest)
	{"README.md", "9.3×", "274M", "29.6M"}, // 4ec5a7c, 2 processes, first run (the highest)
	{"README.md", "2.3×", "259M", "114M"},  // 0ef4767, 1 process
	{"README.md", "3.9×", "124M", "31.9M"}, // 0ef4767, 8 processes, first run (the lowest)
	{"README.md", "6.5×", "162M", "25M"},   // 0ef4767, 4 processes, second run (the highest)
	// the README's before/after of runs/buy-loads.txt, 1 process (each
	// pair from one run)
	{"README.md", "2.94×", "326M", "111M"}, // c492b0e, third run (the lowest)
	{"README.md", "2.99×", "332M", "111M"}, // c492b0e, first run (the highest)
	{"README.md", "2.49×", "271M", "109M"}, // 9c95118, third run (the lowest)
	{"README.md", "2.81×", "306M", "109M"}, // 9c95118, first run (the highest)
	// the README's before/after of runs/session-2026-11-27c.txt (each
	// pair from one run)
	{"README.md", "3.1×", "353M", "114M"},   // b1c6a04, first run, 1 process
	{"README.md", "3.1×", "350M", "114M"},   // b1c6a04, second run, 1 process
	{"README.md", "6.0×", "187M", "31M"},    // b1c6a04, first run, 8 processes (the lowest)
	{"README.md", "10.0×", "300M", "29.9M"}, // b1c6a04, first run, 2 processes (the highest)
	{"README.md", "3.0×", "341M", "114M"},   // 246f72e, first run, 1 process
	{"README.md", "3.0×", "338M", "114M"},   // 246f72e, second run, 1 process
	// lesson 10's table, the first run of runs/bench-chart.txt
	{"docs/10-measuring.md", "2.1×", "219M", "102M"},  // shm-mutex / c-robust, 1 process
	{"docs/10-measuring.md", "4.3×", "117M", "27.1M"}, // 2 processes
	{"docs/10-measuring.md", "6.1×", "151M", "24.7M"}, // 4
	{"docs/10-measuring.md", "4.8×", "123M", "25.7M"}, // 8
	{"docs/10-measuring.md", "0.97×", "372M", "382M"}, // shm-lockfree / c-cas, 1 process
	{"docs/10-measuring.md", "1.7×", "212M", "122M"},  // 2
	{"docs/10-measuring.md", "0.72×", "125M", "173M"}, // 4
	{"docs/10-measuring.md", "0.84×", "127M", "152M"}, // 8
	{"docs/10-measuring.md", "0.55×", "117M", "212M"}, // shm-mutex / shm-lockfree, 2 processes
	{"docs/10-measuring.md", "1.21×", "151M", "125M"}, // 4
	// lesson 11's table: shm-mutex / redis, the same run
	{"docs/11-redis.md", "18 300×", "219M", "12k"},
	{"docs/11-redis.md", "4 160×", "117M", "28.1k"},
	{"docs/11-redis.md", "4 090×", "151M", "36.9k"},
	{"docs/11-redis.md", "3 160×", "123M", "38.9k"},
	// lesson 12: runs/queue-bench.txt, msgs/s of the same run, or of the
	// Python run and the bench queue run just before it
	{"docs/12-queue.md", "10.6 times", "15761024", "1479938"},  // shm-queue / pipe, 1x1, first run
	{"docs/12-queue.md", "22 times", "15761024", "724024"},     // shm-queue / unix, 1x1, first run
	{"docs/12-queue.md", "0.82 times", "15761024", "19144476"}, // shm-queue / c-ring, 1x1, first run
	{"docs/12-queue.md", "0.85 times", "15908875", "18798234"}, // second run
	{"docs/12-queue.md", "0.80 times", "14463468", "17970509"}, // third run
	{"docs/12-queue.md", "10.9 times", "15908875", "1464159"},  // second run, pipe
	{"docs/12-queue.md", "9.5 times", "14463468", "1526750"},   // third run, pipe
	{"docs/12-queue.md", "0.78 times", "14063061", "17978592"}, // 4x4, three runs
	{"docs/12-queue.md", "0.97 times", "13372356", "13755424"},
	{"docs/12-queue.md", "0.98 times", "14066919", "14411893"},
	{"docs/12-queue.md", "0.75 times", "14664575", "19469758"}, // the earlier run (queue-bench.txt), its second
	{"docs/12-queue.md", "84 times", "15761024", "186711"},     // shm-queue / multiprocessing.Queue
	{"docs/12-queue.md", "132 times", "92.2", "0.7"},           // Python's round trip / shm-queue's
}

var (
	// A number: digits with an optional decimal part, thousands
	// grouped by a space, comma, thin space or narrow no-break space.
	num = `\b(?:\d{1,3}(?:[ ,\x{00a0}\x{2009}\x{202f}]\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?)`
	// A unit, longest first; after it no letter (so 4 MB, 64-bit and
	// 5 msgs are not read as 4 M, ...).
	unit = `(?:ns/op|M ops/s|M tickets/s|M msgs/s|M/s|k/s|G/s|ops/s|tickets/s|msgs/s|million|times|pairs|kills|ns|µs|μs|us|ms|×|%|s|M|k|G)`
	sep  = `[ \x{00a0}\x{2009}\x{202f}]?`
	// A figure: a number, or a range or list of numbers (– - / , and,
	// to between them), each maybe with its own unit, the last with one.
	figureRE = regexp.MustCompile(`(?:(?:` + num + `)` + sep + `(?:` + unit + `)?\s*(?:–|-|/|,|\band\b|\bto\b)\s*)*(?:` + num + `)` + sep + unit + `(?:[^\p{L}\p{N}]|$)`)
	partRE   = regexp.MustCompile(`(` + num + `)` + sep + `(` + unit + `)?`)
	// Command flags and their values: -turn 20us is a setting.
	flagRE = regexp.MustCompile(`(^|[\s(\x60])-[a-z][\w-]*[ =]\S+`)
	// Fenced blocks of source code: their numbers are code.
	codeRE = regexp.MustCompile("(?ms)^```(?:go|python|c)\\s*$.*?^```\\s*$")
	// A lesson program's output block, under its <!-- output of NAME -->
	// comment: docs/examples/oracle_test.go runs the program and compares
	// (its times are marked vary: there), so its figures are its own.
	oracleRE = regexp.MustCompile("(?ms)^<!-- output of .*?-->\\s*\n```[^\n]*\n.*?^```\\s*$")
	linkRE   = regexp.MustCompile(`\]\(([^)\s]+\.(?:txt|json))\)`)
	// In a file: a number and what follows it.
	fileNumRE = regexp.MustCompile(`\b(\d+(?:\.\d+)?)(?:[ \x{2009}\x{202f}]?(ns/op|ns|µs|μs|us|ms|s|M|k|G|%)(?:[^\p{L}]|$))?`)
)

// fig is one number of a figure, with its unit: number as written (raw)
// and normalized.
type fig struct{ text, raw, number, unit string }

// figures finds the figures in a page's text.
func figures(text string) []fig {
	text = codeRE.ReplaceAllString(text, "")
	text = oracleRE.ReplaceAllString(text, "")
	text = flagRE.ReplaceAllString(text, "$1")
	var out []fig
	for _, m := range figureRE.FindAllString(text, -1) {
		m = strings.TrimRightFunc(m, func(r rune) bool { return !strings.ContainsRune("×%", r) && !isAlnum(r) })
		// A number without a unit has the next one's: 101–132 µs,
		// 13.6–15.1 ms, 132–140 M/s.
		parts := partRE.FindAllStringSubmatch(m, -1)
		figs := make([]fig, len(parts))
		next := ""
		for i := len(parts) - 1; i >= 0; i-- {
			if parts[i][2] != "" {
				next = parts[i][2]
			}
			figs[i] = fig{text: m, raw: parts[i][1], number: normNum(parts[i][1]), unit: normUnit(next)}
		}
		out = append(out, figs...)
	}
	return out
}

func isAlnum(r rune) bool {
	return r >= '0' && r <= '9' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r == 'µ' || r == 'μ'
}

// normNum drops thousands separators and reads the number: 34.0 is 34,
// 2 500 is 2500.
func normNum(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\u00a0' || r == '\u2009' || r == '\u202f' || r == ',' {
			return -1
		}
		return r
	}, s)
	if x, err := strconv.ParseFloat(s, 64); err == nil {
		return strconv.FormatFloat(x, 'f', -1, 64)
	}
	return s
}

func normUnit(u string) string {
	switch u {
	case "us", "μs":
		return "µs"
	case "ns/op":
		return "ns"
	case "M ops/s", "M tickets/s", "M msgs/s", "M/s", "million":
		return "M"
	case "k/s":
		return "k"
	case "G/s":
		return "G"
	case "times":
		return "×"
	case "ops/s", "tickets/s", "msgs/s":
		return "/s"
	}
	return u
}

// evidence is what a page's files hold: numbers with the unit that
// follows them, and bare numbers.
type evidence struct {
	withUnit map[string]bool // "8.924 ns", "137 M", "50 %"
	bare     map[string]bool // every number
}

func (e *evidence) add(number, unit string) {
	number = normNum(number)
	e.bare[number] = true
	if unit != "" {
		e.withUnit[number+" "+normUnit(unit)] = true
	}
}

// addRaw records a raw count or rate, also in the bench's short form.
func (e *evidence) addRaw(x float64) {
	e.add(strconv.FormatFloat(x, 'f', -1, 64), "")
	e.add(fmt.Sprintf("%.1f", x), "")
	e.add(fmt.Sprintf("%.2f", x), "")
	if n, u := human.Split(x); u != "" {
		e.add(n, u)
	}
}

func (e *evidence) has(f fig) bool {
	switch f.unit {
	case "", "×", "pairs", "kills":
		return e.bare[f.number]
	case "/s": // a rate in full: 112 000 tickets/s is the bench's 112k
		x, _ := strconv.ParseFloat(f.number, 64)
		n, u := human.Split(x)
		return e.bare[f.number] || e.withUnit[n+" "+u]
	}
	return e.withUnit[f.number+" "+f.unit]
}

// thousands joins digit groups: 181,543 is 181543.
var thousandsRE = regexp.MustCompile(`(\d),(\d{3})\b`)

func readEvidence(t *testing.T, e *evidence, path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v", path, err)
		return
	}
	if strings.HasSuffix(path, ".json") {
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Errorf("%s: %v", path, err)
			return
		}
		walkJSON(e, v)
		return
	}
	if !hasHeader(string(b)) {
		t.Errorf("%s: its first line must give the command (# ...), and a # line under it the machine (date; N vCPUs: CPU; kernel; commit)", path)
	}
	text := thousandsRE.ReplaceAllString(string(b), "$1$2")
	for _, m := range fileNumRE.FindAllStringSubmatch(text, -1) {
		e.add(m[1], m[2])
		if x, err := strconv.ParseFloat(m[1], 64); err == nil && x >= 1000 {
			e.addRaw(x)
		}
	}
}

// hasHeader: a run file opens with # lines, the first of them the command
// and one of them the machine.
func hasHeader(text string) bool {
	lines := strings.Split(text, "\n")
	if !strings.HasPrefix(lines[0], "# ") {
		return false
	}
	for _, l := range lines[1:] {
		if !strings.HasPrefix(l, "# ") {
			return false
		}
		if strings.Contains(l, "vCPUs") {
			return true
		}
	}
	return false
}

func walkJSON(e *evidence, v any) {
	switch v := v.(type) {
	case float64:
		e.addRaw(v)
	case []any:
		for _, x := range v {
			walkJSON(e, x)
		}
	case map[string]any:
		for _, x := range v {
			walkJSON(e, x)
		}
	}
}

// docsDir is docs/, where the test runs.
var docsDir, _ = filepath.Abs(".")

func checkPage(t *testing.T, page, name string) {
	b, err := os.ReadFile(page)
	if err != nil {
		t.Fatal(err)
	}
	text := string(b)
	e := &evidence{withUnit: map[string]bool{}, bare: map[string]bool{}}
	var files []string
	for _, m := range linkRE.FindAllStringSubmatch(text, -1) {
		// Links are relative to the page; the test runs in docs/, so
		// the top README's docs/runs/x.txt is runs/x.txt here.
		path := filepath.Join(filepath.Dir(page), m[1])
		if abs, err := filepath.Abs(path); err == nil {
			if rel, err := filepath.Rel(docsDir, abs); err == nil {
				path = rel
			}
		}
		if dir := filepath.Dir(path); dir == "runs" || dir == "charts" {
			if !slices.Contains(files, path) {
				files = append(files, path)
				readEvidence(t, e, path)
			}
		}
	}
	for _, f := range figures(text) {
		if d, ok := derivedFor(name, f); ok {
			checkDerived(t, name, f, d, e)
			continue
		}
		if e.has(f) || isAllowed(name, f) {
			continue
		}
		t.Errorf("%s: %q: %s %s is in none of the files it links to %q", name, f.text, f.number, f.unit, files)
	}
}

func isAllowed(page string, f fig) bool {
	for _, a := range allowed {
		if (a.page == "" || a.page == page) && normFigure(a.figure) == f.number+" "+f.unit {
			return true
		}
	}
	return false
}

// normFigure is a figure as written, normalized like a fig.
func normFigure(s string) string {
	p := partRE.FindStringSubmatch(s)
	if p == nil {
		return s
	}
	return normNum(p[1]) + " " + normUnit(p[2])
}

type ratio struct{ page, ratio, num, den string }

func derivedFor(page string, f fig) (ratio, bool) {
	for _, d := range derived {
		if d.page == page && normFigure(d.ratio) == f.number+" "+f.unit {
			return d, true
		}
	}
	return ratio{}, false
}

// checkDerived: both figures of a ratio are in the page's files, and their
// quotient rounds to the ratio as written (to its last digit, or within
// half a percent for a ratio written to three digits, 14 100×).
func checkDerived(t *testing.T, page string, f fig, d ratio, e *evidence) {
	n, dn := figureOf(d.num), figureOf(d.den)
	if !e.has(n) || !e.has(dn) {
		t.Errorf("%s: %s is %s over %s, which are not both in its files", page, d.ratio, d.num, d.den)
		return
	}
	r, _ := strconv.ParseFloat(f.number, 64)
	q := value(n) / value(dn)
	decimals := 0
	if i := strings.IndexByte(f.raw, '.'); i >= 0 {
		decimals = len(f.raw) - i - 1
	}
	if math.Abs(q-r) > max(0.5*math.Pow10(-decimals), 0.005*r) {
		t.Errorf("%s: %s is %s over %s, which is %.4g", page, d.ratio, d.num, d.den, q)
	}
}

func figureOf(s string) fig {
	p := partRE.FindStringSubmatch(s)
	return fig{text: s, raw: p[1], number: normNum(p[1]), unit: normUnit(p[2])}
}

// value is a figure in its base unit (ops/s, seconds).
func value(f fig) float64 {
	x, _ := strconv.ParseFloat(f.number, 64)
	scale := map[string]float64{"k": 1e3, "M": 1e6, "G": 1e9, "ns": 1e-9, "µs": 1e-6, "ms": 1e-3}
	if s, ok := scale[f.unit]; ok {
		x *= s
	}
	return x
}

// TestFigureParsing: what the checker reads in a sentence.
func TestFigureParsing(t *testing.T) {
	for _, c := range []struct {
		text string
		want []string
	}{
		{"p50 101–132 µs for shmkit", []string{"101 µs", "132 µs"}},
		{"44.6/41.8/39.4/34.0 M ops/s (shmkit)", []string{"44.6 M", "41.8 M", "39.4 M", "34 M"}},
		{"p50 283 µs", []string{"283 µs"}},
		{"in 50% of 2 500 pairs", []string{"50 %", "2500 pairs"}},
		{"between 9 and 30 M/s", []string{"9 M", "30 M"}},
		{"4.7 and 5.8 million messages", []string{"4.7 M", "5.8 M"}},
		{"from 7.5 to 34 k/s", []string{"7.5 k", "34 k"}},
		{"sold 706–941× the tickets", []string{"706 ×", "941 ×"}},
		{"865 µs–1.12 ms", []string{"865 µs", "1.12 ms"}},
		{"(48 s)", []string{"48 s"}},
		{"112 000–146 000 tickets/s, 167,308 msgs/s", []string{"112000 /s", "146000 /s", "167308 /s"}},
		{"1000 kills, 13.6–15.1 ms, 132–140 M/s", []string{"1000 kills", "13.6 ms", "15.1 ms", "132 M", "140 M"}},
		{"137M, 168k; 9.84µs", []string{"137 M", "168 k", "9.84 µs"}},
		{"a 64-byte message, 4 MB, 8 msgs, 2 cores, 1/2/4/8 processes", nil},
		{"`go run ./cmd/bench latency -turn 20us -pause 5ms`", nil},
		{"```go\nd := 10 * time.Millisecond // 10 ms\n```\n", nil},
		{"<!-- output of lockfree\nvary: \\(\\d+ ms\\)\n-->\n```\nsold (59 ms with spawning)\n```\nthen 3 ms", []string{"3 ms"}},
	} {
		var got []string
		for _, f := range figures(c.text) {
			got = append(got, f.number+" "+f.unit)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("figures(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}
