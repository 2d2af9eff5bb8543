package ga467

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
)

// unhex decodes space-separated hex; it panics on bad input (test data).
func unhex(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// wire prepends the preamble to the bytes of a published example.
func wire(s string) []byte { return append(Preamble[:len(Preamble):len(Preamble)], unhex(s)...) }

// Byte-exact examples published by public host implementations (preamble omitted).
var commandExamples = []struct {
	name string
	cmd  Command
	hex  string
}{
	{"find card", FindCard, "00 03 20 01 22"},
	{"select card", SelectCard, "00 03 20 02 21"},
	{"read text+photo", ReadTextPhoto, "00 03 30 01 32"},
	{"read text+photo+fingerprint", ReadAll, "00 03 30 10 23"},
	{"SAM status", SAMStatus, "00 03 11 FF ED"},
	{"reset SAM", Reset, "00 03 10 FF EC"},
	{"read SAM ID", ReadSAMID, "00 03 12 FF EE"},
}

var replyExamples = []struct {
	name  string
	reply Reply
	hex   string
}{
	{"find OK", Reply{SW3: SW3CardFound, Data: []byte{0, 0, 0, 0}}, "00 08 00 00 9F 00 00 00 00 97"},
	{"find failed", Reply{SW3: SW3FindFailed}, "00 04 00 00 80 84"},
	{"select OK", Reply{SW3: SW3OK, Data: make([]byte, 8)}, "00 0C 00 00 90 00 00 00 00 00 00 00 00 9C"},
	{"status OK", Reply{SW3: SW3OK}, "00 04 00 00 90 94"},
}

func TestCommandExamples(t *testing.T) {
	for _, tt := range commandExamples {
		t.Run(tt.name, func(t *testing.T) {
			want := wire(tt.hex)
			got, err := tt.cmd.Frame()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Frame() = % X, want % X", got, want)
			}
			c, err := ParseCommand(want)
			if err != nil {
				t.Fatal(err)
			}
			if c.Cmd != tt.cmd.Cmd || c.Para != tt.cmd.Para || len(c.Data) != 0 {
				t.Errorf("ParseCommand = %v, want %v", c, tt.cmd)
			}
		})
	}
}

func TestReplyExamples(t *testing.T) {
	for _, tt := range replyExamples {
		t.Run(tt.name, func(t *testing.T) {
			want := wire(tt.hex)
			got, err := tt.reply.Frame()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("Frame() = % X, want % X", got, want)
			}
			r, err := ParseReply(want)
			if err != nil {
				t.Fatal(err)
			}
			if r.SW1 != tt.reply.SW1 || r.SW2 != tt.reply.SW2 || r.SW3 != tt.reply.SW3 || !bytes.Equal(r.Data, tt.reply.Data) {
				t.Errorf("ParseReply = %v, want %v", r, tt.reply)
			}
		})
	}
}

func TestRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 16, 1291, MaxData} {
		data := bytes.Repeat([]byte{0xA5}, n)
		c := Command{Cmd: CmdCardReply, Para: 0x42, Data: data}
		f, err := c.Frame()
		if err != nil {
			t.Fatalf("command with %d data bytes: %v", n, err)
		}
		got, err := ParseCommand(f)
		if err != nil || got.Cmd != c.Cmd || got.Para != c.Para || !bytes.Equal(got.Data, data) {
			t.Errorf("command with %d data bytes: got %v, %v", n, got, err)
		}
		r := Reply{SW1: 1, SW2: 2, SW3: SW3CardExchange, Data: data}
		f, err = r.Frame()
		if err != nil {
			t.Fatalf("reply with %d data bytes: %v", n, err)
		}
		gotR, err := ParseReply(f)
		if err != nil || gotR.SW1 != 1 || gotR.SW2 != 2 || gotR.SW3 != r.SW3 || !bytes.Equal(gotR.Data, data) {
			t.Errorf("reply with %d data bytes: got %v, %v", n, gotR, err)
		}
	}
}

func TestAppendFrameKeepsPrefix(t *testing.T) {
	dst := []byte("prefix")
	got, err := Reset.AppendFrame(dst)
	if err != nil {
		t.Fatal(err)
	}
	if want := append([]byte("prefix"), wire("00 03 10 FF EC")...); !bytes.Equal(got, want) {
		t.Errorf("AppendFrame = % X, want % X", got, want)
	}
}

func TestMaxLen(t *testing.T) {
	tests := []struct {
		name    string
		frame   func() ([]byte, error)
		wantErr error
	}{
		{"reply at MaxLen", Reply{Data: make([]byte, MaxLen-4)}.Frame, nil},
		{"reply over MaxLen", Reply{Data: make([]byte, MaxLen-3)}.Frame, ErrFrameTooLong},
		{"command at MaxLen", Command{Data: make([]byte, MaxLen-3)}.Frame, nil},
		{"command over MaxLen", Command{Data: make([]byte, MaxLen-2)}.Frame, ErrFrameTooLong},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := tt.frame()
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && len(f) != MaxFrame {
				t.Errorf("frame of %d bytes, want MaxFrame %d", len(f), MaxFrame)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tooLong := wire("20 01") // LEN 0x2001 > MaxLen
	tests := []struct {
		name    string
		frame   []byte
		command bool
		want    error
	}{
		{"empty", nil, false, ErrShortFrame},
		{"preamble only", Preamble[:], false, ErrShortFrame},
		{"no preamble", unhex("AA AA AA 96 68 00 04 00 00 90 94"), false, ErrNoPreamble},
		{"LEN too long", append(tooLong, 0), false, ErrFrameTooLong},
		{"reply LEN below minimum", wire("00 03 00 00 03"), false, ErrShortFrame},
		{"command LEN below minimum", wire("00 02 00 02"), true, ErrShortFrame},
		{"truncated", wire("00 04 00 00 90"), false, ErrLength},
		{"LEN mismatch short", wire("00 05 00 00 90 95"), false, ErrLength},
		{"LEN mismatch long", wire("00 04 00 00 90 94 00"), false, ErrLength},
		{"checksum", wire("00 04 00 00 90 95"), false, ErrChecksum},
		{"command checksum", wire("00 03 20 01 23"), true, ErrChecksum},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			if tt.command {
				_, err = ParseCommand(tt.frame)
			} else {
				_, err = ParseReply(tt.frame)
			}
			if !errors.Is(err, tt.want) {
				t.Errorf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestStrings(t *testing.T) {
	if got, want := FindCard.String(), "cmd 20 01 (0 data bytes)"; got != want {
		t.Errorf("Command.String() = %q, want %q", got, want)
	}
	if got, want := (Reply{SW3: 0x90, Data: []byte{1}}).String(), "reply 00 00 90 (1 data bytes)"; got != want {
		t.Errorf("Reply.String() = %q, want %q", got, want)
	}
}
