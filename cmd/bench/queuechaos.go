//go:build linux

package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"time"

	"github.com/shmkit/shmkit/process"
	"github.com/shmkit/shmkit/queue"
	"github.com/shmkit/shmkit/shm"
)

func init() {
	process.Register("qc-producer", qcProducerEntry)
	process.Register("qc-consumer", qcConsumerEntry)
}

// QueueChaos is bench queue chaos's result.
type QueueChaos struct {
	Kills         int   `json:"kills"`
	ProducerKills int   `json:"producer_kills"`
	ConsumerKills int   `json:"consumer_kills"`
	Sent          int64 `json:"sent"`     // messages whose Send returned nil
	Received      int64 `json:"received"` // messages consumers processed, duplicates included
	Lost          int64 `json:"lost"`     // sent and never received: must be 0
	Dup           int64 `json:"dup"`      // received again: only from consumers that died
	Torn          int64 `json:"torn"`     // must be 0
	// InFlight: received messages of killed producers whose Send had
	// not returned (so not counted as sent): a Send cut short delivers
	// its message whole or not at all.
	InFlight int64 `json:"in_flight"`
}

const ackTag = "bench.QueueAcks/1"

// runQueueChaos: producers and consumers of one shm-queue SIGKILLed at
// random moments and restarted. A restarted producer takes a new id (its
// predecessor's last Send may or may not have landed: neither lost nor a
// duplicate); consumers process each message inside RecvFunc, so a kill
// loses none, and a kill after the processing counts it twice.
func runQueueChaos(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("bench queue chaos", "bench queue chaos [-kills K] [-producers P] [-consumers C] [-per N] [-json]", stderr)
	kills := fs.Int("kills", 100, "SIGKILLs, each of a random producer or consumer, which is then restarted")
	producers := fs.Int("producers", 2, "producer processes running at once")
	consumers := fs.Int("consumers", 2, "consumer processes running at once")
	per := fs.Int("per", 20000, "messages each producer (and each restarted one) sends")
	size := fs.Int("size", 64, "message size in bytes")
	asJSON := fs.Bool("json", false, "print the result as one JSON object")
	if err := parse(fs, args); err != nil {
		return err
	}
	if *kills < 0 || *producers < 1 || *consumers < 1 || *producers+*consumers > 100 || *per < 1 || *size < 12 || *size > 4096 {
		return usageError(fs, "want -kills ≥ 0, 1 to 100 processes, -per ≥ 1, -size 12 to 4096")
	}
	res := QueueChaos{Kills: *kills}
	rows := *producers + *kills
	rowBits := (*per + 63) &^ 63
	base := fmt.Sprintf("bench.%d.qc.%d", os.Getpid(), controlSeq.Add(1))
	q, err := queue.Create(ctx, base, 64, *size)
	if err != nil {
		return err
	}
	defer func() { q.Close(); shm.Remove(base) }()
	ctl, err := newControl()
	if err != nil {
		return err
	}
	defer ctl.remove()
	bseg, err := shm.Create(base+".bits", rows*rowBits/8, bitmapTag, nil)
	if err != nil {
		return err
	}
	defer func() { bseg.Close(); shm.Remove(base + ".bits") }()
	aseg, err := shm.Create(base+".acks", rows*8, ackTag, nil)
	if err != nil {
		return err
	}
	defer func() { aseg.Close(); shm.Remove(base + ".acks") }()

	ps := make([]*process.Process, *producers)
	cs := make([]*process.Process, *consumers)
	defer func() {
		for _, p := range append(ps, cs...) {
			if p != nil {
				p.Kill()
				p.Join(context.Background())
			}
		}
	}()
	nextID := 0
	startP := func(i int) error {
		ps[i] = &process.Process{Entry: "qc-producer", Args: []string{base, base + ".acks", strconv.Itoa(nextID), strconv.Itoa(*per), strconv.Itoa(*size)}}
		nextID++
		return ps[i].Start()
	}
	startC := func(i int) error {
		cs[i] = &process.Process{Entry: "qc-consumer", Args: []string{base, ctl.name(), base + ".bits", strconv.Itoa(rowBits), strconv.Itoa(rows), strconv.Itoa(i)}}
		return cs[i].Start()
	}
	for i := range *consumers {
		if err := startC(i); err != nil {
			return err
		}
	}
	for i := range *producers {
		if err := startP(i); err != nil {
			return err
		}
	}
	bar := newProgress(stderr, *kills, "killing")
	for range *kills {
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(time.Duration(500+rand.IntN(4500)) * time.Microsecond)
		i := rand.IntN(*producers + *consumers)
		if i < *producers {
			ps[i].Kill()
			ps[i].Join(context.Background())
			res.ProducerKills++
			if err := startP(i); err != nil {
				return err
			}
		} else {
			i -= *producers
			cs[i].Kill()
			cs[i].Join(context.Background())
			res.ConsumerKills++
			if err := startC(i); err != nil {
				return err
			}
		}
		bar.Add(1)
	}
	bar.Finish()
	for i, p := range ps {
		if err := p.Join(ctx); err != nil {
			return fmt.Errorf("producer: %w", err)
		}
		ps[i] = nil
	}
	if err := q.CloseSend(); err != nil {
		return err
	}
	for i, c := range cs {
		if err := c.Join(ctx); err != nil {
			return fmt.Errorf("consumer: %w", err)
		}
		cs[i] = nil
	}
	for i := range *consumers {
		got, torn, _, _ := ctl.slot(i)
		res.Received += got.Load()
		res.Torn += torn.Load()
		res.Dup += ctl.word(slotStride*(i+1) + 40).Load()
	}
	bits := bitmapView(bseg)
	for id := range nextID {
		ack, err := aseg.Uint64(8 * id)
		if err != nil {
			return err
		}
		acked := int64(ack.Load())
		res.Sent += acked
		for seq := 1; seq <= *per; seq++ {
			bit := id*rowBits + seq - 1
			seen := bits[bit/64].Load()&(1<<(bit%64)) != 0
			switch {
			case seq <= int(acked) && !seen:
				res.Lost++
			case seq > int(acked) && seen:
				res.InFlight++
			}
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(res)
	}
	_, err = fmt.Fprintf(stdout, "queue chaos: %d kills (%d producers, %d consumers): sent %d, received %d, lost %d, dup %d, torn %d, in flight at a kill %d\n",
		res.Kills, res.ProducerKills, res.ConsumerKills, res.Sent, res.Received, res.Lost, res.Dup, res.Torn, res.InFlight)
	return err
}

// qcProducerEntry: queue, acks, id, per, size. Sends per messages,
// storing the sequence number of each whose Send returned.
func qcProducerEntry(args []string) error {
	if len(args) != 5 {
		return fmt.Errorf("qc-producer: want 5 arguments, got %q", args)
	}
	id, _ := strconv.Atoi(args[2])
	per, _ := strconv.Atoi(args[3])
	size, _ := strconv.Atoi(args[4])
	q, err := queue.Open(context.Background(), args[0])
	if err != nil {
		return err
	}
	defer q.Close()
	aseg, err := shm.Open(args[1], ackTag)
	if err != nil {
		return err
	}
	ack, err := aseg.Uint64(8 * id)
	if err != nil {
		return err
	}
	m := make([]byte, size)
	tab := castagnoli()
	for s := 1; s <= per; s++ {
		putMsg(m, uint32(id), uint32(s), tab)
		if err := q.Send(context.Background(), m); err != nil {
			return err
		}
		ack.Store(uint64(s))
	}
	return nil
}

// qcConsumerEntry: queue, control, bitmap, rowBits, rows, index.
// Processes messages in RecvFunc until io.EOF: marks each in the bitmap
// and counts it in its control slot, which a restarted consumer of the
// same index goes on adding to.
func qcConsumerEntry(args []string) error {
	if len(args) != 6 {
		return fmt.Errorf("qc-consumer: want 6 arguments, got %q", args)
	}
	rowBits, _ := strconv.Atoi(args[3])
	rows, _ := strconv.Atoi(args[4])
	self, _ := strconv.Atoi(args[5])
	q, err := queue.Open(context.Background(), args[0])
	if err != nil {
		return err
	}
	defer q.Close()
	ctl, err := openControl(args[1])
	if err != nil {
		return err
	}
	bseg, err := shm.Open(args[2], bitmapTag)
	if err != nil {
		return err
	}
	bits := bitmapView(bseg)
	tab := castagnoli()
	got, torn, _, _ := ctl.slot(self)
	dup := ctl.word(slotStride*(self+1) + 40)
	for {
		err := q.RecvFunc(context.Background(), func(m []byte) error {
			t, d := tally(m, bits, rowBits, rows, tab)
			switch {
			case t:
				torn.Add(1)
			case d:
				dup.Add(1)
			}
			got.Add(1)
			return nil
		})
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}
