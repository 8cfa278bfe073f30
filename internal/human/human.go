// Package human writes rates as cmd/bench prints them: three significant
// digits and a k, M or G suffix (95471903 is 95.5M). The docs' figures
// test reads the bench's tables through the same function.
package human

import "fmt"

// Split is x's short form as a number and its suffix ("95.5", "M").
func Split(x float64) (number, suffix string) {
	switch {
	case x >= 1e9:
		return fmt.Sprintf("%.3g", x/1e9), "G"
	case x >= 1e6:
		return fmt.Sprintf("%.3g", x/1e6), "M"
	case x >= 1e3:
		return fmt.Sprintf("%.3g", x/1e3), "k"
	}
	return fmt.Sprintf("%.3g", x), ""
}

// String is x's short form: "95.5M".
func String(x float64) string {
	n, s := Split(x)
	return n + s
}
