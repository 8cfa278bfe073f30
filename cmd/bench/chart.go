//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"html"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	"github.com/shmkit/shmkit/internal/human"
)

// The chart is SVG written by hand, not drawn with a plotting library:
// the one this used (gonum/plot) brought PDF, LaTeX and font packages
// whose init functions took about 1 ms in every process of this binary,
// the buyer children included, and spawn measures exactly that start.
// A log-log line chart is a few dozen elements.

// Chart size in pixels, the plot area's margins, and the strip on the
// right that holds the legend, so that it never covers a line.
const (
	chartWidth  = 768
	chartHeight = 432
	marginLeft  = 64
	marginTop   = 36
	marginBelow = 48
	legendWidth = 140
)

// Lines are told apart by colour, dashes and marker, as in print.
var (
	lineColors = []string{"#1b6fb5", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"}
	lineDashes = []string{"", "6,3", "2,3", "8,3,2,3", "10,4", "3,6", "12,3,3,3", "1,2"}
)

// point is one run of a backend: processes and ops/s.
type point struct{ procs, rate float64 }

// chart draws ops/s against buyer processes, one line per backend, both
// axes on a log scale (the backends differ by orders of magnitude; the
// process counts double), as SVG.
func chart(rs []Result) ([]byte, error) {
	cpus := runtime.NumCPU()
	if len(rs) > 0 && rs[0].CPUs > 0 {
		cpus = rs[0].CPUs // the machine that ran them, for a replot
	}
	var order []string
	lines := map[string][]point{}
	procs := map[int]bool{}
	lo, hi := math.Inf(1), 0.0
	pmin, pmax := math.Inf(1), 0.0
	zero := 0
	for _, r := range rs {
		if !(r.OpsPerSec > 0) || math.IsInf(r.OpsPerSec, 0) || r.Procs <= 0 {
			zero++ // a log scale has no 0: left out, and said so in the title
			continue
		}
		if _, ok := lines[r.Backend]; !ok {
			order = append(order, r.Backend)
		}
		lines[r.Backend] = append(lines[r.Backend], point{float64(r.Procs), r.OpsPerSec})
		procs[r.Procs] = true
		lo, hi = min(lo, r.OpsPerSec), max(hi, r.OpsPerSec)
		pmin, pmax = min(pmin, float64(r.Procs)), max(pmax, float64(r.Procs))
	}
	if len(order) == 0 {
		return nil, fmt.Errorf("bench: nothing to chart: no run sold a ticket (%d results, every rate 0)", len(rs))
	}
	title := fmt.Sprintf("Tickets sold per second (%d CPUs)", cpus)
	if zero > 0 {
		title += fmt.Sprintf(" — %d runs at 0/s not shown", zero)
	}

	// Axes: padded process counts (one count alone still has a width),
	// and whole powers of ten of rate, at least one apart.
	xlo, xhi := math.Log10(pmin/1.25), math.Log10(pmax*1.25)
	ylo, yhi := math.Floor(math.Log10(lo)), math.Ceil(math.Log10(hi))
	if yhi <= ylo {
		yhi = ylo + 1
	}
	left, right := float64(marginLeft), float64(chartWidth-legendWidth)
	top, bottom := float64(marginTop), float64(chartHeight-marginBelow)
	x := func(p float64) float64 { return left + (math.Log10(p)-xlo)/(xhi-xlo)*(right-left) }
	y := func(r float64) float64 { return bottom - (math.Log10(r)-ylo)/(yhi-ylo)*(bottom-top) }

	var b strings.Builder
	f := func(format string, args ...any) { fmt.Fprintf(&b, format, args...); b.WriteByte('\n') }
	f(`<?xml version="1.0" encoding="UTF-8"?>`)
	f(`<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" font-family="sans-serif" font-size="12">`,
		chartWidth, chartHeight, chartWidth, chartHeight)
	// One white background under the plot and the legend strip alike,
	// so that the chart reads on a dark page too.
	f(`<rect width="100%%" height="100%%" fill="white"/>`)
	f(`<text x="%.1f" y="22" text-anchor="middle" font-size="15">%s</text>`, (left+right)/2, html.EscapeString(title))

	// Grid and ticks: the process counts that ran, the powers of ten.
	ps := make([]int, 0, len(procs))
	for n := range procs {
		ps = append(ps, n)
	}
	slices.Sort(ps)
	for _, n := range ps {
		xx := x(float64(n))
		f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, xx, top, xx, bottom)
		f(`<text x="%.1f" y="%.1f" text-anchor="middle">%d</text>`, xx, bottom+16, n)
	}
	for e := ylo; e <= yhi; e++ {
		yy := y(math.Pow(10, e))
		f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#ddd"/>`, left, yy, right, yy)
		f(`<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle">%s</text>`, left-6, yy, human.String(math.Pow(10, e)))
	}
	f(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="black"/>`, left, top, right-left, bottom-top)
	f(`<text x="%.1f" y="%d" text-anchor="middle">buyer processes</text>`, (left+right)/2, chartHeight-10)
	f(`<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">tickets/s</text>`, (top+bottom)/2)

	// A line and markers per backend, and its legend entry.
	for i, name := range order {
		pts := lines[name]
		slices.SortFunc(pts, func(a, b point) int { return int(a.procs - b.procs) })
		color, dash := lineColors[i%len(lineColors)], lineDashes[i%len(lineDashes)]
		var xy []string
		for _, p := range pts {
			xy = append(xy, fmt.Sprintf("%.1f,%.1f", x(p.procs), y(p.rate)))
		}
		f(`<polyline points="%s" fill="none" stroke="%s" stroke-width="1.5" stroke-dasharray="%s"/>`, strings.Join(xy, " "), color, dash)
		for _, p := range pts {
			f(`%s`, marker(i, x(p.procs), y(p.rate), color))
		}
		ly := top + 8 + float64(i)*20
		lx := right + 12
		f(`<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="1.5" stroke-dasharray="%s"/>`, lx, ly, lx+28, ly, color, dash)
		f(`%s`, marker(i, lx+14, ly, color))
		f(`<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`, lx+36, ly, html.EscapeString(name))
	}
	f(`</svg>`)
	return []byte(b.String()), nil
}

// marker is the i-th line's point marker at (x, y).
func marker(i int, x, y float64, color string) string {
	const r = 3.5
	switch i % 4 {
	case 0:
		return fmt.Sprintf(`<circle cx="%.1f" cy="%.1f" r="%.1f" fill="none" stroke="%s"/>`, x, y, r, color)
	case 1:
		return fmt.Sprintf(`<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="%s"/>`, x-r, y-r, 2*r, 2*r, color)
	case 2:
		return fmt.Sprintf(`<polygon points="%.1f,%.1f %.1f,%.1f %.1f,%.1f" fill="none" stroke="%s"/>`, x, y-r, x+r, y+r, x-r, y+r, color)
	default:
		return fmt.Sprintf(`<path d="M%.1f %.1fL%.1f %.1fM%.1f %.1fL%.1f %.1f" stroke="%s"/>`, x-r, y-r, x+r, y+r, x-r, y+r, x+r, y-r, color)
	}
}

// runReplot redraws DIR/throughput.svg from DIR/results.json, for a change
// of the chart's look without a new run.
func runReplot(args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench replot", "bench replot DIR (with DIR/results.json from bench -out DIR)", stderr)
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if fs.NArg() != 1 {
		return usageError(fs, "want one directory")
	}
	dir := fs.Arg(0)
	b, err := os.ReadFile(filepath.Join(dir, "results.json"))
	if err != nil {
		return usageError(fs, "%v", err)
	}
	var rs []Result
	if err := json.Unmarshal(b, &rs); err != nil {
		return fmt.Errorf("bench replot: %s: %w", filepath.Join(dir, "results.json"), err)
	}
	svg, err := chart(rs)
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, "throughput.svg"), svg); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "wrote %s\n", filepath.Join(dir, "throughput.svg"))
	return nil
}
