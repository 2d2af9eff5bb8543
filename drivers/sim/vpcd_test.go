package sim_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"net"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/pcsc/apdu"
)

// fakeVPCD is the reader side of the vpcd protocol on one connection.
type fakeVPCD struct {
	t *testing.T
	c net.Conn
}

func (f fakeVPCD) send(msg ...byte) {
	f.t.Helper()
	b := binary.BigEndian.AppendUint16(nil, uint16(len(msg)))
	if _, err := f.c.Write(append(b, msg...)); err != nil {
		f.t.Fatal(err)
	}
}

func (f fakeVPCD) recv() ([]byte, error) {
	f.c.SetReadDeadline(time.Now().Add(5 * time.Second))
	var hdr [2]byte
	if _, err := io.ReadFull(f.c, hdr[:]); err != nil {
		return nil, err
	}
	b := make([]byte, binary.BigEndian.Uint16(hdr[:]))
	_, err := io.ReadFull(f.c, b)
	return b, err
}

func TestServeVPCD(t *testing.T) {
	checkLeaks(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	s := newSAM()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeVPCD(ctx, l.Addr().String()) }()
	defer func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("ServeVPCD: %v", err)
		}
	}()
	accept := func() fakeVPCD {
		t.Helper()
		l.(*net.TCPListener).SetDeadline(time.Now().Add(5 * time.Second))
		c, err := l.Accept()
		if err != nil {
			t.Fatal(err)
		}
		return fakeVPCD{t, c}
	}

	v := accept()
	v.send(0x01) // power on: no reply
	v.send(0x04)
	if atr, err := v.recv(); err != nil || !bytes.Equal(atr, apdu.ATR()) {
		t.Fatalf("ATR % X %v", atr, err)
	}
	capdu, _ := apdu.AppendCommand(nil, ga467.ReadSAMID)
	v.send(capdu...)
	resp, err := v.recv()
	r, perr := apdu.ParseReply(resp)
	if err != nil || perr != nil || !bytes.Equal(r.Data, s.ID().Bytes()) {
		t.Fatalf("SAM ID: % X %v %v", resp, err, perr)
	}
	v.send(0x00, 0xA4, 0x04, 0x00)
	if resp, err := v.recv(); err != nil || !bytes.Equal(resp, []byte{0x6E, 0x00}) {
		t.Fatalf("ISO SELECT: % X %v, want 6E 00", resp, err)
	}

	// Power off: the card leaves the reader (the connection closes).
	s.PowerOff()
	if _, err := v.recv(); err == nil {
		t.Fatal("connection still open after power off")
	}
	v.c.Close()
	// Power on: the card comes back.
	s.PowerOn()
	v = accept()
	defer v.c.Close()
	v.send(capdu...)
	if resp, err := v.recv(); err != nil || len(resp) != 3+16+2 {
		t.Fatalf("after power on: % X %v", resp, err)
	}

	// A hung SAM leaves the card mute; when the hang ends, it is ejected
	// and inserted again.
	s.SetHang(true)
	v.send(capdu...)
	v.c.SetReadDeadline(time.Now().Add(100 * time.Millisecond))
	if _, err := io.ReadFull(v.c, make([]byte, 1)); err == nil {
		t.Fatal("a hung SAM answered")
	}
	s.SetHang(false)
	if _, err := v.recv(); err == nil {
		t.Fatal("mute card not ejected when the hang ended")
	}
	v2 := accept()
	defer v2.c.Close()
	v2.send(capdu...)
	if resp, err := v2.recv(); err != nil || len(resp) != 3+16+2 {
		t.Fatalf("after the hang: % X %v", resp, err)
	}
}
