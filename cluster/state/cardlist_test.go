package state

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func TestParseCardList(t *testing.T) {
	in := "\xef\xbb\xbf# list of 2024-05-01\r\n0123456789ABCDEF, reported stolen\r\n\n  fedcba9876543210  # trailing comment\n0000000000000001,挂失\n"
	es, err := ParseCardListEntries(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	want := []CardListEntry{
		{Serial: [8]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}, Reason: "reported stolen"},
		{Serial: [8]byte{0xfe, 0xdc, 0xba, 0x98, 0x76, 0x54, 0x32, 0x10}},
		{Serial: [8]byte{7: 1}, Reason: "挂失"},
	}
	if fmt.Sprint(es) != fmt.Sprint(want) {
		t.Fatalf("got %v\nwant %v", es, want)
	}
	ss, err := ParseCardList(strings.NewReader(in))
	if err != nil || len(ss) != 3 || ss[1] != want[1].Serial {
		t.Fatalf("ParseCardList: %v %v", ss, err)
	}

	bad := []struct{ in, line string }{
		{"0123456789abcdef\n0123\n", "line 2:"},
		{"\n\n0123456789abcdeg\n", "line 3:"},
		{"0000000000000000\n", "line 1:"},
		{"0123456789abcdef,\x01\n", "line 1:"},
		{"0123456789abcdef\n" + strings.Repeat("x", 10000) + "\n", "line 2:"},
		{"0123456789abcdef, " + strings.Repeat("x", 300), "line 1:"},
	}
	for _, b := range bad {
		_, err := ParseCardList(strings.NewReader(b.in))
		if !errors.Is(err, ErrBadCardList) || !strings.Contains(err.Error(), b.line) {
			t.Errorf("%.30q: %v, want %s", b.in, err, b.line)
		}
	}
}

func FuzzParseCardList(f *testing.F) {
	f.Add([]byte("0123456789abcdef,stolen\n# c\n\nFEDCBA9876543210\r\n"))
	f.Add([]byte("0123\n"))
	f.Add([]byte("\xef\xbb\xbf0000000000000001 , x # y"))
	f.Fuzz(func(t *testing.T, in []byte) {
		es, err := ParseCardListEntries(bytes.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrBadCardList) || !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error %v", err)
			}
			return
		}
		// Whatever parsed must survive a round trip through the canonical form.
		var out bytes.Buffer
		for _, e := range es {
			if e.Serial == ([8]byte{}) {
				t.Fatal("zero serial accepted")
			}
			fmt.Fprintf(&out, "%s,%s\n", hex.EncodeToString(e.Serial[:]), e.Reason)
		}
		again, err := ParseCardListEntries(&out)
		if err != nil {
			t.Fatalf("canonical form refused: %v", err)
		}
		if fmt.Sprint(again) != fmt.Sprint(es) {
			t.Fatalf("round trip: %v != %v", again, es)
		}
		// And must make valid commands.
		for _, c := range CardCommands(es, "imported", "fuzz") {
			c.At = t0
			if err := c.Validate(); err != nil {
				t.Fatal(err)
			}
		}
	})
}
