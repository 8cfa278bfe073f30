//go:build linux

package main

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

func init() {
	process.Register("q-producer", profiled("producer", qProducerEntry))
	process.Register("q-consumer", profiled("consumer", qConsumerEntry))
	process.Register("q-echo", qEchoEntry)
}

// The transports bench queue compares.
const (
	qShm   = "shm-queue" // package queue
	qPipe  = "pipe"      // an os.Pipe shared by every producer and consumer, a message per write (-batch: more)
	qUnix  = "unix"      // an AF_UNIX SOCK_SEQPACKET socketpair, a message per send
	qCRing = "c-ring"    // yard's ring (internal/cyard): Vyukov's bounded MPMC ring in C, spinning
)

// queueCells is the capacity of the rings (shm-queue, c-ring): 1024 cells,
// about a 64 KiB pipe's worth of 64-byte messages.
const queueCells = 1024

// QueueRun is one row of bench queue: JSON fields as named.
type QueueRun struct {
	Backend         string    `json:"backend"`
	Producers       int       `json:"producers"`
	Consumers       int       `json:"consumers"`
	Size            int       `json:"size"`
	Msgs            int64     `json:"msgs"`
	Seconds         float64   `json:"seconds"`
	MsgsPerSec      float64   `json:"msgs_per_sec"`
	Lost            int64     `json:"lost"`
	Dup             int64     `json:"dup"`
	Torn            int64     `json:"torn"`
	Rounds          int       `json:"rounds"`
	RoundMsgsPerSec []float64 `json:"round_msgs_per_sec"`
}

// castagnoli is made at the first message, not at init: every child of
// the bench pays for its package initializers, and most never check one
// (its 8 KiB of tables took 0.15 ms of a child's start).
var castagnoli = sync.OnceValue(func() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) })

// putMsg writes a bench message into m: producer id, sequence number,
// filler, CRC-32C of the rest (yard's make_msg, internal/cyard, writes the same); tab
// is castagnoli(), looked up once per loop rather than per message.
func putMsg(m []byte, id, seq uint32, tab *crc32.Table) {
	n := len(m) - 4
	binary.LittleEndian.PutUint32(m, id)
	binary.LittleEndian.PutUint32(m[4:], seq)
	// The filler, byte i being seq+i, 8 bytes at a time, as C's compiler
	// does it (its loop is vectorized): w is bytes 8-15; word k adds 8k
	// to each of w's bytes, bytewise (SWAR: the low 7 bits of each byte
	// added, the top bits XORed in, so no carry crosses a byte), each
	// word from w alone so that none waits for the one before.
	const lo7, hi = 0x7f7f7f7f7f7f7f7f, 0x8080808080808080
	const y = 0x0706050403020100
	x := uint64(byte(seq+8)) * 0x0101010101010101
	w := (x&lo7 + y&lo7) ^ (x^y)&hi
	i := 8
	for d := uint64(0); i+8 <= n; i, d = i+8, d+0x0808080808080808 {
		binary.LittleEndian.PutUint64(m[i:i+8], (w&lo7+d&lo7)^(w^d)&hi)
	}
	if i+4 <= n {
		d := uint64(i-8) / 8 * 0x0808080808080808
		binary.LittleEndian.PutUint32(m[i:i+4], uint32((w&lo7+d&lo7)^(w^d)&hi))
		i += 4
	}
	for ; i < n; i++ {
		m[i] = byte(seq + uint32(i))
	}
	binary.LittleEndian.PutUint32(m[n:], crc32.Update(0, tab, m[:n]))
}

// tally checks a received message and marks it in the bitmap: it returns
// whether it was torn, and whether it was marked already. tab is
// castagnoli().
func tally(m []byte, bitmap []atomic.Uint64, rowBits, producers int, tab *crc32.Table) (torn, dup bool) {
	if len(m) < 12 || binary.LittleEndian.Uint32(m[len(m)-4:]) != crc32.Update(0, tab, m[:len(m)-4]) {
		return true, false
	}
	id, seq := int(binary.LittleEndian.Uint32(m)), int(binary.LittleEndian.Uint32(m[4:]))
	if id >= producers || seq == 0 || seq > rowBits {
		return true, false
	}
	bit := id*rowBits + seq - 1
	mask := uint64(1) << (bit % 64)
	return false, bitmap[bit/64].Or(mask)&mask != 0
}

// bitmapTag is a run's segment of received-message bits.
const bitmapTag = "bench.QueueBitmap/1"

func bitmapView(seg *shm.Segment) []atomic.Uint64 {
	d := seg.Data()
	// The data region is 64-aligned and a multiple of 8 long; the mapping
	// is shared and never moved by Go.
	return unsafe.Slice((*atomic.Uint64)(unsafe.Pointer(&d[0])), len(d)/8)
}

func runQueue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "chaos" {
		return runQueueChaos(ctx, args[1:], stdout, stderr)
	}
	fs := newFlags("bench queue", "bench queue [-backends LIST] [-pairs PxC,...] [-size B] [-msgs N] [-rounds R] [-json]", stderr)
	backends := fs.String("backends", strings.Join(queueBackends(), ","), "transports to compare")
	pairs := fs.String("pairs", "1x1,4x4", "producers x consumers, comma-separated")
	size := fs.Int("size", 64, "message size in bytes (at least 12: id, sequence number, checksum)")
	msgs := fs.Int("msgs", 2_000_000, "messages per run, split among the producers")
	rounds := fs.Int("rounds", 3, "runs per row, backends taking turns; the median counts")
	batch := fs.Int("batch", 1, "pipe: messages per write (up to PIPE_BUF bytes); the others send one at a time")
	asJSON := fs.Bool("json", false, "one JSON object per row")
	if err := parse(fs, args); err != nil {
		return err
	}
	kinds := strings.Split(*backends, ",")
	for _, k := range kinds {
		if !slices.Contains(queueKinds, k) {
			return usageError(fs, "unknown backend %q (have %s)", k, strings.Join(queueKinds, ", "))
		}
	}
	var shapes [][2]int
	for _, p := range strings.Split(*pairs, ",") {
		a, b, ok := strings.Cut(p, "x")
		np, err1 := strconv.Atoi(a)
		nc, err2 := strconv.Atoi(b)
		if !ok || err1 != nil || err2 != nil || np < 1 || nc < 1 || np+nc > 64 {
			return usageError(fs, "-pairs %q: want PxC with 1 to 64 processes in all", p)
		}
		shapes = append(shapes, [2]int{np, nc})
	}
	if *size < 12 || *size > 4096 {
		return usageError(fs, "-size %d: want 12 to 4096", *size)
	}
	if *msgs < 1 || *rounds < 1 {
		return usageError(fs, "-msgs and -rounds: want at least 1")
	}
	kinds, err := prepareC(ctx, kinds, isSet(fs, "backends"), stderr)
	if err != nil {
		return err
	}
	if !*asJSON {
		fmt.Fprintf(stdout, "%-10s %5s %5s %6s %12s %8s %5s %5s %5s\n", "backend", "prod", "cons", "size", "msgs/s", "seconds", "lost", "dup", "torn")
	}
	for _, sh := range shapes {
		runs := map[string][]QueueRun{}
		for range *rounds {
			for _, k := range kinds {
				r, err := queueOnce(ctx, k, sh[0], sh[1], *size, *msgs, *batch)
				if err != nil {
					return fmt.Errorf("%s %dx%d: %w", k, sh[0], sh[1], err)
				}
				runs[k] = append(runs[k], r)
			}
		}
		for _, k := range kinds {
			r := mergeQueue(runs[k])
			if *asJSON {
				if err := json.NewEncoder(stdout).Encode(r); err != nil {
					return err
				}
				continue
			}
			fmt.Fprintf(stdout, "%-10s %5d %5d %6d %12.0f %8.3f %5d %5d %5d\n", r.Backend, r.Producers, r.Consumers, r.Size, r.MsgsPerSec, r.Seconds, r.Lost, r.Dup, r.Torn)
		}
	}
	return nil
}

// mergeQueue makes one row of a backend's rounds: the median round's rate,
// the sums of the counts.
func mergeQueue(rs []QueueRun) QueueRun {
	m := rs[0]
	m.Rounds = len(rs)
	m.Msgs, m.Seconds, m.Lost, m.Dup, m.Torn, m.RoundMsgsPerSec = 0, 0, 0, 0, 0, nil
	for _, r := range rs {
		m.Msgs += r.Msgs
		m.Seconds += r.Seconds
		m.Lost += r.Lost
		m.Dup += r.Dup
		m.Torn += r.Torn
		m.RoundMsgsPerSec = append(m.RoundMsgsPerSec, r.MsgsPerSec)
	}
	rates := slices.Clone(m.RoundMsgsPerSec)
	slices.Sort(rates)
	m.MsgsPerSec = rates[len(rates)/2]
	return m
}

// queueOnce is one run: producers and consumers started, set up, let go
// at one moment; timed to the last consumer's last message.
func queueOnce(ctx context.Context, kind string, producers, consumers, size, msgs, batch int) (QueueRun, error) {
	run := QueueRun{Backend: kind, Producers: producers, Consumers: consumers, Size: size}
	ctl, err := newControl()
	if err != nil {
		return run, err
	}
	defer ctl.remove()
	per := (msgs + producers - 1) / producers
	rowBits := (per + 63) &^ 63
	bname := fmt.Sprintf("bench.%d.bits.%d", os.Getpid(), controlSeq.Add(1))
	bseg, err := shm.Create(bname, max(8, producers*rowBits/8), bitmapTag, nil)
	if err != nil {
		return run, err
	}
	defer func() { bseg.Close(); shm.Remove(bname) }()

	// The transport.
	name := ""
	var pfiles, cfiles []*os.File
	switch kind {
	case qShm:
		name = fmt.Sprintf("bench.%d.q.%d", os.Getpid(), controlSeq.Add(1))
		q, err := queue.Create(ctx, name, queueCells, size)
		if err != nil {
			return run, err
		}
		q.Close()
		defer shm.Remove(name)
	case qCRing:
		name = fmt.Sprintf("bench.%d.ring.%d", os.Getpid(), controlSeq.Add(1))
		if err := createCRing(name, queueCells, size); err != nil {
			return run, err
		}
		defer shm.Remove(name)
	case qPipe:
		r, w, err := os.Pipe()
		if err != nil {
			return run, err
		}
		pfiles, cfiles = []*os.File{w}, []*os.File{r}
	case qUnix:
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return run, os.NewSyscallError("socketpair", err)
		}
		pfiles, cfiles = []*os.File{os.NewFile(uintptr(fds[0]), "producers")}, []*os.File{os.NewFile(uintptr(fds[1]), "consumers")}
	}
	closeFiles := func() {
		for _, f := range append(pfiles, cfiles...) {
			f.Close()
		}
		pfiles, cfiles = nil, nil
	}
	defer closeFiles()

	var procs []*process.Process
	defer func() {
		for _, p := range procs {
			p.Kill()
			p.Join(context.Background())
		}
	}()
	common := []string{kind, name, ctl.name(), bname, strconv.Itoa(rowBits), strconv.Itoa(producers), strconv.Itoa(consumers), strconv.Itoa(size)}
	for i := range consumers {
		p := &process.Process{Entry: "q-consumer", Args: append(slices.Clone(common), strconv.Itoa(i)), Files: cfiles}
		procs = append(procs, p)
		if ok, err := ctl.startReady(p); err != nil || !ok {
			return run, childFailed(p, err)
		}
	}
	for i := range producers {
		from := i*per + 1
		to := min((i+1)*per, msgs)
		args := append(slices.Clone(common), strconv.Itoa(i), strconv.Itoa(from-i*per), strconv.Itoa(to-i*per), strconv.Itoa(batch))
		p := &process.Process{Entry: "q-producer", Args: args, Files: pfiles}
		procs = append(procs, p)
		if ok, err := ctl.startReady(p); err != nil || !ok {
			return run, childFailed(p, err)
		}
	}
	closeFiles() // the children hold the ends now: EOF comes when the producers exit
	t0 := monoNow()
	ctl.start().Store(1)
	for _, p := range procs {
		if err := p.Join(ctx); err != nil {
			return run, err
		}
	}
	procs = nil
	end := t0
	for i := range consumers {
		got, torn, _, _ := ctl.slot(i)
		run.Msgs += got.Load()
		run.Torn += torn.Load()
		run.Dup += ctl.word(slotStride*(i+1) + 40).Load()
		end = max(end, ctl.finished(i).Load())
	}
	bits := bitmapView(bseg)
	for id := range producers {
		n := min((id+1)*per, msgs) - id*per
		for seq := 1; seq <= n; seq++ {
			bit := id*rowBits + seq - 1
			if bits[bit/64].Load()&(1<<(bit%64)) == 0 {
				run.Lost++
			}
		}
	}
	run.Seconds = float64(end-t0) / 1e9
	if run.Seconds > 0 {
		run.MsgsPerSec = float64(run.Msgs) / run.Seconds
	}
	return run, nil
}

func childFailed(p *process.Process, err error) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("%s exited before it was ready: %v", p.Entry, p.Join(context.Background()))
}

// qArgs is what every producer and consumer is told.
type qArgs struct {
	kind, name                                string
	ctl                                       *control
	bits                                      *shm.Segment
	rowBits, producers, consumers, size, self int
}

func parseQArgs(args []string, extra int) (qArgs, []string, error) {
	if len(args) != 9+extra {
		return qArgs{}, nil, fmt.Errorf("want %d arguments, got %q", 9+extra, args)
	}
	var a qArgs
	a.kind, a.name = args[0], args[1]
	var err error
	if a.ctl, err = openControl(args[2]); err != nil {
		return a, nil, err
	}
	if a.bits, err = shm.Open(args[3], bitmapTag); err != nil {
		return a, nil, err
	}
	nums := make([]int, 5)
	for i, s := range append(args[4:8], args[8]) {
		if nums[i], err = strconv.Atoi(s); err != nil {
			return a, nil, err
		}
	}
	a.rowBits, a.producers, a.consumers, a.size, a.self = nums[0], nums[1], nums[2], nums[3], nums[4]
	return a, args[9:], nil
}

// qProducerEntry: the common arguments, id, then the first and last
// sequence numbers to send, and how many messages a pipe write carries.
func qProducerEntry(args []string) error {
	a, rest, err := parseQArgs(args, 3)
	if err != nil {
		return fmt.Errorf("q-producer: %w", err)
	}
	from, _ := strconv.Atoi(rest[0])
	to, _ := strconv.Atoi(rest[1])
	id := uint32(a.self)
	tab := castagnoli()
	switch a.kind {
	case qCRing:
		return produceCRing(a, from, to)
	case qShm:
		q, err := queue.Open(context.Background(), a.name)
		if err != nil {
			return err
		}
		defer q.Close()
		m := make([]byte, a.size)
		a.ctl.ready().Add(1)
		a.ctl.waitStart()
		for s := from; s <= to; s++ {
			putMsg(m, id, uint32(s), tab)
			if err := q.Send(context.Background(), m); err != nil {
				return err
			}
		}
		// The last producer done closes the queue for sending.
		if a.ctl.word(16).Add(1) == int64(a.producers) {
			return q.CloseSend()
		}
		return nil
	}
	f := process.Files()[0]
	a.ctl.ready().Add(1)
	a.ctl.waitStart()
	batch, _ := strconv.Atoi(rest[2])
	batch = max(1, min(batch, 4096/a.size)) // a write of up to PIPE_BUF bytes is atomic
	buf := make([]byte, batch*a.size)
	for s := from; s <= to; {
		k := min(batch, to-s+1)
		for j := range k {
			putMsg(buf[j*a.size:(j+1)*a.size], id, uint32(s+j), tab)
		}
		if _, err := f.Write(buf[:k*a.size]); err != nil {
			return err
		}
		s += k
	}
	return nil
}

// qConsumerEntry: the common arguments, then its index. Receives until
// the end, tallying every message; stores its counts and when it finished.
func qConsumerEntry(args []string) error {
	a, _, err := parseQArgs(args, 0)
	if err != nil {
		return fmt.Errorf("q-consumer: %w", err)
	}
	bits := bitmapView(a.bits)
	tab := castagnoli()
	var got, dup, torn int64
	count := func(m []byte) {
		t, d := tally(m, bits, a.rowBits, a.producers, tab)
		switch {
		case t:
			torn++
		case d:
			dup++
		}
		got++
	}
	switch a.kind {
	case qCRing:
		got, dup, torn, err = consumeCRing(a)
		if err != nil {
			return err
		}
	case qShm:
		q, err := queue.Open(context.Background(), a.name)
		if err != nil {
			return err
		}
		defer q.Close()
		m := make([]byte, a.size)
		a.ctl.ready().Add(1)
		a.ctl.waitStart()
		for {
			n, err := q.Recv(context.Background(), m)
			if err == io.EOF {
				break
			}
			if err != nil {
				return err
			}
			count(m[:n])
		}
	default:
		f := process.Files()[0]
		a.ctl.ready().Add(1)
		a.ctl.waitStart()
		// Whole messages only: a pipe holds whole messages (every write
		// is a multiple of size, atomic), so a read of a multiple of
		// size gets a multiple of size.
		buf := make([]byte, max(1, 4096/a.size)*a.size)
		if a.kind == qUnix {
			buf = buf[:a.size]
		}
		for {
			n, err := f.Read(buf)
			if err == io.EOF || n == 0 && err == nil {
				break
			}
			if err != nil {
				return err
			}
			if n%a.size != 0 {
				torn++ // a read that split a message
				continue
			}
			for j := 0; j < n; j += a.size {
				count(buf[j : j+a.size])
			}
		}
	}
	c, t, done, _ := a.ctl.slot(a.self)
	c.Store(got)
	t.Store(torn)
	a.ctl.word(slotStride*(a.self+1) + 40).Store(dup)
	a.ctl.finished(a.self).Store(monoNow())
	done.Store(1)
	return nil
}

// PingPong is one row of bench pingpong.
type PingPong struct {
	Backend string  `json:"backend"`
	N       int     `json:"n"`
	P50us   float64 `json:"p50_us"`
	P99us   float64 `json:"p99_us"`
	MaxUs   float64 `json:"max_us"`
}

func runPingPong(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench pingpong", "bench pingpong [-backends LIST] [-n N] [-size B] [-json]", stderr)
	backends := fs.String("backends", qShm+","+qPipe+","+qUnix, "transports")
	n := fs.Int("n", 20000, "round trips to time (after 1000 untimed)")
	size := fs.Int("size", 64, "message size in bytes")
	asJSON := fs.Bool("json", false, "one JSON object per row")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *n < 1 || *size < 1 || *size > 4096 {
		return usageError(fs, "-n at least 1, -size 1 to 4096")
	}
	for _, kind := range strings.Split(*backends, ",") {
		if kind != qShm && kind != qPipe && kind != qUnix {
			return usageError(fs, "unknown backend %q (have %s, %s, %s)", kind, qShm, qPipe, qUnix)
		}
		ds, err := pingPong(ctx, kind, *n, *size)
		if err != nil {
			return fmt.Errorf("%s: %w", kind, err)
		}
		l := summarize("pingpong", kind, ds)
		r := PingPong{Backend: kind, N: l.N, P50us: l.P50us, P99us: l.P99us, MaxUs: l.MaxUs}
		if *asJSON {
			if err := json.NewEncoder(stdout).Encode(r); err != nil {
				return err
			}
			continue
		}
		fmt.Fprintf(stdout, "%-10s n=%d  p50 %.1f µs  p99 %.1f µs  max %.0f µs\n", r.Backend, r.N, r.P50us, r.P99us, r.MaxUs)
	}
	return nil
}

// pingPong times n round trips of one message to a q-echo child and back.
func pingPong(ctx context.Context, kind string, n, size int) ([]time.Duration, error) {
	const warm = 1000
	var send func([]byte) error
	var recv func([]byte) error
	echo := &process.Process{Entry: "q-echo", Args: []string{kind, "", "", strconv.Itoa(n + warm), strconv.Itoa(size)}}
	switch kind {
	case qShm:
		base := fmt.Sprintf("bench.%d.pp.%d", os.Getpid(), controlSeq.Add(1))
		ping, err := queue.Create(ctx, base+".ping", 16, size)
		if err != nil {
			return nil, err
		}
		defer func() { ping.Close(); shm.Remove(base + ".ping") }()
		pong, err := queue.Create(ctx, base+".pong", 16, size)
		if err != nil {
			return nil, err
		}
		defer func() { pong.Close(); shm.Remove(base + ".pong") }()
		echo.Args[1], echo.Args[2] = base+".ping", base+".pong"
		send = func(m []byte) error { return ping.Send(ctx, m) }
		recv = func(m []byte) error { _, err := pong.Recv(ctx, m); return err }
	case qPipe:
		r1, w1, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		r2, w2, err := os.Pipe()
		if err != nil {
			return nil, err
		}
		defer func() { w1.Close(); r2.Close() }()
		echo.Files = []*os.File{r1, w2}
		defer r1.Close()
		defer w2.Close()
		send = func(m []byte) error { _, err := w1.Write(m); return err }
		recv = func(m []byte) error { _, err := io.ReadFull(r2, m); return err }
	case qUnix:
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return nil, os.NewSyscallError("socketpair", err)
		}
		mine, theirs := os.NewFile(uintptr(fds[0]), "ping"), os.NewFile(uintptr(fds[1]), "pong")
		defer mine.Close()
		echo.Files = []*os.File{theirs}
		defer theirs.Close()
		send = func(m []byte) error { _, err := mine.Write(m); return err }
		recv = func(m []byte) error { _, err := mine.Read(m); return err }
	}
	if err := echo.Start(); err != nil {
		return nil, err
	}
	defer echo.Join(context.Background())
	defer func() {
		if ctx.Err() != nil {
			echo.Kill()
		}
	}()
	m := make([]byte, size)
	ds := make([]time.Duration, 0, n)
	for i := range n + warm {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		t0 := time.Now()
		if err := send(m); err != nil {
			return nil, err
		}
		if err := recv(m); err != nil {
			return nil, err
		}
		if i >= warm {
			ds = append(ds, time.Since(t0))
		}
	}
	return ds, nil
}

// qEchoEntry: kind, ping queue, pong queue, n, size. Sends back each of
// n messages.
func qEchoEntry(args []string) error {
	if len(args) != 5 {
		return fmt.Errorf("q-echo: want 5 arguments, got %q", args)
	}
	n, _ := strconv.Atoi(args[3])
	size, _ := strconv.Atoi(args[4])
	m := make([]byte, size)
	ctx := context.Background()
	switch args[0] {
	case qShm:
		ping, err := queue.Open(ctx, args[1])
		if err != nil {
			return err
		}
		defer ping.Close()
		pong, err := queue.Open(ctx, args[2])
		if err != nil {
			return err
		}
		defer pong.Close()
		for range n {
			k, err := ping.Recv(ctx, m)
			if err != nil {
				return err
			}
			if err := pong.Send(ctx, m[:k]); err != nil {
				return err
			}
		}
		return nil
	}
	fs := process.Files()
	in, out := fs[0], fs[len(fs)-1]
	for range n {
		var k int
		var err error
		if args[0] == qUnix {
			k, err = in.Read(m) // one record
		} else {
			k, err = io.ReadFull(in, m)
		}
		if err != nil {
			return err
		}
		if _, err := out.Write(m[:k]); err != nil {
			return err
		}
	}
	return nil
}
