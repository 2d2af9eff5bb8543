package samhost_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/samtest"
)

// frameSAM is a tiny fake SAM module that speaks GA 467 frames on a
// stream. Its Find runs one card exchange through the tunnel: it sends the
// card challenge and wants response back. It never answers the commands in
// drop, like a module that hangs.
type frameSAM struct {
	id        ga467.SAMID
	serial    sam.Serial
	challenge []byte
	response  []byte
	text      []byte
	photo     []byte
	drop      map[byte]bool // commands (by CMD) never answered
}

// answer is the module's reply to cmd; ok false means no reply at all.
func (s *frameSAM) answer(cmd ga467.Command, inFind *bool) (ga467.Reply, bool) {
	if s.drop[cmd.Cmd] {
		return ga467.Reply{}, false
	}
	switch {
	case cmd.Cmd == ga467.CmdReset, cmd.Cmd == ga467.CmdStatus:
		return ga467.Status(ga467.SW3OK), true
	case cmd.Cmd == ga467.CmdSAMID:
		return ga467.Reply{SW3: ga467.SW3OK, Data: s.id.Bytes()}, true
	case cmd.Cmd == ga467.CmdCard && cmd.Para == ga467.ParaFind:
		data, _ := ga467.EncodeCardFrames([][]byte{s.challenge})
		*inFind = true
		return ga467.Reply{SW3: ga467.SW3CardExchange, Data: data}, true
	case cmd.Cmd == ga467.CmdCardReply && *inFind:
		*inFind = false
		replies, err := ga467.DecodeCardFrames(cmd.Data)
		if err != nil || len(replies) != 1 || !bytes.Equal(replies[0], s.response) {
			return ga467.Status(ga467.SW3SAMAuthCard), true
		}
		return ga467.Reply{SW3: ga467.SW3CardFound, Data: []byte{0, 0, 0, 0}}, true
	case cmd.Cmd == ga467.CmdCard && cmd.Para == ga467.ParaSelect:
		return ga467.Reply{SW3: ga467.SW3OK, Data: s.serial[:]}, true
	case cmd.Cmd == ga467.CmdRead && cmd.Para == ga467.ParaReadText:
		data := []byte{0x01, 0x00, 0x04, 0x00} // 256, 1024: big-endian as a SAM-V sends them
		data = append(append(data, s.text...), s.photo...)
		return ga467.Reply{SW3: ga467.SW3OK, Data: data}, true
	}
	return ga467.Status(ga467.SW3BadCommand), true
}

// serveFrames runs s on conn until conn closes; the test ends it.
func serveFrames(t *testing.T, s *frameSAM, conn net.Conn) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		c := ga467.NewConn(conn)
		inFind := false
		for {
			f, err := c.ReadFrame()
			if errors.Is(err, ga467.ErrChecksum) {
				b, _ := ga467.Status(ga467.SW3HostChecksum).Frame()
				c.WriteFrame(b)
				continue
			}
			if err != nil {
				return // closed
			}
			cmd, err := ga467.ParseCommand(f)
			if err != nil {
				t.Errorf("frame SAM: %v", err)
				return
			}
			r, ok := s.answer(cmd, &inFind)
			if !ok {
				continue
			}
			b, err := r.Frame()
			if err != nil {
				t.Errorf("frame SAM: %v", err)
				return
			}
			if c.WriteFrame(b) != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		conn.Close()
		wg.Wait()
	})
}

func newFrameSAM() *frameSAM {
	return &frameSAM{
		id:        ga467.SAMID{A: 5, B: 1, Date: 20101125, Serial1: 12345678, Serial2: 1234567890},
		serial:    sam.Serial{0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC, 0xDE, 0xF0},
		challenge: []byte{0x00, 0x84, 0x00, 0x00, 0x08},
		response:  []byte{1, 2, 3, 4, 5, 6, 7, 8, 0x90, 0x00},
		text:      bytes.Repeat([]byte{'t'}, 256),
		photo:     bytes.Repeat([]byte{'p'}, 1024),
		drop:      map[byte]bool{},
	}
}

// hostOn returns a Host on a StreamTransport on one end of a net.Pipe
// whose other end s serves.
func hostOn(t *testing.T, s *frameSAM, to samhost.Timeouts) *samhost.Host {
	near, far := net.Pipe()
	serveFrames(t, s, far)
	h := samhost.New(samhost.NewStreamTransport(near, near), to)
	t.Cleanup(func() { h.Close() })
	return h
}

func TestEndToEnd(t *testing.T) {
	s := newFrameSAM()
	h := hostOn(t, s, samhost.Timeouts{})
	card := samtest.NewLink(samtest.LinkStep{Cmds: [][]byte{s.challenge}, Replies: [][]byte{s.response}})

	if err := h.Reset(ctx); err != nil {
		t.Fatalf("Reset() = %v", err)
	}
	if err := h.Status(ctx); err != nil {
		t.Fatalf("Status() = %v", err)
	}
	if id, err := h.ID(ctx); err != nil || id != s.id {
		t.Fatalf("ID() = %v, %v", id, err)
	}
	if _, err := h.Find(ctx, card); err != nil {
		t.Fatalf("Find() = %v", err)
	}
	if serial, err := h.Select(ctx, card); err != nil || serial != s.serial {
		t.Fatalf("Select() = %v, %v", serial, err)
	}
	rd, err := h.Read(ctx, card, sam.ReadTextPhoto)
	if err != nil {
		t.Fatalf("Read() = %v", err)
	}
	if !bytes.Equal(rd.Text, s.text) || !bytes.Equal(rd.Photo, s.photo) {
		t.Errorf("Read() returned other data")
	}
	verify(t, card)
}

func TestEndToEndCardFails(t *testing.T) {
	s := newFrameSAM()
	h := hostOn(t, s, samhost.Timeouts{})
	forger := samtest.NewLink(samtest.LinkStep{Replies: [][]byte{{0x6A, 0x82}}})
	_, err := h.Find(ctx, forger)
	if !errors.Is(err, ga467.ErrSAMAuthCard) || sam.ModuleFault(err) {
		t.Errorf("Find() = %v, want ErrSAMAuthCard, not a module fault", err)
	}
}

func TestEndToEndTimeoutThenRecover(t *testing.T) {
	s := newFrameSAM()
	s.drop[ga467.CmdReset] = true
	h := hostOn(t, s, samhost.Timeouts{Control: 10 * time.Second})
	rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err := h.Reset(rctx)
	if !errors.Is(err, sam.ErrTimeout) || !errors.Is(err, ga467.ErrTimeout) || !sam.ModuleFault(err) {
		t.Fatalf("Reset() = %v, want sam.ErrTimeout", err)
	}
	if err := h.Status(ctx); err != nil {
		t.Errorf("Status() after a timeout = %v", err)
	}
}

func TestEndToEndModuleGone(t *testing.T) {
	near, far := net.Pipe()
	h := samhost.New(samhost.NewStreamTransport(near, near), samhost.Timeouts{})
	defer h.Close()
	far.Close() // unplugged
	if err := h.Status(ctx); !errors.Is(err, sam.ErrGone) {
		t.Errorf("Status() = %v, want sam.ErrGone", err)
	}
}

func TestStreamTransportClose(t *testing.T) {
	near, far := net.Pipe()
	defer far.Close()
	tr := samhost.NewStreamTransport(near, near)
	if tr.Conn() == nil {
		t.Fatal("Conn() = nil")
	}
	if err := tr.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := near.Write([]byte{0}); err == nil {
		t.Error("Close did not close the stream")
	}
	if err := samhost.NewStreamTransport(near, nil).Close(); err != nil {
		t.Errorf("Close() with a nil closer = %v", err)
	}
}
