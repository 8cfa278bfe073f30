//go:build linux

package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"
)

// printer writes either aligned text (a tabwriter, flushed at the end)
// or JSON, one object per line.
type printer struct {
	json bool
	w    io.Writer
	tw   *tabwriter.Writer
	enc  *json.Encoder
}

func newPrinter(w io.Writer, asJSON bool) *printer {
	return &printer{json: asJSON, w: w, tw: tabwriter.NewWriter(w, 0, 4, 2, ' ', 0), enc: json.NewEncoder(w)}
}

// object prints v as one JSON line.
func (p *printer) object(v any) {
	p.enc.Encode(v)
}

// row prints one line of tab-separated cells, aligned with its neighbours.
func (p *printer) row(cells ...any) {
	s := make([]string, len(cells))
	for i, c := range cells {
		s[i] = printable(fmt.Sprint(c))
	}
	fmt.Fprintln(p.tw, strings.Join(s, "\t"))
}

// line prints an unaligned line: the end of one table.
func (p *printer) line(format string, args ...any) {
	p.tw.Flush()
	fmt.Fprintln(p.w, printable(fmt.Sprintf(format, args...)))
}

// printable is s with what a terminal would act on escaped: file names
// are anybody's (another uid's in /dev/shm too), and a name holding an
// escape sequence or a newline must not paint the screen or forge a row.
// JSON output escapes them already.
func printable(s string) string {
	clean := utf8.ValidString(s) // a lone 0x9b is a CSI to some terminals
	for _, r := range s {
		if !clean || !unicode.IsPrint(r) || r == '\t' {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

func (p *printer) flush() { p.tw.Flush() }
