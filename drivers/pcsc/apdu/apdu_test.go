package apdu

import (
	"bytes"
	"errors"
	"testing"

	"github.com/samrack/samrack/drivers/ga467"
)

func TestCommandRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0x5A}, 3000)
	tests := []struct {
		name string
		cmd  ga467.Command
		want []byte // nil: only round-trip
	}{
		{"status", ga467.SAMStatus, []byte{0x80, 0x46, 0x11, 0xFF, 0x00, 0x00, 0x00}},
		{"find", ga467.FindCard, []byte{0x80, 0x46, 0x20, 0x01, 0x00, 0x00, 0x00}},
		{"max RF", ga467.Command{Cmd: 0x61, Para: 0xFF, Data: []byte{0x80}},
			[]byte{0x80, 0x46, 0x61, 0xFF, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00}},
		{"card reply 3000 bytes", ga467.Command{Cmd: ga467.CmdCardReply, Data: big}, nil},
	}
	for _, tt := range tests {
		b, err := AppendCommand(nil, tt.cmd)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if tt.want != nil && !bytes.Equal(b, tt.want) {
			t.Errorf("%s: % X, want % X", tt.name, b, tt.want)
		}
		got, err := ParseCommand(b)
		if err != nil {
			t.Fatalf("%s: parse: %v", tt.name, err)
		}
		if got.Cmd != tt.cmd.Cmd || got.Para != tt.cmd.Para || !bytes.Equal(got.Data, tt.cmd.Data) {
			t.Errorf("%s: round trip gave %v", tt.name, got)
		}
	}
	if _, err := AppendCommand(nil, ga467.Command{Data: make([]byte, 0x10000)}); !errors.Is(err, ErrTooLong) {
		t.Errorf("64 KiB data: %v, want ErrTooLong", err)
	}
}

func TestParseCommandCases(t *testing.T) {
	tests := []struct {
		name string
		b    []byte
		data []byte
		sw   uint16 // 0: ok
	}{
		{"case 1", []byte{0x80, 0x46, 0x11, 0xFF}, nil, 0},
		{"case 2S", []byte{0x80, 0x46, 0x11, 0xFF, 0x00}, nil, 0},
		{"case 3S", []byte{0x80, 0x46, 0x61, 0xFF, 0x01, 0x42}, []byte{0x42}, 0},
		{"case 4S", []byte{0x80, 0x46, 0x61, 0xFF, 0x01, 0x42, 0x00}, []byte{0x42}, 0},
		{"case 2E", []byte{0x80, 0x46, 0x11, 0xFF, 0x00, 0x01, 0x00}, nil, 0},
		{"case 3E", []byte{0x80, 0x46, 0x61, 0xFF, 0x00, 0x00, 0x01, 0x42}, []byte{0x42}, 0},
		{"short Lc too long", []byte{0x80, 0x46, 0x61, 0xFF, 0x02, 0x42}, nil, SWWrongLength},
		{"extended Lc 0", []byte{0x80, 0x46, 0x61, 0xFF, 0x00, 0x00, 0x00, 0x00}, nil, SWWrongLength},
		{"extended truncated", []byte{0x80, 0x46, 0x61, 0xFF, 0x00, 0x00}, nil, SWWrongLength},
		{"header only 3", []byte{0x80, 0x46, 0x11}, nil, SWWrongLength},
		{"CLA", []byte{0x00, 0x46, 0x11, 0xFF}, nil, SWCLANotSupport},
		{"INS", []byte{0x80, 0xA4, 0x11, 0xFF}, nil, SWINSNotSupport},
	}
	for _, tt := range tests {
		cmd, err := ParseCommand(tt.b)
		var se *StatusError
		switch {
		case tt.sw == 0 && err != nil:
			t.Errorf("%s: %v", tt.name, err)
		case tt.sw == 0 && !bytes.Equal(cmd.Data, tt.data):
			t.Errorf("%s: data % X, want % X", tt.name, cmd.Data, tt.data)
		case tt.sw != 0 && (!errors.As(err, &se) || se.SW != tt.sw):
			t.Errorf("%s: %v, want status %04X", tt.name, err, tt.sw)
		}
	}
}

func TestReply(t *testing.T) {
	r := ga467.Reply{SW3: ga467.SW3CardExchange, Data: []byte{1, 2, 3}}
	b := AppendReply(nil, r)
	if want := []byte{0, 0, 0xE0, 1, 2, 3, 0x90, 0x00}; !bytes.Equal(b, want) {
		t.Fatalf("% X, want % X", b, want)
	}
	got, err := ParseReply(b)
	if err != nil || got.SW3 != 0xE0 || !bytes.Equal(got.Data, r.Data) {
		t.Fatalf("%v %v", got, err)
	}
	for _, bad := range [][]byte{nil, {0x90}, {0x90, 0x00}, {0, 0, 0x90, 0x00}} {
		if _, err := ParseReply(bad); !errors.Is(err, ErrMalformed) {
			t.Errorf("% X: %v, want ErrMalformed", bad, err)
		}
	}
	var se *StatusError
	if _, err := ParseReply(AppendStatus(nil, SWINSNotSupport)); !errors.As(err, &se) || se.SW != SWINSNotSupport {
		t.Errorf("6D 00: %v", err)
	}
}

func TestATR(t *testing.T) {
	atr := ATR()
	var x byte
	for _, c := range atr[1:] {
		x ^= c
	}
	if x != 0 || atr[0] != 0x3B || len(atr) != 13 {
		t.Errorf("ATR % X: TCK check %02X", atr, x)
	}
}

func FuzzParseCommand(f *testing.F) {
	f.Add([]byte{0x80, 0x46, 0x11, 0xFF, 0x00, 0x00, 0x00})
	f.Add([]byte{0x80, 0x46, 0x61, 0xFF, 0x00, 0x00, 0x01, 0x80, 0x00, 0x00})
	f.Add([]byte{0x80, 0x46, 0x61, 0xFF, 0x01, 0x42, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		cmd, err := ParseCommand(b)
		if err != nil {
			return
		}
		// Whatever parses re-encodes and parses to the same command.
		enc, err := AppendCommand(nil, cmd)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseCommand(enc)
		if err != nil || again.Cmd != cmd.Cmd || again.Para != cmd.Para || !bytes.Equal(again.Data, cmd.Data) {
			t.Fatalf("% X → %v → % X → %v, %v", b, cmd, enc, again, err)
		}
	})
}

func FuzzParseReply(f *testing.F) {
	f.Add([]byte{0, 0, 0x90, 0x90, 0x00})
	f.Add([]byte{0x6D, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := ParseReply(b)
		if err != nil {
			return
		}
		if enc := AppendReply(nil, r); !bytes.Equal(enc, b) {
			t.Fatalf("% X → %v → % X", b, r, enc)
		}
	})
}
