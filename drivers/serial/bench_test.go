//go:build linux

package serial_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/serial"
	"github.com/samrack/samrack/drivers/sim"
)

// readReplyWire is the wire time of the 1295-byte text+photo read reply at
// 115200 baud 8N1 (10 bits a byte): about 112 ms.
const readReplyWire = 1295 * 10 * time.Second / 115200

// BenchmarkSerialRead measures a text+photo read (a 1295-byte reply frame)
// through the serial driver over a pty, against that reply's wire time at
// 115200 baud (wire-time-ratio; the target is ≤ 0.01).
//
//   - echo: the master side answers every read command with a prebuilt
//     1295-byte reply frame at once: one round trip, the driver's own cost
//     (framing, syscalls, the pty, samhost's checks and copy).
//   - sim: a zero-time virtual SAM and an instant-RF virtual card: one
//     sam.Card.Read is three GA 467 round trips through the card-frame
//     tunnel plus the card scheme's crypto on both sides.
func BenchmarkSerialRead(b *testing.B) {
	b.Run("echo", func(b *testing.B) {
		master, slave, path, err := sim.OpenPTY()
		if err != nil {
			b.Fatal(err)
		}
		defer slave.Close()
		data := make([]byte, 4+256+1024)
		copy(data, []byte{0x01, 0x00, 0x04, 0x00}) // text 256, photo 1024, big-endian as a SAM-V sends them
		reply, err := ga467.Reply{SW3: ga467.SW3OK, Data: data}.Frame()
		if err != nil || len(reply) != 1295 {
			b.Fatalf("reply frame of %d bytes, %v", len(reply), err)
		}
		var wg sync.WaitGroup
		wg.Add(1)
		go func() { // owned by the benchmark: ends when master is closed
			defer wg.Done()
			c := ga467.NewConn(master)
			for {
				if _, err := c.ReadFrame(); err != nil {
					return
				}
				if err := c.WriteFrame(reply); err != nil {
					return
				}
			}
		}()
		defer func() {
			master.Close()
			wg.Wait()
		}()
		m := open(b, path, serial.Options{})
		benchRead(b, m, nil)
	})
	b.Run("sim", func(b *testing.B) {
		p := newPTY(b, 1)
		m := open(b, p.Path(), serial.Options{})
		link := newCard(1, false)
		ctx := context.Background()
		if _, err := m.Find(ctx, link); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Select(ctx, link); err != nil {
			b.Fatal(err)
		}
		benchRead(b, m, link)
	})
}

func benchRead(b *testing.B, m *serial.Module, link sam.CardLink) {
	ctx := context.Background()
	b.SetBytes(1295)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	for b.Loop() {
		rd, err := m.Read(ctx, link, sam.ReadTextPhoto)
		if err != nil || len(rd.Photo) != 1024 {
			b.Fatalf("read: %v", err)
		}
	}
	per := time.Since(start) / time.Duration(b.N)
	b.ReportMetric(float64(per)/float64(readReplyWire), "wire-time-ratio")
}
