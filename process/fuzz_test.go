//go:build linux

package process

import (
	"bytes"
	"reflect"
	"testing"
)

// FuzzReadSpec: any bytes on a warm child's socket end in a spec or an
// error, never a panic or a huge allocation, and a marshalled spec reads
// back as it was.
func FuzzReadSpec(f *testing.F) {
	f.Add(wireSpec{Entry: "e", Name: "Process-1", Identity: "1", Parent: 42, ParentName: "MainProcess", Args: []string{"a", "", "\xff"}}.marshal())
	f.Add([]byte{0, 0, 0, 0})
	f.Add([]byte{255, 255, 255, 255})
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := readSpec(bytes.NewReader(b))
		if err != nil {
			return
		}
		again, err := readSpec(bytes.NewReader(s.marshal()))
		if err != nil {
			t.Fatalf("a spec read from %q does not read back: %v", b, err)
		}
		if !reflect.DeepEqual(normal(s), normal(again)) {
			t.Fatalf("read back %+v, want %+v", again, s)
		}
	})
}

// normal makes an empty Args nil, as both read back alike.
func normal(s wireSpec) wireSpec {
	if len(s.Args) == 0 {
		s.Args = nil
	}
	return s
}
