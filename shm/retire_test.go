//go:build linux

package shm

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapsLine is the line of /proc/self/maps that holds addr, "" if none.
func mapsLine(t *testing.T, addr uintptr) string {
	t.Helper()
	f, err := os.Open("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var lo, hi uintptr
		if _, err := fmt.Sscanf(sc.Text(), "%x-%x", &lo, &hi); err == nil && lo <= addr && addr < hi {
			return sc.Text()
		}
	}
	return ""
}

// sharedFile reports whether a maps line is a shared mapping of a file
// (an inode, "rw-s"); a retired range is private and anonymous (inode 0).
func sharedFile(line string) bool {
	f := strings.Fields(line)
	return len(f) >= 5 && f[1] == "rw-s" && f[4] != "0"
}

// mapsCount is the number of mappings (VMAs) of this process.
func mapsCount(t *testing.T) int {
	t.Helper()
	b, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "\n")
}

// TestViewAfterLastClose (issue 16, item 7): a view and a Data slice taken
// before the segment's last Close in this process, used after it, read
// zeros and write where no other process (nor a later Open) sees it: the
// range is retired, not unmapped. Before retire, the first Load after the
// Close was a SIGSEGV that killed the test binary.
func TestViewAfterLastClose(t *testing.T) {
	name := tempName(t)
	s, err := Create(name, 4096, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	v, err := s.Uint64(8)
	if err != nil {
		t.Fatal(err)
	}
	data := s.Data()
	v.Store(42)
	addr := uintptr(unsafe.Pointer(v))
	if line := mapsLine(t, addr); !sharedFile(line) {
		t.Fatalf("open: the view's page is mapped as %q, want the segment file, shared", line)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if line := mapsLine(t, addr); line == "" || sharedFile(line) {
		t.Fatalf("closed: the view's page is mapped as %q, want an anonymous private mapping", line)
	}
	if got := v.Load(); got != 0 {
		t.Errorf("view after Close reads %d, want 0", got)
	}
	v.Store(7)
	data[100] = 1
	again, err := Open(name, testTag)
	if err != nil {
		t.Fatal(err)
	}
	defer again.Close()
	w, err := again.Uint64(8)
	if err != nil {
		t.Fatal(err)
	}
	if got, b := w.Load(), again.Data()[100]; got != 42 || b != 0 {
		t.Errorf("reopened: word %d, byte %d; want 42 and 0 (writes after Close reach nobody)", got, b)
	}
	runtime.KeepAlive(s) // the views are used while the handle is held
}

// TestCloseRacesViews: goroutines hammer views and the data slice while
// another closes the segment's last handle. Nothing faults.
func TestCloseRacesViews(t *testing.T) {
	for range 50 {
		s, err := Create(tempName(t), 1<<16, testTag, nil)
		if err != nil {
			t.Fatal(err)
		}
		v, err := s.Uint64(0)
		if err != nil {
			t.Fatal(err)
		}
		data := s.Data()
		var wg sync.WaitGroup
		start := make(chan struct{})
		for g := range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				for i := range 20000 {
					v.Add(1)
					data[(g*4096+i*64)%len(data)]++
				}
			}()
		}
		close(start)
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		wg.Wait()
		runtime.KeepAlive(s) // the views are used while the handle is held
	}
}

// TestRetiredMappingsMerge: retired ranges stay reserved, so a process
// that opens and closes segments in a loop must not pile up one mapping
// per Close (vm.max_map_count is 65530 by default): adjacent retired
// ranges merge into one.
func TestRetiredMappingsMerge(t *testing.T) {
	name := tempName(t)
	s, err := Create(name, 1<<16, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	before := mapsCount(t)
	const loops = 3000
	for range loops {
		s, err := Open(name, testTag)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if after := mapsCount(t); after-before > 100 {
		t.Errorf("%d open/close loops left %d more mappings (from %d); retired ranges do not merge", loops, after-before, before)
	}
}

// TestRetiredRangesUnmapped: once no handle on a closed segment is
// reachable, its retired range is unmapped (a cleanup), so a loop that
// opens and closes segments, with other mappings between them that keep
// the ranges from merging, does not pile ranges up.
func TestRetiredRangesUnmapped(t *testing.T) {
	name := tempName(t)
	s, err := Create(name, 1<<16, testTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	before := mapsCount(t)
	const loops = 2000
	for i := range loops {
		s, err := Open(name, testTag)
		if err != nil {
			t.Fatal(err)
		}
		// A mapping of another size between two segments' keeps the
		// retired ranges apart.
		buf, err := unix.Mmap(-1, 0, 4096*(1+i%7), unix.PROT_READ, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		unix.Munmap(buf)
	}
	for range 100 {
		runtime.GC()
		if retired.count.Load() == 0 {
			break
		}
		time.Sleep(10 * time.Millisecond) // cleanups run after the collection, on a goroutine of their own
	}
	if n := retired.count.Load(); n != 0 {
		t.Errorf("%d retired ranges left mapped with no handle left", n)
	}
	if after := mapsCount(t); after-before > 100 {
		t.Errorf("%d loops left %d more mappings (from %d)", loops, after-before, before)
	}
}
