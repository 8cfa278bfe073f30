//go:build linux

package queue

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

// newQueue makes a fresh queue, closed (and removed) when the test ends.
func newQueue(t *testing.T, capacity, maxSize int) (string, *Queue) {
	t.Helper()
	name := tempName(t)
	q, err := Create(context.Background(), name, capacity, maxSize)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { q.Close() })
	return name, q
}

// TestBasics: one process: send, receive, sizes, closing, errors.
func TestBasics(t *testing.T) {
	ctx := context.Background()
	name := tempName(t)
	q, err := Create(ctx, name, 3, 16) // 3 rounds up to 4
	if err != nil {
		t.Fatal(err)
	}
	if q.Cap() != 4 || q.MaxSize() != 16 || q.Len() != 0 {
		t.Fatalf("Cap %d, MaxSize %d, Len %d; want 4, 16, 0", q.Cap(), q.MaxSize(), q.Len())
	}
	for i := range 4 {
		if ok, err := q.TrySend([]byte{byte(i), 'x'}); !ok || err != nil {
			t.Fatalf("TrySend %d: %v %v", i, ok, err)
		}
	}
	if ok, err := q.TrySend([]byte("full")); ok || err != nil {
		t.Fatalf("TrySend on a full queue: %v %v; want false, nil", ok, err)
	}
	if q.Len() != 4 {
		t.Errorf("Len %d, want 4", q.Len())
	}
	if err := q.Send(ctx, make([]byte, 17)); !errors.Is(err, ErrTooBig) {
		t.Errorf("Send of 17 bytes: %v, want ErrTooBig", err)
	}
	short := make([]byte, 1)
	if _, err := q.Recv(ctx, short); !errors.Is(err, ErrShortBuffer) {
		t.Errorf("Recv into 1 byte: %v, want ErrShortBuffer", err)
	}
	buf := make([]byte, 16)
	for i := range 4 {
		n, err := q.Recv(ctx, buf)
		if err != nil || n != 2 || buf[0] != byte(i) {
			t.Fatalf("Recv %d: %d %v %q", i, n, err, buf[:n])
		}
	}
	if _, ok, err := q.TryRecv(buf); ok || err != nil {
		t.Errorf("TryRecv on an empty queue: %v %v", ok, err)
	}
	dctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	if _, err := q.Recv(dctx, buf); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Recv on an empty queue with a deadline: %v", err)
	}
	cancel()
	// Wrap around the ring many times.
	for i := range 1000 {
		if err := q.Send(ctx, []byte(strconv.Itoa(i))); err != nil {
			t.Fatal(err)
		}
		m, err := q.RecvMsg(ctx)
		if err != nil || string(m) != strconv.Itoa(i) {
			t.Fatalf("round %d: %q %v", i, m, err)
		}
	}
	q.Send(ctx, []byte("last"))
	if err := q.CloseSend(); err != nil {
		t.Fatal(err)
	}
	if err := q.CloseSend(); !errors.Is(err, ErrSendClosed) {
		t.Errorf("second CloseSend: %v", err)
	}
	if err := q.Send(ctx, []byte("late")); !errors.Is(err, ErrSendClosed) {
		t.Errorf("Send after CloseSend: %v", err)
	}
	if m, err := q.RecvMsg(ctx); err != nil || string(m) != "last" {
		t.Errorf("draining: %q %v", m, err)
	}
	for range 2 {
		if _, err := q.Recv(ctx, buf); err != io.EOF {
			t.Errorf("Recv after the drain: %v, want io.EOF", err)
		}
	}
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Send after Close: %v", err)
	}
	if err := q.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close: %v", err)
	}
	var zero Queue
	if _, err := zero.Recv(ctx, buf); !errors.Is(err, ErrClosed) {
		t.Errorf("zero Queue: %v", err)
	}
	if zero.Len() != 0 || zero.Cap() != 0 || zero.Close() == nil {
		t.Error("zero Queue: Len, Cap or Close")
	}
}

// TestOpenVocabulary: Open, Create and OpenOrCreate, and what they refuse.
func TestOpenVocabulary(t *testing.T) {
	ctx := context.Background()
	name := tempName(t)
	if _, err := Open(ctx, name); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Open of nothing: %v", err)
	}
	q, err := OpenOrCreate(ctx, name, 8, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	if _, err := Create(ctx, name, 8, 64); !errors.Is(err, fs.ErrExist) {
		t.Errorf("Create over it: %v", err)
	}
	if _, err := OpenOrCreate(ctx, name, 16, 64); !errors.Is(err, ErrCapacityMismatch) {
		t.Errorf("OpenOrCreate of another capacity: %v", err)
	}
	if _, err := OpenOrCreate(ctx, name, 8, 32); !errors.Is(err, ErrSizeMismatch) {
		t.Errorf("OpenOrCreate of another message size: %v", err)
	}
	for _, bad := range [][2]int{{0, 8}, {8, 0}, {MaxCapacity + 1, 8}, {8, MaxMessage + 1}} {
		if _, err := Create(ctx, tempName(t), bad[0], bad[1]); err == nil {
			t.Errorf("Create(%d, %d): no error", bad[0], bad[1])
		}
	}
	other := tempName(t)
	seg, err := shm.Create(other, 64, "queue.Queue/0", nil)
	if err != nil {
		t.Fatal(err)
	}
	seg.Close()
	if _, err := Open(ctx, other); !errors.Is(err, ErrLayoutVersion) || !errors.Is(err, shm.ErrTypeMismatch) {
		t.Errorf("Open of an older layout: %v", err)
	}
	again, err := Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	again.Send(ctx, []byte("hi")) // a second handle of this process
	if m, err := q.RecvMsg(ctx); err != nil || string(m) != "hi" {
		t.Errorf("across handles: %q %v", m, err)
	}
	again.Close()
}

// TestGoroutines: many goroutines of one process share a handle.
func TestGoroutines(t *testing.T) {
	ctx := context.Background()
	q, err := Create(ctx, tempName(t), 16, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	const senders, per = 8, 2000
	var wg sync.WaitGroup
	for g := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 16)
			for i := range per {
				makeMsg(buf, uint32(g), uint32(i+1))
				if err := q.Send(ctx, buf); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	seen := make([][]int, senders)
	for i := range seen {
		seen[i] = make([]int, per+1)
	}
	var mu sync.Mutex
	var rg sync.WaitGroup
	for range 4 {
		rg.Add(1)
		go func() {
			defer rg.Done()
			buf := make([]byte, 16)
			for {
				n, err := q.Recv(ctx, buf)
				if err == io.EOF {
					return
				}
				if err != nil {
					t.Error(err)
					return
				}
				id, seq, ok := readMsg(buf[:n])
				mu.Lock()
				if !ok || int(id) >= senders || seq == 0 || seq > per {
					t.Errorf("torn or foreign message %x", buf[:n])
				} else {
					seen[id][seq]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	q.CloseSend()
	rg.Wait()
	for id := range seen {
		for seq := 1; seq <= per; seq++ {
			if seen[id][seq] != 1 {
				t.Fatalf("producer %d message %d received %d times", id, seq, seen[id][seq])
			}
		}
	}
}

// received reads consumers' record files: per producer, how many times
// each sequence number came, and torn messages. It also checks that each
// consumer saw each producer's messages in order, except a redelivered
// one (allowed once per consumer kill).
func received(t *testing.T, files []string, producers, n int) (counts [][]int, torn, disorder int) {
	t.Helper()
	counts = make([][]int, producers)
	for i := range counts {
		counts[i] = make([]int, n+2)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		last := make([]uint32, producers)
		for i := 0; i+8 <= len(b); i += 8 {
			id, seq := binary.LittleEndian.Uint32(b[i:]), binary.LittleEndian.Uint32(b[i+4:])
			if id == ^uint32(0) || int(id) >= producers || seq == 0 || int(seq) > n {
				torn++
				continue
			}
			counts[id][seq]++
			if seq <= last[id] {
				disorder++
			}
			last[id] = seq
		}
	}
	return counts, torn, disorder
}

// TestManyProcesses: 4 producer and 3 consumer processes through a small
// queue: every message received exactly once, none torn, each producer's
// messages in order at each consumer.
func TestManyProcesses(t *testing.T) {
	name, q := newQueue(t, 8, 64)
	const producers, consumers, n = 4, 3, 5000
	dir := t.TempDir()
	var files []string
	var cs []*testproc.Proc
	for i := range consumers {
		f := filepath.Join(dir, "c"+strconv.Itoa(i))
		files = append(files, f)
		cs = append(cs, testproc.Start(t, "consume", name, f))
	}
	var ps []*testproc.Proc
	for i := range producers {
		ps = append(ps, testproc.Start(t, "produce", name, strconv.Itoa(i), strconv.Itoa(n), "64"))
	}
	for _, p := range ps {
		p.Expect("sent")
		p.MustExit()
	}
	if err := q.CloseSend(); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		c.ExpectPrefix("done ")
		c.MustExit()
	}
	counts, torn, disorder := received(t, files, producers, n)
	if torn != 0 || disorder != 0 {
		t.Errorf("torn %d, out of order %d", torn, disorder)
	}
	for id := range producers {
		for seq := 1; seq <= n; seq++ {
			if counts[id][seq] != 1 {
				t.Fatalf("producer %d message %d received %d times", id, seq, counts[id][seq])
			}
		}
	}
}

// TestDeadWriter: a producer killed after reserving its cell, before it
// published: its message is never delivered (its Send never returned),
// and the queue goes on: a later message is received.
func TestDeadWriter(t *testing.T) {
	ctx := context.Background()
	name, q := newQueue(t, 4, 64)
	p := testproc.Start(t, "die-at", name, "reserved", "send")
	p.Expect("at reserved")
	p.Wait()
	buf := make([]byte, 64)
	makeMsg(buf, 1, 1)
	if err := q.Send(ctx, buf); err != nil {
		t.Fatal(err)
	}
	recvWant(t, ctx, q, buf, 1, 1, "after a dead writer")
	if _, ok, err := q.TryRecv(buf); ok || err != nil {
		t.Errorf("the dead writer's message came: %v %v", ok, err)
	}
}

// TestDeadTaker: a consumer killed while taking a message: the message is
// delivered again, to the next consumer.
func TestDeadTaker(t *testing.T) {
	ctx := context.Background()
	name, q := newQueue(t, 4, 64)
	buf := make([]byte, 64)
	makeMsg(buf, 7, 1)
	q.Send(ctx, buf)
	makeMsg(buf, 7, 2)
	q.Send(ctx, buf)
	p := testproc.Start(t, "die-at", name, "taking", "recv")
	p.Expect("at taking")
	p.Wait()
	for want := uint32(1); want <= 2; want++ {
		recvWant(t, ctx, q, buf, 7, want, fmt.Sprintf("message %d", want))
	}
}

// TestStoppedTakerSlotReuse: the identity attack. A consumer dies taking
// message 1; another process claims its slot (the lowest free), settles
// the cell, and takes message 1 itself, stopped (SIGSTOP) right there:
// alive. This process must not take message 1 from it, although the
// cell names the same slot as the dead consumer did. Once the stopped one
// is killed, message 1 comes here, once.
func TestStoppedTakerSlotReuse(t *testing.T) {
	ctx := context.Background()
	name, q := newQueue(t, 4, 64)
	buf := make([]byte, 64)
	makeMsg(buf, 3, 1)
	q.Send(ctx, buf)
	dead := testproc.Start(t, "die-at", name, "taking", "recv")
	dead.Expect("at taking")
	dead.Wait()
	stopped := testproc.Start(t, "stop-at", name, "taking", "recv")
	stopped.Expect("at taking")
	slots, _ := q.Segment().Slots()
	live := 0
	for _, s := range slots {
		if s.Alive {
			live++
		}
	}
	if live != 2 || len(slots) != 2 {
		t.Fatalf("slots %+v: want ours and the stopped process's, the dead one's reused", slots)
	}
	// Every liveness check this Recv makes must find the stopped process
	// alive: it waits, then gives up at its deadline.
	dctx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancel()
	if n, err := q.Recv(dctx, buf); !errors.Is(err, context.DeadlineExceeded) {
		id, seq, _ := readMsg(buf[:n])
		t.Fatalf("Recv took message %d/%d from a live (stopped) taker: %v", id, seq, err)
	}
	stopped.Kill()
	stopped.Wait()
	recvWant(t, ctx, q, buf, 3, 1, "after the stopped taker's death")
}

// TestStoppedWriterBlocksNobodyElse: a producer stopped after reserving a
// cell (alive, so its cell is waited for) does not keep other producers
// from sending; once it is killed, receivers get past its cell.
func TestStoppedWriterBlocksNobodyElse(t *testing.T) {
	ctx := context.Background()
	name, q := newQueue(t, 8, 64)
	p := testproc.Start(t, "stop-at", name, "reserved", "send")
	p.Expect("at reserved")
	buf := make([]byte, 64)
	for i := range 3 {
		makeMsg(buf, 1, uint32(i+1))
		if ok, err := q.TrySend(buf); !ok || err != nil {
			t.Fatalf("send %d past a stopped producer's cell: %v %v", i, ok, err)
		}
	}
	if _, ok, err := q.TryRecv(buf); ok || err != nil {
		t.Fatalf("TryRecv took something past a live producer's cell: %v %v", ok, err)
	}
	p.Kill()
	p.Wait()
	for i := range 3 {
		recvWant(t, ctx, q, buf, 1, uint32(i+1), fmt.Sprintf("message %d after the writer's death", i+1))
	}
}

// TestCloseSendWakes: receivers asleep on an empty queue in other
// processes wake at CloseSend and get io.EOF.
func TestCloseSendWakes(t *testing.T) {
	name, q := newQueue(t, 8, 64)
	dir := t.TempDir()
	var cs []*testproc.Proc
	for i := range 3 {
		cs = append(cs, testproc.Start(t, "consume", name, filepath.Join(dir, strconv.Itoa(i))))
	}
	time.Sleep(100 * time.Millisecond) // let them fall asleep: not needed for the result
	q.CloseSend()
	for _, c := range cs {
		c.Expect("done 0")
		c.MustExit()
	}
}

// TestCloseWithBlockedCalls: Close of a handle with goroutines blocked in
// Recv and Send returns, and so do they, with ErrClosed.
func TestCloseWithBlockedCalls(t *testing.T) {
	ctx := context.Background()
	name := tempName(t)
	q, err := Create(ctx, name, 1, 8)
	if err != nil {
		t.Fatal(err)
	}
	q.Send(ctx, []byte("x")) // full now
	empty, err := Create(ctx, tempName(t), 1, 8)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	go func() { errs <- q.Send(ctx, []byte("y")) }()
	go func() { _, err := empty.Recv(ctx, make([]byte, 8)); errs <- err }()
	time.Sleep(50 * time.Millisecond)
	if err := q.Close(); err != nil {
		t.Fatal(err)
	}
	if err := empty.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := <-errs; !errors.Is(err, ErrClosed) {
			t.Errorf("blocked call after Close: %v", err)
		}
	}
}

// TestKilledProducers: producers SIGKILLed at random moments and
// restarted, consumers running: every message whose Send returned is
// received exactly once, a message whose Send was cut short at most once,
// none torn.
func TestKilledProducers(t *testing.T) {
	killTest(t, true, false)
}

// TestKilledConsumers: consumers SIGKILLed at random moments and
// restarted: no message lost or torn; a message is received twice only
// where a consumer died taking it.
func TestKilledConsumers(t *testing.T) {
	killTest(t, false, true)
}

func killTest(t *testing.T, killProducers, killConsumers bool) {
	name, q := newQueue(t, 16, 64)
	acks := tempName(t)
	aseg, err := shm.Create(acks, 64, ackTag, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer aseg.Close()
	const producers, consumers, n, kills = 2, 2, 20000, 20
	dir := t.TempDir()
	files := make([]string, consumers)
	cs := make([]*testproc.Proc, consumers)
	ps := make([]*testproc.Proc, producers)
	startC := func(i int) {
		files[i] = filepath.Join(dir, "c"+strconv.Itoa(i))
		cs[i] = testproc.Start(t, "consume", name, files[i])
	}
	startP := func(i int) {
		ps[i] = testproc.Start(t, "produce", name, strconv.Itoa(i), strconv.Itoa(n), "64", acks)
	}
	for i := range consumers {
		startC(i)
	}
	for i := range producers {
		startP(i)
	}
	consumerKills := 0
	for k := range kills {
		time.Sleep(time.Duration(5+k%7) * time.Millisecond) // moments spread, not a timing
		if killProducers {
			i := k % producers
			ps[i].Kill()
			ps[i].Wait()
			startP(i)
		}
		if killConsumers {
			i := k % consumers
			cs[i].Kill()
			cs[i].Wait()
			consumerKills++
			startC(i) // appends to the same file
		}
	}
	for _, p := range ps {
		p.Expect("sent")
		p.MustExit()
	}
	q.CloseSend()
	for _, c := range cs {
		c.ExpectPrefix("done ")
		c.MustExit()
	}
	counts, torn, _ := received(t, files, producers, n)
	if torn != 0 {
		t.Errorf("%d torn messages", torn)
	}
	dups := 0
	for id := range producers {
		for seq := 1; seq <= n; seq++ {
			switch c := counts[id][seq]; {
			case c == 0:
				t.Errorf("producer %d message %d lost", id, seq)
			case c > 1:
				dups += c - 1
			}
		}
	}
	// A killed consumer may have taken one message and recorded it
	// before its death (then it comes again), or not; a killed producer
	// restarts after its last acknowledged message, so one cut short
	// after publishing comes twice with the same number.
	limit := 0
	if killConsumers {
		limit += consumerKills
	}
	if killProducers {
		limit += kills
	}
	if dups > limit {
		t.Errorf("%d duplicates, more than the %d deaths explain", dups, limit)
	}
	t.Logf("kills %d: duplicates %d", kills, dups)
}

// TestDeadWriterAtTail (from the queue's adversarial review): a producer
// killed after reserving its cell and before moving the tail: the
// receiver that drops its cell moves the tail first, so the head never
// passes the tail; the queue opens again, takes messages, and closes with
// io.EOF.
func TestDeadWriterAtTail(t *testing.T) {
	ctx := context.Background()
	name, q := newQueue(t, 4, 64)
	p := testproc.Start(t, "die-at", name, "reserved", "send")
	p.Expect("at reserved")
	p.Wait()
	buf := make([]byte, 64)
	for range 3 { // the liveness look comes on the second try
		if _, ok, err := q.TryRecv(buf); ok || err != nil {
			t.Fatalf("TryRecv: %v %v", ok, err)
		}
	}
	if h, tl := q.head.Load(), q.tail.Load(); h > tl {
		t.Fatalf("head %d past tail %d", h, tl)
	}
	again, err := Open(ctx, name)
	if err != nil {
		t.Fatalf("Open after the drop: %v", err)
	}
	again.Close()
	makeMsg(buf, 1, 1)
	if err := q.Send(ctx, buf); err != nil {
		t.Fatal(err)
	}
	if _, err := q.Recv(ctx, buf); err != nil {
		t.Fatal(err)
	}
	q.CloseSend()
	if _, err := q.Recv(ctx, buf); err != io.EOF {
		t.Fatalf("Recv after CloseSend: %v, want io.EOF", err)
	}
}

// TestRetryCountABA (from the queue's adversarial review): receiver R
// decides that the receiver taking message 1 (P, killed there) is dead,
// and stops before its CAS. P's slot goes to Q, which settles the cell,
// puts message 1 back 62 times (ErrShortBuffer), bringing the retry
// count round to what R saw, then takes it and stops inside RecvFunc. R
// goes on: its CAS must fail (the word now names Q's slot generation, not
// P's), so message 1 goes to Q alone, and R gets message 2.
func TestRetryCountABA(t *testing.T) {
	q := staleTaker(t, nil, "putbacks", "62") // slot 2 again, 62 put-backs
	if _, ok, err := q.TryRecv(make([]byte, 64)); ok || err != nil {
		t.Errorf("a message left over: %v %v", ok, err)
	}
}

// staleTaker is the attack of TestRetryCountABA and TestGenerationABA.
// Message 1 is sent to a queue of one cell; receiver R (slot 1) waits to
// start; P (slot 2) dies taking message 1; R decides P is dead and stops
// before its CAS. Then holder Q starts (entry with args, and its inside
// gate appended), takes P's slot and, once put-backs or re-opens have
// brought its word round, stops inside RecvFunc holding message 1; check
// looks at the queue then. R is let go, then Q. Message 1 must go to Q
// alone, and message 2, sent after, to R.
func staleTaker(t *testing.T, check func(q *Queue), entry string, args ...string) *Queue {
	t.Helper()
	ctx := context.Background()
	name, q := newQueue(t, 1, 64)
	buf := make([]byte, 64)
	makeMsg(buf, 5, 1)
	q.Send(ctx, buf)
	dir := t.TempDir()
	start, decided, inside := filepath.Join(dir, "start"), filepath.Join(dir, "decided"), filepath.Join(dir, "inside")
	r := testproc.Start(t, "gated-take", name, start, decided) // slot 1, waits to start
	r.Expect("ready")
	p := testproc.Start(t, "die-at", name, "taking", "recv") // slot 2: taking(tries 1), then dead
	p.Expect("at taking")
	p.Wait()
	os.WriteFile(start, nil, 0o600)
	r.Expect("decided")
	holder := testproc.Start(t, entry, append(append([]string{name}, args...), inside)...)
	holder.Expect("inside")
	if check != nil {
		check(q)
	}
	os.WriteFile(decided, nil, 0o600)  // R's CAS (or seizure) now, while Q is inside
	time.Sleep(100 * time.Millisecond) // for R to get to it: an order, not a measured time
	os.WriteFile(inside, nil, 0o600)
	holder.Expect("got 5 1 <nil>")
	makeMsg(buf, 5, 2)
	if err := q.Send(ctx, buf); err != nil {
		t.Fatal(err)
	}
	r.Expect("got 5 2 <nil>")
	return q
}

// TestShortBufferPassesWake (from the queue's adversarial review): two
// receivers asleep, the first with a buffer too short; a Send wakes it,
// it puts the message back, and the other must be woken too, not left to
// its sleep's end (a second: far beyond the deadline below).
func TestShortBufferPassesWake(t *testing.T) {
	ctx := context.Background()
	q, err := Create(ctx, tempName(t), 4, 64)
	if err != nil {
		t.Fatal(err)
	}
	short := make(chan error, 1)
	go func() { _, err := q.Recv(ctx, make([]byte, 1)); short <- err }()
	got := make(chan error, 1)
	go func() {
		dctx, cancel := context.WithTimeout(ctx, 600*time.Millisecond)
		defer cancel()
		_, err := q.Recv(dctx, make([]byte, 64))
		got <- err
	}()
	time.Sleep(50 * time.Millisecond) // both asleep by now: an order, not a measured time
	if err := q.Send(ctx, []byte("a message longer than one byte")); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Errorf("the other receiver: %v (its wake-up was lost)", err)
	}
	q.Close() // the short receiver, if it came second, waits still: Close ends it
	if err := <-short; !errors.Is(err, ErrShortBuffer) && !errors.Is(err, ErrClosed) {
		t.Errorf("the short receiver: %v", err)
	}
}

// TestManyDroppedAtHead (from the second review): 200 writers killed
// holding reserved cells (40 processes, 5 goroutines each: a process has
// 6 lanes); Repair drops them without moving the head, and producers
// fill the freed cells for the next lap, so the tail runs more than a
// lap ahead of the head. That is a healthy queue: it opens, and every
// message comes out.
func TestManyDroppedAtHead(t *testing.T) {
	ctx := context.Background()
	name, q := newQueue(t, 256, 16)
	var ps []*testproc.Proc
	for range 40 {
		p := testproc.Start(t, "many-reserved", name, "5")
		p.Expect("reserved 5")
		ps = append(ps, p)
	}
	if in, err := Inspect(q.Segment()); err != nil || len(in.Writing) != 200 {
		t.Fatalf("Inspect: %d cells writing, %v; want 200", len(in.Writing), err)
	}
	for _, p := range ps {
		p.Kill()
		p.Wait()
	}
	if in, err := Inspect(q.Segment()); err != nil || len(in.Writing) != 200 || slices.ContainsFunc(in.Writing, func(c CellState) bool { return c.Alive }) {
		t.Fatalf("Inspect after the kills: %d cells writing (%v), want 200, none of a live process", len(in.Writing), err)
	}
	n, err := Repair(ctx, name)
	if err != nil || n != 200 {
		t.Fatalf("Repair: %d, %v; want 200 cells", n, err)
	}
	sent := 0
	for {
		ok, err := q.TrySend([]byte{byte(sent)})
		if err != nil {
			t.Fatal(err)
		}
		if !ok {
			break
		}
		sent++
	}
	again, err := Open(ctx, name)
	if err != nil {
		t.Fatalf("Open with the tail %d ahead of the head: %v", q.tail.Load()-q.head.Load(), err)
	}
	defer again.Close()
	buf := make([]byte, 16)
	for i := range sent {
		if n, err := again.Recv(ctx, buf); err != nil || n != 1 || buf[0] != byte(i) {
			t.Fatalf("message %d: %d %v %v", i, n, err, buf[:n])
		}
	}
}

// TestLanesFull: more goroutines of one process sending at once than
// it has lanes (42 through 6): each Send waits for a lane, every message
// comes, in each producer's order, and every lane is free after.
func TestLanesFull(t *testing.T) {
	ctx := context.Background()
	_, q := newQueue(t, 1024, 16)
	var wg sync.WaitGroup
	const g, n = 7 * lanes, 200
	for i := range g {
		wg.Go(func() {
			for j := range n {
				if err := q.Send(ctx, []byte{byte(i), byte(j)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	got := make([]int, g)
	buf := make([]byte, 16)
	for range g * n {
		k, err := q.Recv(ctx, buf)
		if err != nil || k != 2 {
			t.Fatalf("Recv: %d %v", k, err)
		}
		if int(buf[1]) != got[buf[0]]%256 {
			t.Fatalf("producer %d: message %d, want %d (per-producer order)", buf[0], buf[1], got[buf[0]])
		}
		got[buf[0]]++
	}
	wg.Wait()
	for i := range lanes {
		if v := q.lane(q.me.Index, i).Load(); v != 0 {
			t.Errorf("lane %d holds %#x after every Send returned", i, v)
		}
	}
}

// TestDeadIntent: a producer killed after writing its intent for
// position 0 and before its CAS: it reserved nothing. A live producer,
// stopped right after reserving position 0 itself, must not have its
// cell dropped because a dead process's lane names the same position;
// once it is killed too, the cell is dropped and the queue goes on.
func TestDeadIntent(t *testing.T) {
	ctx := context.Background()
	name, q := newQueue(t, 4, 64)
	dead := testproc.Start(t, "die-at", name, "intent", "send")
	dead.Expect("at intent")
	dead.Wait()
	stopped := testproc.Start(t, "stop-at", name, "reserved", "send")
	stopped.Expect("at reserved")
	buf := make([]byte, 64)
	for range 3 {
		if _, ok, err := q.TryRecv(buf); ok || err != nil {
			t.Fatalf("TryRecv past a live producer's reserved cell: %v %v", ok, err)
		}
	}
	if q.head.Load() != 0 {
		t.Fatalf("the head moved past a live producer's cell: %d", q.head.Load())
	}
	stopped.Kill()
	stopped.Wait()
	makeMsg(buf, 1, 1)
	if err := q.Send(ctx, buf); err != nil {
		t.Fatal(err)
	}
	recvWant(t, ctx, q, buf, 1, 1, "after both deaths")
}

// TestStoppedIntent: a producer stopped after writing its intent for
// position 0, before its CAS (alive: its lane names position 0), and
// another killed after reserving position 0. The cell waits while the
// stopped one's stale intent could be the writer's; once it runs on (its
// CAS fails, it clears its intent and sends at position 1), the cell is
// dropped and its message comes.
func TestStoppedIntent(t *testing.T) {
	ctx := context.Background()
	name, q := newQueue(t, 4, 64)
	stopped := testproc.Start(t, "stop-at", name, "intent", "send")
	stopped.Expect("at intent")
	dead := testproc.Start(t, "die-at", name, "reserved", "send")
	dead.Expect("at reserved")
	dead.Wait()
	buf := make([]byte, 64)
	for range 3 {
		if n, ok, err := q.TryRecv(buf); ok || err != nil {
			id, seq, _ := readMsg(buf[:n])
			t.Fatalf("TryRecv: %v %v, message %d/%d; head %d, tail %d; the stopped one said %q, the dead one %q",
				ok, err, id, seq, q.head.Load(), q.tail.Load(), stopped.Output(), dead.Output())
		}
	}
	if q.head.Load() != 0 {
		t.Fatalf("the cell was dropped while a live lane named it")
	}
	stopped.Signal(syscall.SIGCONT)
	stopped.Expect("returned <nil>")
	recvWant(t, ctx, q, buf, 99, 1, "the stopped producer's message")
	if h := q.head.Load(); h != 2 {
		t.Fatalf("head %d, want 2: the dead producer's cell dropped, the live one's received", h)
	}
}

// TestGenerationABA (from the second review): as TestRetryCountABA, but
// the process that takes the dead receiver's slot first opens and closes
// the queue 255 times, so that its generation ends in the dead one's 8
// bits, and puts the message back 30 times, so that the retry count (5
// bits) comes round too: its word is the very word R looked at. R's
// seizure then freezes a live holder's word; its second look finds the
// holder alive, and it gives the cell back. Message 1 goes to Q alone,
// message 2 to R; nothing is lost, the queue goes on.
func TestGenerationABA(t *testing.T) {
	ctx := context.Background()
	// Q: 255 claims of slot 2 opened and closed, the 256th kept: its
	// generation ends as P's did. Settled back to published (tries 2),
	// 30 put-backs (tries 32), taken in RecvFunc: tries 33, 1 in 5 bits.
	q := staleTaker(t, func(q *Queue) {
		if w := q.cell(0).word.Load(); slotOf(w) != 2 || triesOf(w) != 1 {
			t.Fatalf("Q's word %#x: slot %d, tries %d; the attack needs slot 2, tries 1", w, slotOf(w), triesOf(w))
		}
	}, "reopen-putbacks", "255", "30")
	buf := make([]byte, 64)
	makeMsg(buf, 5, 3)
	sctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := q.Send(sctx, buf); err != nil {
		t.Fatalf("the queue stalled: %v", err)
	}
	if n, err := q.Recv(ctx, buf); err != nil {
		t.Fatal(err)
	} else if id, seq, _ := readMsg(buf[:n]); id != 5 || seq != 3 {
		t.Fatalf("next message %d/%d, want 5/3", id, seq)
	}
}

// TestViewsBusy (from the third review): views, which every Open and
// Inspect runs, reads the head, the tail and the head again; on a busy,
// nearly empty queue the second head can pass the tail it read, which
// must not read as a tail 2^64 positions ahead.
func TestViewsBusy(t *testing.T) {
	name, q := newQueue(t, 64, 16)
	p := testproc.Start(t, "pingpong", name)
	p.Expect("ready")
	defer func() { p.Kill(); p.Wait() }()
	n := 0
	for end := time.Now().Add(time.Second); time.Now().Before(end); {
		for range 1000 {
			n++
			if _, err := views(q.seg); err != nil {
				t.Fatalf("view %d of a healthy busy queue: %v", n, err)
			}
		}
		if _, err := Inspect(q.Segment()); err != nil {
			t.Fatalf("Inspect of a healthy busy queue: %v", err)
		}
	}
}

// TestRepairLaps (from the third review): producers die holding a lap's
// reserved cells while no receiver runs, Repair drops them, and again for
// the next lap. Repair drops only one lap from the head, so producers
// never run more than two laps ahead of it: the queue still opens, and
// the existing handle drains it. The dead producers are simulated: a CAS
// of the tail without an intent is what a producer killed after its CAS
// leaves once its slot's lanes are cleared.
func TestRepairLaps(t *testing.T) {
	ctx := context.Background()
	name, q := newQueue(t, 1024, 16)
	reserveDead := func() int {
		k := 0
		for {
			tl := q.tail.Load()
			if q.cell(tl).word.Load() != free(tl) {
				return k // full
			}
			if !q.tail.CompareAndSwap(tl, tl+1) {
				t.Fatal("tail moved")
			}
			k++
		}
	}
	for round := range 3 {
		k := reserveDead()
		n, err := Repair(ctx, name)
		if err != nil {
			t.Fatalf("Repair %d: %v", round, err)
		}
		if round == 0 && (k != 1024 || n != 1024) {
			t.Fatalf("round 0: %d reserved, %d repaired; want 1024 each", k, n)
		}
		if h, tl := q.head.Load(), q.tail.Load(); tl-h > 2*q.capacity {
			t.Fatalf("round %d: tail %d, head %d: more than two laps", round, tl, h)
		}
		q2, err := Open(ctx, name)
		if err != nil {
			t.Fatalf("round %d: Open: %v", round, err)
		}
		q2.Close()
	}
	for {
		if _, ok, err := q.TryRecv(make([]byte, 16)); err != nil {
			t.Fatalf("TryRecv: %v", err)
		} else if !ok && q.head.Load() == q.tail.Load() {
			break
		}
	}
}

// TestJunkLanes (from the third review): slot 1's area holds the
// generation its next claimer gets, and its lanes are all busy: junk
// that looks like the claimer's own. The claimer must still take the
// slot over as its first handle (clearing the lanes), not spin in Send
// for a lane that never frees.
func TestJunkLanes(t *testing.T) {
	name, q := newQueue(t, 8, 64)
	if q.me.Index != 0 {
		t.Skipf("this process has slot %d; the test needs slot 0", q.me.Index)
	}
	q.area(1).Store(q.seg.SlotGen(1) + 1)
	for i := range lanes {
		q.lane(1, i).Store(laneBusy)
	}
	p := testproc.Start(t, "send-once", name)
	p.Expect("returned <nil>")
	p.Wait()
	buf := make([]byte, 64)
	if n, err := q.Recv(context.Background(), buf); err != nil || string(buf[:n]) != "once" {
		t.Fatalf("Recv: %q %v", buf[:n], err)
	}
}

// TestCloseBesideBusyHandle (from the second review of layout 2): two
// handles of one process on one queue share the slot's lanes. Closing
// the idle one, and a Repair (which opens and closes a handle of its
// own), must not wait for the busy one's Sends: with more sending
// goroutines than lanes, the lanes are almost never all free at once.
// The 20 s bound only tells a hang from a return; the return comes in
// microseconds.
func TestCloseBesideBusyHandle(t *testing.T) {
	ctx := context.Background()
	name, busy := newQueue(t, 64, 16)
	idle, err := Open(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var sent atomic.Int64
	for i := range 2*lanes + 2 {
		wg.Go(func() {
			buf := make([]byte, 16)
			for {
				select {
				case <-stop:
					return
				default:
				}
				if i < 2 {
					busy.TryRecv(buf)
				} else if ok, _ := busy.TrySend(buf[:8]); ok {
					sent.Add(1)
				}
			}
		})
	}
	defer func() { close(stop); wg.Wait() }()
	for sent.Load() < 100000 { // every goroutine running
		time.Sleep(time.Millisecond)
	}
	within := func(what string, f func() error) {
		done := make(chan error, 1)
		go func() { done <- f() }()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("%s: %v", what, err)
			}
		case <-time.After(20 * time.Second):
			t.Fatalf("%s has not returned in 20 s while another handle of the process sends", what)
		}
	}
	within("Close of the idle handle", idle.Close)
	within("Repair", func() error { _, err := Repair(ctx, name); return err })
}

// TestPublishPaths: a message is published whole by each of Send's
// three ways: small through fillCell (copy under the race detector,
// which TestFillCell makes up for), large (past fillCellMax) through
// memmove and a release store, and with an XCHG, as a process that
// could not register for membarrier publishes.
func TestPublishPaths(t *testing.T) {
	ctx := context.Background()
	_, q := newQueue(t, 8, 1000)
	for _, plain := range []bool{true, false} {
		q.plain = plain && registered()
		for _, size := range []int{0, 1, 15, 16, 17, 64, fillCellMax, fillCellMax + 1, 1000} {
			msg := make([]byte, size)
			for i := range msg {
				msg[i] = byte(i*7 + size)
			}
			if err := q.Send(ctx, msg); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 1000)
			n, err := q.Recv(ctx, buf)
			if err != nil || !bytes.Equal(buf[:n], msg) {
				t.Fatalf("plain %v, %d bytes: got %d bytes (%v), not the message", q.plain, size, n, err)
			}
			for i := range q.local.lanes {
				if q.local.lanes[i].Load() != 0 || q.lane(q.me.Index, i).Load() != 0 {
					t.Fatalf("plain %v, %d bytes: lane %d still held", q.plain, size, i)
				}
			}
		}
	}
}

// TestFillCell (from the third review): fillCell, called directly (Send
// takes the copy path under the race detector, so this is what covers
// the assembly there): every size to 300 bytes, from sources at every
// offset to 17, writes the word, the length, the bytes and the cleared
// lane, and nothing before the cell, in its padding or past the message.
func TestFillCell(t *testing.T) {
	if !plainStores {
		t.Skip("no fillCell here")
	}
	const max = 300
	back := make([]byte, 64+16+max+64+64)
	base := (64 - int(uintptr(unsafe.Pointer(&back[0]))%64)) % 64
	cellb := back[base+64 : base+64+16+max+64]
	src := make([]byte, max+64)
	var lane atomic.Uint64
	for size := 0; size <= max; size++ {
		for off := 0; off < 18; off++ {
			for i := range back {
				back[i] = 0xA5
			}
			for i := range src {
				src[i] = byte(i*13 + size + off)
			}
			msg := src[off : off+size : off+size]
			lane.Store(laneBusy | 12345)
			w := published(77, 3)
			fillCell((*atomic.Uint64)(unsafe.Pointer(&cellb[0])), msg, w, &lane)
			if got := binary.LittleEndian.Uint64(cellb[0:]); got != w {
				t.Fatalf("size %d off %d: word %#x want %#x", size, off, got, w)
			}
			if got := binary.LittleEndian.Uint32(cellb[8:]); got != uint32(size) {
				t.Fatalf("size %d off %d: length %d", size, off, got)
			}
			if !bytes.Equal(cellb[16:16+size], msg) {
				t.Fatalf("size %d off %d: bytes differ", size, off)
			}
			if lane.Load() != 0 {
				t.Fatalf("size %d off %d: lane not cleared", size, off)
			}
			// Guards: before the cell, the padding word 12..16, past the message.
			for i := 0; i < base+64; i++ {
				if back[i] != 0xA5 {
					t.Fatalf("size %d off %d: byte %d before the cell written", size, off, i-base-64)
				}
			}
			for i := 12; i < 16; i++ {
				if cellb[i] != 0xA5 {
					t.Fatalf("size %d off %d: padding byte %d written", size, off, i)
				}
			}
			for i := base + 64 + 16 + size; i < len(back); i++ {
				if back[i] != 0xA5 {
					t.Fatalf("size %d off %d: byte %d past the message written", size, off, i-(base+64+16+size))
				}
			}
		}
	}
}

// TestDeadWriterSlotReused: a producer killed after reserving position
// 0; the next process takes its slot, and with it clears its lanes. No
// lane names position 0 any more: Inspect reports the cell with no
// process (slot -1), and the next receiver drops it and goes on.
func TestDeadWriterSlotReused(t *testing.T) {
	ctx := context.Background()
	name, q := newQueue(t, 4, 64)
	dead := testproc.Start(t, "die-at", name, "reserved", "send")
	dead.Expect("at reserved")
	dead.Wait()
	next := testproc.Start(t, "send-once", name) // the lowest free slot: the dead one's
	next.Expect("returned <nil>")
	next.Wait()
	in, err := Inspect(q.Segment())
	if err != nil || len(in.Writing) != 1 || in.Writing[0].Position != 0 || in.Writing[0].Slot != -1 {
		t.Fatalf("Inspect: %+v, %v; want position 0 writing, by no process", in.Writing, err)
	}
	buf := make([]byte, 64)
	if n, err := q.Recv(ctx, buf); err != nil || string(buf[:n]) != "once" {
		t.Fatalf("Recv past the dropped cell: %q %v", buf[:n], err)
	}
}

// TestCopyClosedWithOriginal (a new user's trial): a copy of a Queue
// (which go vet reports) shares its handle's state: the copy's Close
// closes the original too, whose Send then returns ErrClosed. Before, the
// original's Send returned nil into the mapping the copy's Close had
// retired, and the message was gone.
func TestCopyClosedWithOriginal(t *testing.T) {
	ctx := context.Background()
	_, q := newQueue(t, 8, 64)
	c := new(Queue)
	reflect.ValueOf(c).Elem().Set(reflect.ValueOf(q).Elem()) // qc := *q, unseen by vet
	if err := c.Send(ctx, []byte("through the copy")); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := q.Send(ctx, []byte("lost?")); !errors.Is(err, ErrClosed) {
		t.Fatalf("Send through the original after the copy's Close: %v, want ErrClosed", err)
	}
	if err := q.Close(); !errors.Is(err, ErrClosed) {
		t.Fatalf("Close of the original after the copy's: %v, want ErrClosed", err)
	}
}
