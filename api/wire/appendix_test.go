package wire

import (
	"bytes"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/samtest"
)

// appendixExample is the hex of PROTOCOL.md appendix A.3: on each line of
// the marked block, the leading two-digit hex tokens (the comment follows).
func appendixExample(t *testing.T) []byte {
	t.Helper()
	doc, err := os.ReadFile("../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "<!-- appendix-a-example -->")
	block, _, ok2 := strings.Cut(rest, "<!-- /appendix-a-example -->")
	if !ok || !ok2 {
		t.Fatal("PROTOCOL.md lacks the appendix A.3 example markers")
	}
	var out []byte
	for _, line := range strings.Split(block, "\n") {
		for _, tok := range strings.Fields(line) {
			b, err := hex.DecodeString(tok)
			if err != nil || len(tok) != 2 {
				break
			}
			out = append(out, b...)
		}
	}
	return out
}

// TestAppendixAExample: the worked example of PROTOCOL.md appendix A is
// what the appliance sends (wire.EncodeResult) for the hand-built card of
// samtest, and decodes to the fields the appendix names.
func TestAppendixAExample(t *testing.T) {
	ex := appendixExample(t)
	if len(ex) != 4+256 {
		t.Fatalf("example of %d bytes, want 260 (lengths and text block)", len(ex))
	}
	if !bytes.Equal(ex[:4], []byte{0x00, 0x01, 0x00, 0x04}) || !bytes.Equal(ex[4:], samtest.RealText()) {
		t.Fatal("example differs from samtest.RealText with little-endian lengths")
	}
	plain, err := EncodeResult(&ga467.ReadReply{Text: samtest.RealText(), Photo: samtest.RealPhoto()})
	if err != nil {
		t.Fatal(err)
	}
	if len(plain) != 1284 || !bytes.Equal(plain[:260], ex) {
		t.Fatalf("EncodeResult gives %d bytes starting % x", len(plain), plain[:8])
	}
	rr, err := DecodeResult(plain, false)
	if err != nil {
		t.Fatal(err)
	}
	id, err := ga467.DecodeText(rr.Text)
	if err != nil {
		t.Fatal(err)
	}
	if id.Type != ga467.Resident || id.Name != "张三" || id.Address != "北京市东城区正义路1号" || id.Number != "11010519491231002X" ||
		id.Authority != "北京市公安局东城分局" || id.ValidFrom != "20150101" || id.ValidTo != "20350101" || id.Birth != "19491231" {
		t.Fatalf("example decodes to %s", id.Redacted())
	}
	// The same card as the SAM sends it: only the length bytes differ.
	frame := samtest.RealReadFrame()
	if !bytes.Equal(frame[:14], []byte{0xAA, 0xAA, 0xAA, 0x96, 0x69, 0x05, 0x08, 0x00, 0x00, 0x90, 0x01, 0x00, 0x04, 0x00}) ||
		!bytes.Equal(frame[14:14+256], ex[4:]) {
		t.Fatal("the SAM's frame of appendix A.3 differs")
	}
}

// TestResultOrders: DecodeResult takes the version-1 little-endian lengths
// and, as PROTOCOL.md allows, the GA 467 big-endian ones; the fingerprint
// form is never guessed.
func TestResultOrders(t *testing.T) {
	r, err := ga467.ParseReply(samtest.RealReadAllFrame())
	if err != nil {
		t.Fatal(err)
	}
	be := r.Data // as the SAM sent it
	rr, err := DecodeResult(be, true)
	if err != nil || len(rr.Fingerprint) != 1024 {
		t.Fatalf("big-endian: %v", err)
	}
	le, err := EncodeResult(rr)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(le[:6], []byte{0x00, 0x01, 0x00, 0x04, 0x00, 0x04}) || !bytes.Equal(le[6:], be[6:]) {
		t.Fatalf("EncodeResult lengths % x", le[:6])
	}
	if rr2, err := DecodeResult(le, true); err != nil || !bytes.Equal(rr2.Fingerprint, rr.Fingerprint) {
		t.Fatalf("little-endian: %v", err)
	}
	if _, err := DecodeResult(le, false); err == nil {
		t.Fatal("three lengths decoded as two")
	}
}

func FuzzDecodeResult(f *testing.F) {
	r, _ := ga467.ParseReply(samtest.RealReadFrame())
	f.Add(r.Data, false)
	f.Add(append([]byte{0, 1, 0, 4}, r.Data[4:]...), false)
	f.Fuzz(func(t *testing.T, b []byte, fp bool) {
		rr, err := DecodeResult(b, fp)
		if err != nil {
			return
		}
		if len(rr.Text) != 256 || len(rr.Photo) > 1024 || len(rr.Fingerprint) > 1024 || (!fp && rr.Fingerprint != nil) {
			t.Fatalf("decoded out of bounds: %d/%d/%d", len(rr.Text), len(rr.Photo), len(rr.Fingerprint))
		}
	})
}
