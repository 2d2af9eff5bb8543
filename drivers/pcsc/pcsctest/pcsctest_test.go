package pcsctest_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/ebfe/scard"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/pcsc/apdu"
	"github.com/samrack/samrack/drivers/pcsc/pcsctest"
	"github.com/samrack/samrack/drivers/sim"
)

// TestVirtualSAMInReader puts a virtual SAM in a vpcd reader and talks to
// it with raw PC/SC calls: the ATR, and one GA 467 command as an APDU.
func TestVirtualSAMInReader(t *testing.T) {
	srv := pcsctest.Start(t, 2)
	if len(srv.Readers) != 2 {
		t.Fatalf("readers %v", srv.Readers)
	}
	rd := srv.Readers[1]
	s := sim.NewSAM(1, sim.SAMOptions{Timing: &sim.SAMTiming{}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.ServeVPCD(ctx, rd.Addr) }()
	defer func() {
		cancel()
		if err := <-done; err != context.Canceled {
			t.Errorf("ServeVPCD: %v", err)
		}
	}()
	wctx, wcancel := context.WithTimeout(ctx, 5*time.Second)
	defer wcancel()
	if err := pcsctest.WaitPresent(wctx, rd.Name, true); err != nil {
		t.Fatal(err)
	}
	c, err := scard.EstablishContext()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Release()
	card, err := c.Connect(rd.Name, scard.ShareExclusive, scard.ProtocolAny)
	if err != nil {
		t.Fatal(err)
	}
	defer card.Disconnect(scard.LeaveCard)
	st, err := card.Status()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(st.Atr, apdu.ATR()) {
		t.Errorf("ATR % X, want % X", st.Atr, apdu.ATR())
	}
	cmd, _ := apdu.AppendCommand(nil, ga467.ReadSAMID)
	resp, err := card.Transmit(cmd)
	if err != nil {
		t.Fatal(err)
	}
	r, err := apdu.ParseReply(resp)
	if err != nil || r.SW3 != ga467.SW3OK || !bytes.Equal(r.Data, s.ID().Bytes()) {
		t.Fatalf("% X: %v %v", resp, r, err)
	}
	if got, _ := card.Transmit([]byte{0x00, 0xA4, 0x04, 0x00}); !bytes.Equal(got, []byte{0x6E, 0x00}) {
		t.Errorf("ISO SELECT: % X, want 6E 00", got)
	}
}
