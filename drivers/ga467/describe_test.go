package ga467

import (
	"encoding/hex"
	"strings"
	"testing"
)

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		hex, dir, meaning, detail string
	}{
		{"AAAAAA9669000320 0122", "host→SAM", "find card", ""},
		{"AAAAAA966900031 0FFEC", "host→SAM", "reset SAM", ""},
		{"AAAAAA96690008 0000 9F 00000000 97", "SAM→host", "card found", "management info"},
		{"AAAAAA9669000C00009000000000000000009C", "SAM→host", "success", "card serial"},
		{"FFFF AAAAAA96690004000090 94", "SAM→host", "success", ""},
	} {
		b, err := hex.DecodeString(strings.ReplaceAll(tc.hex, " ", ""))
		if err != nil {
			t.Fatal(err)
		}
		d, err := Describe(b, false, false)
		if err != nil {
			t.Fatalf("%s: %v", tc.hex, err)
		}
		if d.Direction != tc.dir || d.Meaning != tc.meaning || d.Checksum != "ok" {
			t.Errorf("%s: got %+v", tc.hex, d)
		}
		if tc.detail != "" && !strings.Contains(strings.Join(d.Details, "\n"), tc.detail) {
			t.Errorf("%s: details %q lack %q", tc.hex, d.Details, tc.detail)
		}
	}
	if _, err := Describe([]byte{1, 2, 3}, false, false); err == nil {
		t.Error("no preamble: want an error")
	}
	bad, _ := hex.DecodeString("AAAAAA966900032001FF")
	if d, err := Describe(bad, false, false); err != nil || !strings.HasPrefix(d.Checksum, "bad") {
		t.Errorf("bad checksum: %+v %v", d, err)
	}
}

func FuzzDescribe(f *testing.F) {
	f.Add([]byte{0xAA, 0xAA, 0xAA, 0x96, 0x69, 0, 3, 0x20, 1, 0x22}, false)
	f.Fuzz(func(t *testing.T, b []byte, reply bool) {
		Describe(b, reply, false)
	})
}
