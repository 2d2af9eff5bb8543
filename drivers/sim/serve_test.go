package sim_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/sim"
)

func newSAM() *sim.SAM { return sim.NewSAM(1, sim.SAMOptions{Timing: instantSAM}) }

func handle(t *testing.T, s *sim.SAM, cmd ga467.Command) ga467.Reply {
	t.Helper()
	r, ok := s.Handle(context.Background(), cmd)
	if !ok {
		t.Fatalf("%v: no answer", cmd)
	}
	return r
}

// tunnel runs cmd on s, running card exchanges on card, and returns the
// final reply.
func tunnel(t *testing.T, s *sim.SAM, card *sim.Card, cmd ga467.Command) ga467.Reply {
	t.Helper()
	r := handle(t, s, cmd)
	for r.SW3 == ga467.SW3CardExchange {
		frames, err := ga467.DecodeCardFrames(r.Data)
		if err != nil {
			t.Fatal(err)
		}
		replies, _ := idcard.Run(context.Background(), card, frames)
		data, err := ga467.EncodeCardFrames(replies)
		if err != nil {
			t.Fatal(err)
		}
		r = handle(t, s, ga467.Command{Cmd: ga467.CmdCardReply, Data: data})
	}
	return r
}

func TestHandleOrder(t *testing.T) {
	c := func(cmd, para byte, data ...byte) ga467.Command {
		return ga467.Command{Cmd: cmd, Para: para, Data: data}
	}
	tests := []struct {
		name string
		cmd  ga467.Command
		sw3  byte
	}{
		{"read before select", ga467.ReadTextPhoto, ga467.SW3ReadFailed},
		{"read all before select", ga467.ReadAll, ga467.SW3ReadFailed},
		{"read address before select", c(0x30, 0x03), ga467.SW3ReadFailed},
		{"select before find", ga467.SelectCard, ga467.SW3SelectFailed},
		{"card reply without exchange", c(ga467.CmdCardReply, 0, 0), ga467.SW3BadCommand},
		{"unknown command", c(0x42, 0x00), ga467.SW3BadCommand},
		{"unknown card para", c(0x20, 0x07), ga467.SW3BadCommand},
		{"unknown read para", c(0x30, 0x02), ga467.SW3BadCommand},
		{"reset para", c(0x10, 0x00), ga467.SW3BadCommand},
		{"status with data", c(0x11, 0xFF, 1), ga467.SW3HostLength},
		{"baud 9600", c(0x60, 0x04), ga467.SW3OK},
		{"baud 5", c(0x60, 0x05), ga467.SW3BadCommand},
		{"max RF", c(0x61, 0xFF, 0x80), ga467.SW3OK},
		{"max RF without data", c(0x61, 0xFF), ga467.SW3HostLength},
		{"reset", ga467.Reset, ga467.SW3OK},
		{"status", ga467.SAMStatus, ga467.SW3OK},
	}
	s := newSAM()
	for _, tt := range tests {
		if r := handle(t, s, tt.cmd); r.SW3 != tt.sw3 || r.SW1 != 0 || r.SW2 != 0 {
			t.Errorf("%s: %v, want SW3 %02X", tt.name, r, tt.sw3)
		}
	}

	// A tunnel exchange abandoned by another command, then a stale card
	// reply: refused.
	r := handle(t, s, ga467.FindCard)
	if r.SW3 != ga467.SW3CardExchange {
		t.Fatalf("find: %v", r)
	}
	handle(t, s, ga467.SAMStatus)
	data, _ := ga467.EncodeCardFrames([][]byte{{0x50}})
	if r := handle(t, s, ga467.Command{Cmd: ga467.CmdCardReply, Data: data}); r.SW3 != ga467.SW3BadCommand {
		t.Errorf("stale card reply: %v", r)
	}
	// A malformed card-frame list.
	handle(t, s, ga467.FindCard)
	if r := handle(t, s, ga467.Command{Cmd: ga467.CmdCardReply, Data: []byte{5, 1}}); r.SW3 != ga467.SW3BadCommand {
		t.Errorf("malformed card reply: %v", r)
	}
	// Reset ends the session.
	card := sim.NewCard(1, sim.CardOptions{Timing: instantRF})
	tunnel(t, s, card, ga467.FindCard)
	if r := tunnel(t, s, card, ga467.SelectCard); r.SW3 != ga467.SW3OK {
		t.Fatalf("select: %v", r)
	}
	if r := tunnel(t, s, card, ga467.Command{Cmd: 0x30, Para: 0x03}); r.SW3 != ga467.SW3NoItem {
		t.Errorf("read address: %v", r)
	}
	handle(t, s, ga467.Reset)
	if r := handle(t, s, ga467.ReadTextPhoto); r.SW3 != ga467.SW3ReadFailed {
		t.Errorf("read after reset: %v", r)
	}
}

// TestFrameSizes checks the published wire sizes: 1295 bytes for text +
// photo, 2321 with fingerprint, and the byte-exact find reply.
func TestFrameSizes(t *testing.T) {
	s := newSAM()
	card := sim.NewCard(1, sim.CardOptions{Timing: instantRF, Fingerprint: true})
	find := tunnel(t, s, card, ga467.FindCard)
	if f, _ := find.Frame(); !bytes.Equal(f[5:], []byte{0x00, 0x08, 0x00, 0x00, 0x9F, 0x00, 0x00, 0x00, 0x00, 0x97}) {
		t.Errorf("find reply % X", f)
	}
	tunnel(t, s, card, ga467.SelectCard)
	for _, tt := range []struct {
		cmd  ga467.Command
		size int
	}{{ga467.ReadTextPhoto, 1295}, {ga467.ReadAll, 2321}} {
		r := tunnel(t, s, card, tt.cmd)
		f, err := r.Frame()
		if err != nil || len(f) != tt.size {
			t.Errorf("%v: frame of %d bytes, want %d (%v)", tt.cmd, len(f), tt.size, err)
		}
	}
	// Without a fingerprint file, 30 10 gives a zero fingerprint length.
	card2 := sim.NewCard(2, sim.CardOptions{Timing: instantRF})
	tunnel(t, s, card2, ga467.FindCard)
	tunnel(t, s, card2, ga467.SelectCard)
	r := tunnel(t, s, card2, ga467.ReadAll)
	if r.SW3 != ga467.SW3OK || !bytes.Equal(r.Data[:6], []byte{0x01, 0x00, 0x04, 0x00, 0x00, 0x00}) {
		t.Errorf("read all without fingerprint: %v % X", r, r.Data[:6])
	}
}

// serve runs s.Serve on one end of a pipe and returns the other; the test
// ends the Serve and checks its result.
func serve(t *testing.T, s *sim.SAM) net.Conn {
	checkLeaks(t)
	host, dev := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Serve(ctx, dev) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, sim.ErrVanished) {
			t.Errorf("Serve: %v", err)
		}
		host.Close()
		dev.Close()
	})
	host.SetDeadline(time.Now().Add(10 * time.Second))
	return host
}

func readReply(t *testing.T, c net.Conn) []byte {
	t.Helper()
	hdr := make([]byte, 7)
	if _, err := io.ReadFull(c, hdr); err != nil {
		t.Fatal(err)
	}
	rest := make([]byte, int(hdr[5])<<8|int(hdr[6]))
	if _, err := io.ReadFull(c, rest); err != nil {
		t.Fatal(err)
	}
	return append(hdr, rest...)
}

func TestServeRaw(t *testing.T) {
	c := serve(t, newSAM())
	pre := []byte{0xAA, 0xAA, 0xAA, 0x96, 0x69}
	tests := []struct {
		name string
		send []byte
		want []byte // after the preamble
	}{
		{"status (published bytes)", []byte{0x00, 0x03, 0x11, 0xFF, 0xED}, []byte{0x00, 0x04, 0x00, 0x00, 0x90, 0x94}},
		{"bad checksum", []byte{0x00, 0x03, 0x11, 0xFF, 0xEE}, []byte{0x00, 0x04, 0x00, 0x00, 0x10, 0x14}},
		{"impossible LEN is noise", []byte{0x00, 0x02, 0x11, 0xAA, 0xAA, 0xAA, 0x96, 0x69, 0x00, 0x03, 0x11, 0xFF, 0xED}, []byte{0x00, 0x04, 0x00, 0x00, 0x90, 0x94}},
		{"status with DATA", []byte{0x00, 0x04, 0x11, 0xFF, 0x00, 0xEA}, []byte{0x00, 0x04, 0x00, 0x00, 0x11, 0x15}},
		{"reset (published bytes)", []byte{0x00, 0x03, 0x10, 0xFF, 0xEC}, []byte{0x00, 0x04, 0x00, 0x00, 0x90, 0x94}},
	}
	for _, tt := range tests {
		if _, err := c.Write(append(append([]byte{}, pre...), tt.send...)); err != nil {
			t.Fatal(err)
		}
		if got := readReply(t, c); !bytes.Equal(got[5:], tt.want) {
			t.Errorf("%s: % X, want % X", tt.name, got[5:], tt.want)
		}
	}
	// Line noise before a frame is skipped.
	noisy := append([]byte{0x00, 0xAA, 0x13, 0xAA, 0xAA}, pre...)
	noisy = append(noisy, 0x00, 0x03, 0x12, 0xFF, 0xEE)
	c.Write(noisy)
	r, err := ga467.ParseReply(readReply(t, c))
	if err != nil || r.SW3 != ga467.SW3OK || len(r.Data) != ga467.SAMIDLen {
		t.Errorf("SAM ID after noise: %v %v", r, err)
	}
	// The published find request starts a tunnel exchange.
	c.Write(append(append([]byte{}, pre...), 0x00, 0x03, 0x20, 0x01, 0x22))
	r, err = ga467.ParseReply(readReply(t, c))
	if err != nil || r.SW3 != ga467.SW3CardExchange {
		t.Fatalf("find: %v %v", r, err)
	}
	if frames, err := ga467.DecodeCardFrames(r.Data); err != nil || len(frames) != 1 || !bytes.Equal(frames[0], idcard.ReqB) {
		t.Errorf("find asks for % X", r.Data)
	}
}

func TestServeEnds(t *testing.T) {
	checkLeaks(t)
	s := newSAM()

	// The stream closes: Serve returns nil.
	host, dev := net.Pipe()
	done := make(chan error, 1)
	go func() { done <- s.Serve(context.Background(), dev) }()
	host.Close()
	if err := <-done; err != nil {
		t.Errorf("Serve after close: %v", err)
	}

	// Vanish: Serve closes the stream and returns ErrVanished; later
	// Serves return at once until Replug.
	host, dev = net.Pipe()
	go func() { done <- s.Serve(context.Background(), dev) }()
	// Make sure Serve is running before the vanish.
	host.Write(append(ga467.Preamble[:], 0x00, 0x03, 0x11, 0xFF, 0xED))
	readReply(t, host)
	s.Vanish()
	if err := <-done; !errors.Is(err, sim.ErrVanished) {
		t.Errorf("Serve after vanish: %v", err)
	}
	if _, err := host.Read(make([]byte, 1)); err == nil {
		t.Error("vanished SAM left its stream open")
	}
	_, dev2 := net.Pipe()
	if err := s.Serve(context.Background(), dev2); !errors.Is(err, sim.ErrVanished) {
		t.Errorf("Serve of a vanished SAM: %v", err)
	}
	if _, ok := s.Handle(context.Background(), ga467.SAMStatus); ok {
		t.Error("vanished SAM answered Handle")
	}
	s.Replug()
	if _, ok := s.Handle(context.Background(), ga467.SAMStatus); !ok {
		t.Error("replugged SAM did not answer")
	}
}

func FuzzHandle(f *testing.F) {
	f.Add(byte(0), []byte{1, 2, 0, 0x90, 0x00})
	f.Add(byte(1), []byte{2, 1, 0, 0x00, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00})
	f.Add(byte(2), []byte{1, 10, 0, 1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00})
	f.Add(byte(3), []byte{0})
	f.Fuzz(func(t *testing.T, step byte, data []byte) {
		s := newSAM()
		card := sim.NewCard(1, sim.CardOptions{Timing: instantRF, Fingerprint: true})
		steps := []ga467.Command{ga467.FindCard, ga467.SelectCard, ga467.ReadAll, ga467.ReadAll}
		n := int(step) % len(steps)
		for _, c := range steps[:n] {
			tunnel(t, s, card, c)
		}
		r := handle(t, s, steps[n])
		if n == 3 { // reach the auth+read exchange
			frames, _ := ga467.DecodeCardFrames(r.Data)
			replies, _ := idcard.Run(context.Background(), card, frames)
			d, _ := ga467.EncodeCardFrames(replies)
			handle(t, s, ga467.Command{Cmd: ga467.CmdCardReply, Data: d})
		}
		r = handle(t, s, ga467.Command{Cmd: ga467.CmdCardReply, Data: data})
		if _, err := r.Frame(); err != nil {
			t.Fatalf("reply does not encode: %v", err)
		}
	})
}
