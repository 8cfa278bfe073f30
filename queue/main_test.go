//go:build linux

package queue

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/shmkit/shmkit/internal/testproc"
	"github.com/shmkit/shmkit/shm"
)

func TestMain(m *testing.M) {
	testproc.Main(m, map[string]testproc.Entry{
		"produce":         produceEntry,
		"consume":         consumeEntry,
		"die-at":          dieAtEntry,
		"stop-at":         stopAtEntry,
		"gated-take":      gatedTakeEntry,
		"putbacks":        putbacksEntry,
		"many-reserved":   manyReservedEntry,
		"reopen-putbacks": reopenPutbacksEntry,
		"pingpong":        pingpongEntry,
		"send-once":       sendOnceEntry,
	})
}

var nameSeq atomic.Int64

// tempName is a fresh bare segment name, removed when the test ends.
func tempName(t testing.TB) string {
	name := fmt.Sprintf("qtest.%d.%d.%d", os.Getpid(), time.Now().UnixNano(), nameSeq.Add(1))
	t.Cleanup(func() {
		if err := shm.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("cleanup: %v", err)
		}
	})
	return name
}

// A test message: producer id, sequence number, filler, CRC-32 of the
// rest. At least 12 bytes.
func makeMsg(buf []byte, id, seq uint32) {
	binary.LittleEndian.PutUint32(buf, id)
	binary.LittleEndian.PutUint32(buf[4:], seq)
	for i := 8; i < len(buf)-4; i++ {
		buf[i] = byte(seq + uint32(i))
	}
	binary.LittleEndian.PutUint32(buf[len(buf)-4:], crc32.ChecksumIEEE(buf[:len(buf)-4]))
}

// readMsg checks a message and returns its producer and sequence number;
// ok is false for a torn one.
func readMsg(b []byte) (id, seq uint32, ok bool) {
	if len(b) < 12 {
		return 0, 0, false
	}
	ok = binary.LittleEndian.Uint32(b[len(b)-4:]) == crc32.ChecksumIEEE(b[:len(b)-4])
	return binary.LittleEndian.Uint32(b), binary.LittleEndian.Uint32(b[4:]), ok
}

// recvWant receives one message into buf and fails the test, saying
// when, unless it is intact and producer id's number seq.
func recvWant(t *testing.T, ctx context.Context, q *Queue, buf []byte, id, seq uint32, when string) {
	t.Helper()
	n, err := q.Recv(ctx, buf)
	if gid, gseq, ok := readMsg(buf[:n]); err != nil || !ok || gid != id || gseq != seq {
		t.Fatalf("%s: %v, message %d/%d (ok %v); want %d/%d", when, err, gid, gseq, ok, id, seq)
	}
}

// produceEntry: args name, id, n, size, [acks]. Sends n messages of size
// bytes with sequence numbers 1..n; with acks (the name of a shm segment
// of words) it stores each acknowledged sequence number in word id, so
// that a test that kills it knows which Sends returned. Says "sent".
func produceEntry(args []string) int {
	q, err := Open(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	id, _ := strconv.Atoi(args[1])
	n, _ := strconv.Atoi(args[2])
	size, _ := strconv.Atoi(args[3])
	var ack *atomic.Uint64
	if len(args) > 4 {
		seg, err := shm.Open(args[4], ackTag)
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		if ack, err = seg.Uint64(8 * id); err != nil {
			fmt.Println("error", err)
			return 1
		}
	}
	buf := make([]byte, size)
	start := uint32(1)
	if ack != nil {
		start = uint32(ack.Load()) + 1 // a restarted producer goes on
	}
	for seq := start; seq <= uint32(n); seq++ {
		makeMsg(buf, uint32(id), seq)
		if err := q.Send(context.Background(), buf); err != nil {
			fmt.Println("error", err)
			return 1
		}
		if ack != nil {
			ack.Store(uint64(seq))
		}
	}
	fmt.Println("sent")
	return 0
}

const ackTag = "queue.test.acks/1"

// consumeEntry: args name, file. Receives until io.EOF, appending each
// message's producer id and sequence number (or 0xffffffff twice for a
// torn one) to file, 8 bytes each, written before the next Recv. Says
// "done N".
func consumeEntry(args []string) int {
	q, err := Open(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	f, err := os.OpenFile(args[1], os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	rec := make([]byte, 8)
	count := 0
	for {
		// RecvFunc: the record is written before the message leaves
		// the queue, so a kill anywhere loses none (it may record one
		// twice: at least once).
		err := q.RecvFunc(context.Background(), func(msg []byte) error {
			id, seq, ok := readMsg(msg)
			if !ok {
				id, seq = ^uint32(0), ^uint32(0)
			}
			binary.LittleEndian.PutUint32(rec, id)
			binary.LittleEndian.PutUint32(rec[4:], seq)
			_, err := f.Write(rec) // one write(2): whole or not at all
			return err
		})
		if err == io.EOF {
			fmt.Println("done", count)
			return 0
		}
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		count++
	}
}

// dieAtEntry: args name, step, op (send|recv). Runs one Send or Recv and
// SIGKILLs itself at step (queue's testHook).
func dieAtEntry(args []string) int {
	return atStep(args, syscall.SIGKILL)
}

// stopAtEntry is dieAtEntry with SIGSTOP: the process stays alive there,
// until the test kills it.
func stopAtEntry(args []string) int {
	return atStep(args, syscall.SIGSTOP)
}

func atStep(args []string, sig syscall.Signal) int {
	q, err := Open(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	var once sync.Once // at the step's first time only: a stopped Send goes on when continued
	testHook = func(step string) {
		if step == args[1] {
			once.Do(func() {
				fmt.Println("at", step)
				// To the calling thread: kill(getpid()) lets the kernel
				// hand the signal to another of the process's threads
				// and this one run on past the step for a while (a
				// SIGSTOP "ignored" in about 3% of runs: TestStoppedIntent
				// saw its stopped producer publish).
				runtime.LockOSThread()
				syscall.Tgkill(os.Getpid(), syscall.Gettid(), sig)
				runtime.UnlockOSThread()
			})
		}
	}
	buf := make([]byte, q.MaxSize())
	if args[2] == "send" {
		makeMsg(buf, 99, 1)
		err = q.Send(context.Background(), buf)
	} else {
		_, err = q.Recv(context.Background(), buf)
	}
	fmt.Println("returned", err)
	return 0
}

// waitFile waits for a gate file to exist.
func waitFile(path string) {
	for {
		if _, err := os.Stat(path); err == nil {
			return
		}
		time.Sleep(time.Millisecond)
	}
}

// gatedTakeEntry: args name, start, decided. Opens, says "ready", waits
// for the start file, receives; when it has decided to take a cell over
// from a dead receiver, it says "decided" and waits for the decided file
// before its CAS. Then says "got ID SEQ ERR".
func gatedTakeEntry(args []string) int {
	q, err := Open(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("ready")
	waitFile(args[1])
	testHook = func(step string) {
		if step == "decided" {
			testHook = nil
			fmt.Println("decided")
			waitFile(args[2])
		}
	}
	buf := make([]byte, q.MaxSize())
	n, err := q.Recv(context.Background(), buf)
	id, seq, _ := readMsg(buf[:n])
	fmt.Println("got", id, seq, err)
	return 0
}

// putbacksEntry: args name, n, gate. Receives n times into a 1-byte
// buffer (each puts the message back: ErrShortBuffer), then takes the
// message in RecvFunc, says "inside", waits for the gate file, and says
// "got ID SEQ ERR" with what its fn saw.
func putbacksEntry(args []string) int {
	q, err := Open(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	n, _ := strconv.Atoi(args[1])
	for range n {
		if _, err := q.Recv(context.Background(), make([]byte, 1)); !errors.Is(err, ErrShortBuffer) {
			fmt.Println("error: want ErrShortBuffer:", err)
			return 1
		}
	}
	var id, seq uint32
	err = q.RecvFunc(context.Background(), func(m []byte) error {
		fmt.Println("inside")
		waitFile(args[2])
		id, seq, _ = readMsg(m)
		return nil
	})
	fmt.Println("got", id, seq, err)
	return 0
}

// manyReservedEntry: args name, n. n goroutines send, and each stops for
// good once its cell is reserved; says "reserved N" when all are, and
// waits to be killed: n dead writers' cells once it is.
func manyReservedEntry(args []string) int {
	q, err := Open(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	n, _ := strconv.Atoi(args[1])
	var at atomic.Int64
	testHook = func(step string) {
		if step == "reserved" {
			at.Add(1)
			select {}
		}
	}
	for range n {
		go q.Send(context.Background(), []byte("never"))
	}
	for at.Load() < int64(n) {
		time.Sleep(time.Millisecond)
	}
	fmt.Println("reserved", n)
	select {}
}

// reopenPutbacksEntry: args name, reopens, putbacks, gate. Opens and
// closes the queue reopens times (each a new claim of the lowest free
// slot, a new generation), opens it once more and goes on as
// putbacksEntry does.
func reopenPutbacksEntry(args []string) int {
	n, _ := strconv.Atoi(args[1])
	for range n {
		q, err := Open(context.Background(), args[0])
		if err != nil {
			fmt.Println("error", err)
			return 1
		}
		q.Close()
	}
	return putbacksEntry([]string{args[0], args[2], args[3]})
}

// pingpongEntry: args name. Sends and receives one message at a time, in
// one goroutine, until killed: the head and the tail both move all the
// time. Says "ready".
func pingpongEntry(args []string) int {
	q, err := Open(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("ready")
	buf := make([]byte, q.MaxSize())
	for {
		q.TrySend(buf[:8])
		q.TryRecv(buf)
	}
}

// sendOnceEntry: args name. One Send with a 5 s deadline; says
// "returned ERR".
func sendOnceEntry(args []string) int {
	q, err := Open(context.Background(), args[0])
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	fmt.Println("returned", q.Send(ctx, []byte("once")))
	return 0
}
