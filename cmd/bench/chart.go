//go:build linux

package main

import (
	"bytes"
	"fmt"
	"runtime"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

// chart draws ops/s against buyer processes, one line per backend, on a
// log scale (the backends differ by orders of magnitude), as SVG.
func chart(rs []Result) ([]byte, error) {
	p := plot.New()
	p.Title.Text = fmt.Sprintf("Tickets sold per second (%d CPUs)", runtime.NumCPU())
	p.X.Label.Text = "buyer processes"
	p.Y.Label.Text = "tickets/s (log scale)"
	p.Y.Scale = plot.LogScale{}
	p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
	p.Legend.Top = true
	p.Legend.Left = true
	p.Add(plotter.NewGrid())

	var order []string
	lines := map[string]plotter.XYs{}
	for _, r := range rs {
		if r.OpsPerSec <= 0 {
			continue
		}
		if _, ok := lines[r.Backend]; !ok {
			order = append(order, r.Backend)
		}
		lines[r.Backend] = append(lines[r.Backend], plotter.XY{X: float64(r.Procs), Y: r.OpsPerSec})
	}
	var args []any
	for _, b := range order {
		args = append(args, b, lines[b])
	}
	if len(args) == 0 {
		return nil, fmt.Errorf("bench: nothing to chart")
	}
	if err := plotutil.AddLinePoints(p, args...); err != nil {
		return nil, err
	}
	w, err := p.WriterTo(7*vg.Inch, 4.5*vg.Inch, "svg")
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if _, err := w.WriteTo(&buf); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
