//go:build linux

package main

import (
	"bytes"
	"fmt"
	"math"
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
func chart(rs []Result) ([]byte, error) {
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
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Tickets sold per second (%d CPUs)", runtime.NumCPU())
	p.X.Label.Text = "buyer processes"
	p.Y.Label.Text = "tickets/s"
	p.X.Scale, p.Y.Scale = plot.LogScale{}, plot.LogScale{}
	p.Add(plotter.NewGrid())

	var order []string
	lines := map[string]plotter.XYs{}
	procs := map[int]bool{}
	lo, hi := math.Inf(1), 0.0
	for _, r := range rs {
		if r.OpsPerSec <= 0 {
			continue
		}
		if _, ok := lines[r.Backend]; !ok {
			order = append(order, r.Backend)
		}
		lines[r.Backend] = append(lines[r.Backend], plotter.XY{X: float64(r.Procs), Y: r.OpsPerSec})
		procs[r.Procs] = true
		lo, hi = min(lo, r.OpsPerSec), max(hi, r.OpsPerSec)
	}
	if len(order) == 0 {
		return fmt.Errorf("bench: nothing to chart")
	}
	p.X.Tick.Marker = procTicks(procs)
	p.Y.Tick.Marker = rateTicks(lo, hi)
	p.Y.Min, p.Y.Max = math.Pow(10, math.Floor(math.Log10(lo))), math.Pow(10, math.Ceil(math.Log10(hi)))

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
