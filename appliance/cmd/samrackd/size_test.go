package main

import "testing"

func TestByteSize(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"16GiB", 16 << 30, true}, {"100GiB", 100 << 30, true}, {"512MiB", 512 << 20, true}, {"64K", 64 << 10, true},
		{"1048576", 1 << 20, true}, {" 2 TiB", 2 << 40, true},
		{"", 0, false}, {"0", 0, false}, {"-1GiB", 0, false}, {"1.5GiB", 0, false}, {"GiB", 0, false},
		{"9999999999TiB", 0, false}, {"16GB", 0, false},
	} {
		var b byteSize
		err := b.Set(tt.in)
		if (err == nil) != tt.ok || (tt.ok && int64(b) != tt.want) {
			t.Errorf("Set(%q) = %d, %v; want %d ok=%v", tt.in, b, err, tt.want, tt.ok)
		}
	}
	b := byteSize(16 << 30)
	if b.String() != "16GiB" {
		t.Errorf("String() = %s", b.String())
	}
}
