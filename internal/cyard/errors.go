package cyard

import "errors"

var (
	// ErrNoCompiler is returned by Build when there is no C compiler:
	// $CC unset and neither cc nor gcc on PATH.
	ErrNoCompiler = errors.New("cyard: no C compiler (install gcc, or set CC)")

	// ErrBuild is returned by Build when the compiler fails; the error
	// carries the end of its output.
	ErrBuild = errors.New("cyard: building the C yardsticks failed")

	// ErrOutput is returned for a line of yard's output that is not what
	// its command prints.
	ErrOutput = errors.New("cyard: unexpected output from yard")
)
