package wire

import (
	"slices"
	"testing"
)

func TestVersionsMessage(t *testing.T) {
	if got := VersionsMessage(); got != "versions: 1" {
		t.Fatalf("VersionsMessage() = %q, want the PROTOCOL.md §11 example \"versions: 1\"", got)
	}
	for _, tc := range []struct {
		msg  string
		want []uint8
	}{
		{"versions: 1", []uint8{1}},
		{"versions: 1,2", []uint8{1, 2}},
		{"versions: 1, 2", []uint8{1, 2}},
		{"versions: 255", []uint8{255}},
		{"versions: ", nil},
		{"versions: 0", nil},
		{"versions: 256", nil},
		{"versions: 01", nil},
		{"versions: 1,", nil},
		{"versions: x", nil},
		{"wire: unsupported version 2 (speak 1)", nil},
		{"", nil},
	} {
		got, ok := ParseVersions(tc.msg)
		if ok != (tc.want != nil) || !slices.Equal(got, tc.want) {
			t.Errorf("ParseVersions(%q) = %v, %v; want %v", tc.msg, got, ok, tc.want)
		}
	}
}

func FuzzParseVersions(f *testing.F) {
	f.Add("versions: 1")
	f.Add("versions: 1, 2,3")
	f.Fuzz(func(t *testing.T, msg string) {
		v, ok := ParseVersions(msg)
		if ok && (len(v) == 0 || slices.Contains(v, 0)) {
			t.Fatalf("ParseVersions(%q) = %v, ok", msg, v)
		}
	})
}
