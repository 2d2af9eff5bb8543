package pcsc_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/pcsc"
	"github.com/samrack/samrack/drivers/pcsc/apdu"
	"github.com/samrack/samrack/drivers/pcsc/pcsctest"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/samtest"
)

// scriptedCard is a SAM-V in a vpcd reader that answers each scripted
// C-APDU (byte-exact) with its R-APDU, and anything else with 6F 00. Its
// goroutine is owned by t and stopped in its cleanup.
func scriptedCard(t *testing.T, addr string, script map[string][]byte) {
	t.Helper()
	var c net.Conn
	if err := eventually(10*time.Second, func() (err error) {
		c, err = net.Dial("tcp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // owned by t: ends when c is closed
		defer wg.Done()
		var hdr [2]byte
		for {
			if _, err := io.ReadFull(c, hdr[:]); err != nil {
				return
			}
			msg := make([]byte, binary.BigEndian.Uint16(hdr[:]))
			if _, err := io.ReadFull(c, msg); err != nil {
				return
			}
			var reply []byte
			switch {
			case len(msg) == 1 && msg[0] == 0x04: // get ATR
				reply = apdu.ATR()
			case len(msg) <= 1: // power off/on, reset: no reply
				continue
			default:
				var ok bool
				if reply, ok = script[hex.EncodeToString(msg)]; !ok {
					reply = []byte{0x6F, 0x00}
				}
			}
			// One write: vpcd's Nagle trap (shared/hil.md).
			out := binary.BigEndian.AppendUint16(nil, uint16(len(reply)))
			if _, err := c.Write(append(out, reply...)); err != nil {
				return
			}
		}
	}()
	t.Cleanup(func() {
		c.Close()
		wg.Wait()
	})
}

// TestRealReadReplyThroughPCSCD: a read reply as a real SAM-V sends it
// (assembled by hand, lengths `01 00 04 00` big-endian), carried in an
// R-APDU as package pcsc documents (the frame without preamble, LEN and
// CHK, then 90 00), crosses the real pcscd and decodes to a 256-byte text
// and a 1024-byte photo.
func TestRealReadReplyThroughPCSCD(t *testing.T) {
	checkLeaks(t)
	srv := pcsctest.Start(t, 1)
	rd := srv.Readers[0]
	body := func(frame []byte) []byte { // SW1 SW2 SW3 | DATA, then ISO 90 00
		return append(bytes.Clone(frame[7:len(frame)-1]), 0x90, 0x00)
	}
	scriptedCard(t, rd.Addr, map[string][]byte{
		"80463001000000": body(samtest.RealReadFrame()),    // 30 01, case 2E
		"80463010000000": body(samtest.RealReadAllFrame()), // 30 10
	})
	waitPresent(t, rd.Name, true)

	h := samhost.New(pcsc.New(rd.Name, pcsc.Options{}), samhost.Timeouts{})
	t.Cleanup(func() { h.Close() })
	for _, tc := range []struct {
		what sam.ReadWhat
		fp   []byte
	}{{sam.ReadTextPhoto, nil}, {sam.ReadFingerprint, samtest.RealFingerprint()}} {
		r, err := h.Read(bg, nil, tc.what)
		if err != nil {
			t.Fatalf("read %v: %v", tc.what, err)
		}
		if len(r.Text) != 256 || len(r.Photo) != 1024 || !bytes.Equal(r.Fingerprint, tc.fp) {
			t.Fatalf("read %v: text %d, photo %d, fingerprint %d bytes", tc.what, len(r.Text), len(r.Photo), len(r.Fingerprint))
		}
		if !bytes.Equal(r.Text, samtest.RealText()) || !bytes.Equal(r.Photo, samtest.RealPhoto()) {
			t.Fatalf("read %v: data differs from the frame's", tc.what)
		}
		id, err := ga467.DecodeText(r.Text)
		if err != nil || id.Number != samtest.RealNumber || id.Name != samtest.RealName {
			t.Fatalf("read %v: text decodes to %s, %v", tc.what, id.Redacted(), err)
		}
	}
}
