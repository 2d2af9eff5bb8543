package pcsc_test

import (
	"testing"
	"time"

	"github.com/ebfe/scard"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/pcsc"
	"github.com/samrack/samrack/drivers/pcsc/apdu"
	"github.com/samrack/samrack/drivers/samhost"
)

// BenchmarkPCSCTransmit measures one GA 467 host command (SAM status, 11 FF)
// through the driver (samhost.Host.Status on a pcsc.Transport) against a raw
// SCardTransmit of the same APDU to the same virtual SAM, interleaved so
// both see the same pcscd. driver-overhead-ratio is driver time ÷ raw time
// (target ≤ 1.10).
func BenchmarkPCSCTransmit(b *testing.B) {
	r := newRig(b, 1, nil)
	name := r.slots[0].reader.Name

	sc, err := scard.EstablishContext()
	if err != nil {
		b.Fatal(err)
	}
	defer sc.Release()
	card, err := sc.Connect(name, scard.ShareShared, scard.ProtocolAny)
	if err != nil {
		b.Fatal(err)
	}
	defer card.Disconnect(scard.LeaveCard)
	capdu, _ := apdu.AppendCommand(nil, ga467.SAMStatus)
	raw := func() {
		resp, err := card.Transmit(capdu)
		if err != nil {
			b.Fatal(err)
		}
		if rep, err := apdu.ParseReply(resp); err != nil || rep.SW3 != ga467.SW3OK {
			b.Fatalf("raw: % X", resp)
		}
	}

	tr := pcsc.New(name, pcsc.Options{Shared: true})
	h := samhost.New(tr, samhost.Timeouts{})
	defer h.Close()
	driver := func() {
		if err := h.Status(bg); err != nil {
			b.Fatal(err)
		}
	}
	for range 200 { // warm up both paths
		raw()
		driver()
	}

	var rawT, drvT time.Duration
	b.ResetTimer()
	for b.Loop() {
		t0 := time.Now()
		raw()
		t1 := time.Now()
		driver()
		t2 := time.Now()
		rawT += t1.Sub(t0)
		drvT += t2.Sub(t1)
	}
	n := float64(b.N)
	b.ReportMetric(float64(rawT.Nanoseconds())/n, "raw-ns/cmd")
	b.ReportMetric(float64(drvT.Nanoseconds())/n, "driver-ns/cmd")
	b.ReportMetric(float64(drvT)/float64(rawT), "driver-overhead-ratio")
}
