//go:build linux

package main

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
)

// TestQueueJSON: every transport moves every message once, none torn, in
// both shapes; the JSON rows carry the fields the issue names.
func TestQueueJSON(t *testing.T) {
	out, stderr, err := runArgs(t, "queue", "-json", "-msgs", "20000", "-rounds", "2", "-pairs", "1x1,2x3", "-size", "100")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if want := 2 * len(queueBackends()); len(lines) != want {
		t.Fatalf("%d rows, want %d:\n%s", len(lines), want, out)
	}
	seen := map[string]bool{}
	for _, l := range lines {
		var r QueueRun
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		seen[r.Backend] = true
		if r.Msgs != 2*20000 || r.Lost != 0 || r.Dup != 0 || r.Torn != 0 || r.MsgsPerSec <= 0 || r.Size != 100 || r.Rounds != 2 || len(r.RoundMsgsPerSec) != 2 {
			t.Errorf("row %s", l)
		}
		var raw map[string]any
		json.Unmarshal([]byte(l), &raw)
		for _, k := range []string{"backend", "producers", "consumers", "size", "msgs", "seconds", "msgs_per_sec", "lost", "dup", "torn"} {
			if _, ok := raw[k]; !ok {
				t.Errorf("row lacks %q: %s", k, l)
			}
		}
	}
	for _, b := range queueBackends() {
		if !seen[b] {
			t.Errorf("no row for %s", b)
		}
	}
}

// TestPingPongAndQueueChaos: the two other queue commands run and say
// what they must (chaos: nothing lost or torn, duplicates only from dead
// consumers).
func TestPingPongAndQueueChaos(t *testing.T) {
	out, stderr, err := runArgs(t, "pingpong", "-json", "-n", "300")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var backends []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var p PingPong
		if err := json.Unmarshal([]byte(l), &p); err != nil || p.N != 300 || p.P50us <= 0 || p.P99us < p.P50us || p.MaxUs < p.P99us {
			t.Errorf("pingpong row %q: %v", l, err)
		}
		backends = append(backends, p.Backend)
	}
	if !slices.Equal(backends, []string{qShm, qPipe, qUnix}) {
		t.Errorf("pingpong backends %v", backends)
	}
	out, stderr, err = runArgs(t, "queue", "chaos", "-json", "-kills", "20", "-per", "3000")
	if err != nil {
		t.Fatalf("%v\n%s", err, stderr)
	}
	var c QueueChaos
	if err := json.Unmarshal([]byte(out), &c); err != nil {
		t.Fatal(err)
	}
	if c.Kills != 20 || c.Lost != 0 || c.Torn != 0 || c.Dup > int64(c.ConsumerKills) || c.Sent == 0 ||
		c.Received != c.Sent+c.Dup+c.InFlight {
		t.Errorf("queue chaos: %+v", c)
	}
}

func TestQueueBadFlags(t *testing.T) {
	for _, args := range [][]string{
		{"queue", "-backends", "carrier-pigeon"},
		{"queue", "-pairs", "0x1"},
		{"queue", "-pairs", "1by1"},
		{"queue", "-size", "8"},
		{"queue", "-msgs", "0"},
		{"pingpong", "-backends", "c-ring"},
		{"queue", "chaos", "-producers", "0"},
	} {
		if _, _, err := runArgs(t, args...); !errors.Is(err, errUsage) {
			t.Errorf("%v: %v, want a usage error", args, err)
		}
	}
}

// TestPutMsgFiller: the filler written 8 bytes at a time is the bytewise
// one, seq+i at byte i, for every size and a sequence number's every low
// byte (the carries a plain add would spill across bytes).
func TestPutMsgFiller(t *testing.T) {
	tab := castagnoli()
	for size := 12; size <= 80; size++ {
		m := make([]byte, size)
		for seq := uint32(1); seq < 600; seq += 7 {
			putMsg(m, 3, seq, tab)
			for i := 8; i < size-4; i++ {
				if m[i] != byte(seq+uint32(i)) {
					t.Fatalf("size %d, seq %d: byte %d is %d, want %d", size, seq, i, m[i], byte(seq+uint32(i)))
				}
			}
			if torn, _ := tally(m, make([]atomic.Uint64, 700), 640, 4, tab); torn {
				t.Fatalf("size %d, seq %d: tally finds it torn", size, seq)
			}
		}
	}
}
