//go:build linux

package cyard

import (
	"context"
	"crypto/sha256"
	"embed"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
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
// the cache already holds this source built by this compiler. It is safe
// for concurrent use, by goroutines and by processes (a build goes to a
// directory of its own and is renamed into place).
func Build(ctx context.Context) (string, error) {
	built.Lock()
	defer built.Unlock()
	if built.path != "" {
		if _, err := os.Stat(built.path); err == nil {
			return built.path, nil
		}
	}
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
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o100 != 0 {
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
	out, err := exec.CommandContext(ctx, cc[0], args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w: %s %s: %v\n%s", ErrBuild, cc[0], strings.Join(args, " "), err, tail(out, 2000))
	}
	if err := os.Rename(filepath.Join(tmp, "yard"), path); err != nil {
		return "", fmt.Errorf("cyard: %w", err)
	}
	built.path = path
	return path, nil
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
