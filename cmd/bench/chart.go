//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image/color"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// Chart size, and the strip on the right that holds the legend, so that
// it never covers a line.
const (
	chartWidth  = 8 * vg.Inch
	chartHeight = 4.5 * vg.Inch
	legendWidth = 1.4 * vg.Inch
)

// chart draws ops/s against buyer processes, one line per backend, both
// axes on a log scale (the backends differ by orders of magnitude; the
// process counts double), as SVG.
func chart(rs []Result) (svg []byte, err error) {
	defer func() {
		// gonum/plot panics on data it cannot scale; a chart is not
		// worth a crash after a run whose results are already saved.
		if r := recover(); r != nil {
			svg, err = nil, fmt.Errorf("bench: cannot draw the chart: %v", r)
		}
	}()
	c := vgsvg.New(chartWidth, chartHeight)
	if err := drawChart(draw.New(c), rs); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func drawChart(dc draw.Canvas, rs []Result) error {
	// One white background under the plot and the legend strip alike,
	// so that the chart reads on a dark page too.
	dc.FillPolygon(color.White, []vg.Point{
		{X: dc.Min.X, Y: dc.Min.Y}, {X: dc.Max.X, Y: dc.Min.Y},
		{X: dc.Max.X, Y: dc.Max.Y}, {X: dc.Min.X, Y: dc.Max.Y},
	})
	p := plot.New()
	cpus := runtime.NumCPU()
	if len(rs) > 0 && rs[0].CPUs > 0 {
		cpus = rs[0].CPUs // the machine that ran them, for a replot
	}
	p.Title.Text = fmt.Sprintf("Tickets sold per second (%d CPUs)", cpus)
	p.X.Label.Text = "buyer processes"
	p.Y.Label.Text = "tickets/s"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.Add(plotter.NewGrid())

	var order []string
	lines := map[string]plotter.XYs{}
	procs := map[int]bool{}
	lo, hi := math.Inf(1), 0.0
	pmin, pmax := math.Inf(1), 0.0
	zero := 0
	for _, r := range rs {
		if r.OpsPerSec <= 0 || r.Procs <= 0 {
			zero++ // a log scale has no 0: left out, and said so below
			continue
		}
		if _, ok := lines[r.Backend]; !ok {
			order = append(order, r.Backend)
		}
		lines[r.Backend] = append(lines[r.Backend], plotter.XY{X: float64(r.Procs), Y: r.OpsPerSec})
		procs[r.Procs] = true
		lo, hi = min(lo, r.OpsPerSec), max(hi, r.OpsPerSec)
		pmin, pmax = min(pmin, float64(r.Procs)), max(pmax, float64(r.Procs))
	}
	if len(order) == 0 {
		return fmt.Errorf("bench: nothing to chart: no run sold a ticket (%d results, every rate 0)", len(rs))
	}
	if zero > 0 {
		p.Title.Text += fmt.Sprintf(" — %d runs at 0/s not shown", zero)
	}
	p.X.Tick.Marker = procTicks(procs)
	p.Y.Tick.Marker = rateTicks(lo, hi)
	// Explicit ranges, padded: one process count, or rates within one
	// power of ten, would leave an axis of zero width (gonum panics).
	p.X.Min, p.X.Max = pmin/1.25, pmax*1.25
	p.Y.Min, p.Y.Max = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))
	if p.Y.Max <= p.Y.Min {
		p.Y.Max = p.Y.Min * 10
	}

	legend := plot.NewLegend()
	for i, b := range order {
		l, pts, err := plotter.NewLinePoints(lines[b])
		if err != nil {
			return err
		}
		l.Color, l.Dashes = plotutil.Color(i), plotutil.Dashes(i)
		pts.Color, pts.Shape = plotutil.Color(i), plotutil.Shape(i)
		p.Add(l, pts)
		legend.Add(b, l, pts)
	}
	p.Draw(draw.Crop(dc, 0, -legendWidth, 0, 0))
	legend.Top, legend.Left = true, true
	legend.Draw(draw.Crop(dc, chartWidth-legendWidth+vg.Points(8), 0, 0, -vg.Points(30)))
	return nil
}

// procTicks labels exactly the process counts that ran.
func procTicks(procs map[int]bool) plot.ConstantTicks {
	var ts plot.ConstantTicks
	for n := 1; n <= maxBuyers; n++ {
		if procs[n] {
			ts = append(ts, plot.Tick{Value: float64(n), Label: fmt.Sprint(n)})
		}
	}
	return ts
}

// rateTicks labels the powers of ten from lo to hi: 10k, 100k, 1M, ...
func rateTicks(lo, hi float64) plot.ConstantTicks {
	var ts plot.ConstantTicks
	for e := math.Floor(math.Log10(lo)); e <= math.Ceil(math.Log10(hi)); e++ {
		ts = append(ts, plot.Tick{Value: math.Pow(10, e), Label: human(math.Pow(10, e))})
	}
	return ts
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
