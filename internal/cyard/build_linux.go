//go:build linux

package cyard

import (
	"context"
	"crypto/sha256"
	"embed"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"time"
)

//go:embed crobust/yard.h crobust/yard.c
var source embed.FS

// Compiler returns the command that compiles C here: the words of $CC
// when it is set, else cc or gcc from PATH.
func Compiler() ([]string, error) {
	if cc := strings.Fields(os.Getenv("CC")); len(cc) > 0 {
		p, err := exec.LookPath(cc[0])
		if err != nil {
			return nil, fmt.Errorf("%w: $CC is %q: %v", ErrNoCompiler, os.Getenv("CC"), err)
		}
		return append([]string{p}, cc[1:]...), nil
	}
	for _, name := range []string{"cc", "gcc"} {
		if p, err := exec.LookPath(name); err == nil {
			return []string{p}, nil
		}
	}
	return nil, ErrNoCompiler
}

// flags are the compiler's flags: the ring's CRC-32C uses SSE4.2's
// instruction on amd64 (yard.h has a portable loop for the rest).
func flags() []string {
	f := []string{"-O2", "-pthread"}
	if runtime.GOARCH == "amd64" {
		f = append(f, "-msse4.2")
	}
	return f
}

var built struct {
	sync.Mutex
	path string
}

// Build returns the path of the yard program, compiling it first unless
// the cache already holds this source built by this compiler, and that
// file runs as yard (isYard). It is safe for concurrent use, by goroutines
// and by processes (a build goes to a directory of its own and is renamed
// into place). If ctx ends during a build, the compiler is killed with
// every process it started, and the error wraps ctx's cause.
func Build(ctx context.Context) (string, error) {
	built.Lock()
	defer built.Unlock()
	cc, err := Compiler()
	if err != nil {
		return "", err
	}
	h := sha256.New()
	for _, name := range []string{"yard.h", "yard.c"} {
		b, err := source.ReadFile("crobust/" + name)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	fmt.Fprintf(h, "%q %q %s\n", cc, flags(), runtime.GOARCH)
	dir, err := cacheDir()
	if err != nil {
		return "", err
	}
	path := filepath.Join(dir, fmt.Sprintf("yard-%x", h.Sum(nil)[:8]))
	if built.path == path { // checked once in this process; a changed $CC is another path
		if _, err := os.Stat(path); err == nil {
			return path, nil
		}
	}
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o100 != 0 && isYard(ctx, path) {
		built.path = path
		return path, nil
	}
	tmp, err := os.MkdirTemp(dir, "build-")
	if err != nil {
		return "", fmt.Errorf("cyard: %w", err)
	}
	defer os.RemoveAll(tmp)
	for _, name := range []string{"yard.h", "yard.c"} {
		b, _ := source.ReadFile("crobust/" + name) // read above
		if err := os.WriteFile(filepath.Join(tmp, name), b, 0o600); err != nil {
			return "", fmt.Errorf("cyard: %w", err)
		}
	}
	args := append(append(cc[1:len(cc):len(cc)], flags()...), "-o", filepath.Join(tmp, "yard"), filepath.Join(tmp, "yard.c"))
	cmd := exec.CommandContext(ctx, cc[0], args...)
	// A compiler is a driver and its passes (gcc's cc1, as, collect2),
	// its children. Cancelled, it must stop whole: killing the driver
	// alone left the passes running, orphans holding the output pipe
	// (Build waited for them) and leaving their temporary files behind.
	// So the compiler gets a process group of its own, killed whole,
	// and a TMPDIR inside tmp, which goes whatever happens.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = time.Second // a pass that escaped the group cannot hold Build
	cmd.Env = append(os.Environ(), "TMPDIR="+tmp)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return "", fmt.Errorf("cyard: building yard: %w", context.Cause(ctx))
		}
		return "", fmt.Errorf("%w: %s %s: %v\n%s", ErrBuild, cc[0], strings.Join(args, " "), err, tail(out, 2000))
	}
	if err := os.Rename(filepath.Join(tmp, "yard"), path); err != nil {
		return "", fmt.Errorf("cyard: %w", err)
	}
	built.path = path
	return path, nil
}

// isYard reports whether the program at path runs as yard: without a
// command it says what it wants and exits with status 2. A file in the
// cache may have been cut short (a crash before its bytes reached the
// disk) or replaced by another user of the cache; trusted for its name
// alone, it failed every run until someone deleted it by hand. Such a
// file is built again.
func isYard(ctx context.Context, path string) bool {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second) // a replaced program may never end
	defer cancel()
	var stderr syncBuffer
	cmd := exec.CommandContext(ctx, path)
	cmd.Stderr = &stderr
	var ee *exec.ExitError
	return errors.As(cmd.Run(), &ee) && ee.ExitCode() == 2 && strings.HasPrefix(string(stderr.Bytes()), "yard: want a command")
}

// cacheDir is shmkit's directory in the user's cache. Without one (no
// $HOME nor $XDG_CACHE_HOME) it is a directory of this user's in the temp
// directory, which must be this user's alone: a program is run from it.
func cacheDir() (string, error) {
	if base, err := os.UserCacheDir(); err == nil {
		dir := filepath.Join(base, "shmkit")
		if err := os.MkdirAll(dir, 0o700); err == nil {
			return dir, nil
		}
	}
	dir := filepath.Join(os.TempDir(), fmt.Sprintf("shmkit-cache-%d", os.Getuid()))
	if err := os.Mkdir(dir, 0o700); err != nil && !os.IsExist(err) {
		return "", fmt.Errorf("cyard: %w", err)
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return "", fmt.Errorf("cyard: %w", err)
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !fi.IsDir() || !ok || int(st.Uid) != os.Getuid() || fi.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("cyard: %s is not a private directory of this user's: not building a program there", dir)
	}
	return dir, nil
}

// tail is the last n bytes of b, as text.
func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimSpace(string(b))
}
