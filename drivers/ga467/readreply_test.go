package ga467_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/samtest"
)

// TestRealReadReply decodes read replies as a real SAM-V sends them,
// assembled by hand from the published layout (samtest.RealReadFrame), not
// by our encoder.
func TestRealReadReply(t *testing.T) {
	for _, tc := range []struct {
		name        string
		frame       []byte
		size        int
		fingerprint bool
		fpLen       int
	}{
		{"30 01", samtest.RealReadFrame(), 1295, false, 0},
		{"30 10", samtest.RealReadAllFrame(), 2321, true, 1024},
		{"30 10 without fingerprints", samtest.RealReadNoFingerprintFrame(), 1297, true, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.frame) != tc.size {
				t.Fatalf("frame of %d bytes, want %d", len(tc.frame), tc.size)
			}
			if !bytes.Equal(tc.frame[10:14], []byte{0x01, 0x00, 0x04, 0x00}) {
				t.Fatalf("lengths % X, want 01 00 04 00", tc.frame[10:14])
			}
			r, err := ga467.ParseReply(tc.frame)
			if err != nil {
				t.Fatal(err)
			}
			rr, err := ga467.DecodeReadReply(r.Data, tc.fingerprint)
			if err != nil {
				t.Fatal(err)
			}
			if len(rr.Text) != 256 || len(rr.Photo) != 1024 || len(rr.Fingerprint) != tc.fpLen {
				t.Fatalf("text %d, photo %d, fingerprint %d bytes", len(rr.Text), len(rr.Photo), len(rr.Fingerprint))
			}
			if !bytes.Equal(rr.Text, samtest.RealText()) || !bytes.Equal(rr.Photo, samtest.RealPhoto()) {
				t.Fatal("text or photo differ from the frame's")
			}
			id, err := ga467.DecodeText(rr.Text)
			if err != nil {
				t.Fatal(err)
			}
			want := ga467.Identity{Type: ga467.Resident, Name: samtest.RealName, Sex: samtest.RealSex, Nation: samtest.RealNation,
				Birth: samtest.RealBirth, Address: samtest.RealAddress, Number: samtest.RealNumber, Authority: samtest.RealAuthority,
				ValidFrom: samtest.RealValidFrom, ValidTo: samtest.RealValidTo}
			if *id != want {
				t.Fatalf("decoded %+v", id.Redacted())
			}
			// Our encoder must give back the module's bytes exactly.
			again, err := ga467.EncodeReadReply(rr)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(again, r.Data) {
				t.Fatal("EncodeReadReply does not reproduce the real reply")
			}
			frame, err := ga467.Reply{SW3: ga467.SW3OK, Data: again}.Frame()
			if err != nil || !bytes.Equal(frame, tc.frame) {
				t.Fatalf("re-framed reply differs from the real frame (%v)", err)
			}
			// The wrong (30 01 vs 30 10) form does not decode.
			if _, err := ga467.DecodeReadReply(r.Data, !tc.fingerprint); !errors.Is(err, ga467.ErrReadReply) {
				t.Errorf("decoded in the other form: %v", err)
			}
		})
	}
}

// TestReadReplyLittleEndianRejected: the lengths a real module never sends
// (little-endian 00 01 00 04) are refused by the GA 467 decoder, and only
// the explicit other order reads them.
func TestReadReplyLittleEndianRejected(t *testing.T) {
	r, err := ga467.ParseReply(samtest.RealReadFrame())
	if err != nil {
		t.Fatal(err)
	}
	le := bytes.Clone(r.Data)
	copy(le, []byte{0x00, 0x01, 0x00, 0x04})
	if _, err := ga467.DecodeReadReply(le, false); !errors.Is(err, ga467.ErrReadReply) {
		t.Fatalf("little-endian lengths accepted as GA 467: %v", err)
	}
	if _, err := ga467.DecodeReadReplyOrder(r.Data, false, binary.LittleEndian); err == nil {
		t.Fatal("big-endian lengths accepted as little-endian")
	}
	rr, order, err := ga467.SniffReadReply(le)
	if err != nil || order != binary.LittleEndian || len(rr.Text) != 256 {
		t.Fatalf("sniff little-endian: %v %v", order, err)
	}
	rr, order, err = ga467.SniffReadReply(r.Data)
	if err != nil || order != ga467.ReplyOrder || rr.WithFingerprint {
		t.Fatalf("sniff real reply: %v %v", order, err)
	}
}

func TestReadReplyBounds(t *testing.T) {
	text, photo := samtest.RealText(), samtest.RealPhoto()
	for _, tc := range []struct {
		name string
		r    ga467.ReadReply
	}{
		{"short text", ga467.ReadReply{Text: text[:255], Photo: photo}},
		{"long photo", ga467.ReadReply{Text: text, Photo: append(bytes.Clone(photo), 0)}},
		{"long fingerprint", ga467.ReadReply{Text: text, Photo: photo, WithFingerprint: true, Fingerprint: make([]byte, 1025)}},
		{"fingerprint in 30 01", ga467.ReadReply{Text: text, Photo: photo, Fingerprint: []byte{1}}},
	} {
		if _, err := ga467.EncodeReadReply(&tc.r); !errors.Is(err, ga467.ErrReadReply) {
			t.Errorf("%s: encode: %v", tc.name, err)
		}
	}
	for _, tc := range []struct {
		name string
		hex  string
	}{
		{"empty", ""},
		{"lengths only", "0100 0400"},
		{"short by one", "0100 0400" + strings.Repeat("00", 1279)},
		{"long by one", "0100 0400" + strings.Repeat("00", 1281)},
		{"text 255", "00FF 0400" + strings.Repeat("00", 1279)},
		{"photo 1025", "0100 0401" + strings.Repeat("00", 1281)},
	} {
		b := unhex(t, tc.hex)
		if _, err := ga467.DecodeReadReply(b, false); !errors.Is(err, ga467.ErrReadReply) {
			t.Errorf("%s: decode: %v", tc.name, err)
		}
	}
}

// TestDescribeRealRead: Describe on the real frame shows the big-endian
// lengths, the photo size and, asked for, the decoded text fields.
func TestDescribeRealRead(t *testing.T) {
	d, err := ga467.Describe(samtest.RealReadFrame(), false, false)
	if err != nil {
		t.Fatal(err)
	}
	if d.Reading == nil || d.Reading.Order != "big-endian" || d.Reading.TextLen != 256 || d.Reading.PhotoLen != 1024 {
		t.Fatalf("reading %+v", d.Reading)
	}
	all := strings.Join(d.Details, "\n")
	if strings.Contains(all, samtest.RealName) || strings.Contains(all, samtest.RealNumber) || len(d.Reading.Fields) != 0 {
		t.Fatalf("personal data shown without Personal: %q", all)
	}
	if !strings.Contains(all, "ID number: 18 characters") {
		t.Errorf("details %q", all)
	}
	d, err = ga467.DescribeWith(samtest.RealReadAllFrame(), ga467.DescribeOptions{Personal: true})
	if err != nil {
		t.Fatal(err)
	}
	if !d.Reading.WithFingerprint || d.Reading.FingerprintLen != 1024 {
		t.Fatalf("reading %+v", d.Reading)
	}
	got := map[string]string{}
	for _, f := range d.Reading.Fields {
		got[f.Name] = f.Value
	}
	for name, want := range map[string]string{"name": samtest.RealName, "sex": samtest.RealSex, "nation": samtest.RealNation,
		"birth date": samtest.RealBirth, "address": samtest.RealAddress, "ID number": samtest.RealNumber,
		"issuing authority": samtest.RealAuthority, "valid from": samtest.RealValidFrom, "valid to": samtest.RealValidTo} {
		if got[name] != want {
			t.Errorf("field %s = %q, want %q", name, got[name], want)
		}
	}
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	s = strings.ReplaceAll(s, " ", "")
	b := make([]byte, len(s)/2)
	for i := range b {
		var v byte
		for _, c := range s[2*i : 2*i+2] {
			v <<= 4
			switch {
			case c >= '0' && c <= '9':
				v |= byte(c - '0')
			case c >= 'A' && c <= 'F':
				v |= byte(c - 'A' + 10)
			default:
				t.Fatalf("bad hex %q", s)
			}
		}
		b[i] = v
	}
	return b
}

func FuzzDecodeReadReply(f *testing.F) {
	for _, fr := range [][]byte{samtest.RealReadFrame(), samtest.RealReadAllFrame(), samtest.RealReadNoFingerprintFrame()} {
		r, err := ga467.ParseReply(fr)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(r.Data, false)
		f.Add(r.Data, true)
		f.Add(r.Data[:100], true)
	}
	f.Add([]byte{0x01, 0x00}, false)
	f.Fuzz(func(t *testing.T, b []byte, fp bool) {
		for _, order := range []binary.ByteOrder{binary.BigEndian, binary.LittleEndian} {
			rr, err := ga467.DecodeReadReplyOrder(b, fp, order)
			if err != nil {
				if !errors.Is(err, ga467.ErrReadReply) {
					t.Fatalf("error %v does not wrap ErrReadReply", err)
				}
				continue
			}
			again, err := ga467.EncodeReadReplyOrder(rr, order)
			if err != nil {
				t.Fatalf("decoded reply does not encode: %v", err)
			}
			if !bytes.Equal(again, b) {
				t.Fatalf("re-encoded % X, decoded % X", again[:8], b[:8])
			}
		}
		ga467.SniffReadReply(b)
	})
}
