package state

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
)

func TestValidate(t *testing.T) {
	good := func(c Command) Command {
		c.Version, c.At = CommandVersion, t0
		return c
	}
	sam := ga467.SAMID{A: 5, Date: 20240101, Serial1: 7}
	tests := []struct {
		name string
		c    Command
		ok   bool
	}{
		{"add cards", good(Command{Op: OpAddCards, Cards: []CardSerial{{1}}, Reason: "stolen"}), true},
		{"no version", Command{Op: OpAddCards, At: t0, Cards: []CardSerial{{1}}, Reason: "x"}, false},
		{"version 2", func() Command { c := good(Command{Op: OpClearAffinity, Serial: "R"}); c.Version = 2; return c }(), false},
		{"no time", Command{Version: 1, Op: OpClearAffinity, Serial: "R"}, false},
		{"unknown op", good(Command{Op: "explode"}), false},
		{"no cards", good(Command{Op: OpAddCards, Reason: "x"}), false},
		{"zero card", good(Command{Op: OpRemoveCards, Cards: []CardSerial{{}}}), false},
		{"too many cards", good(Command{Op: OpRemoveCards, Cards: make([]CardSerial, MaxCardsPerCommand+1)}), false},
		{"no reason", good(Command{Op: OpAddCards, Cards: []CardSerial{{1}}}), false},
		{"reason on remove", good(Command{Op: OpRemoveCards, Cards: []CardSerial{{1}}, Reason: "x"}), false},
		{"long reason", good(Command{Op: OpAddReaderBlacklist, Serial: "R", Reason: strings.Repeat("x", MaxReasonLen+1)}), false},
		{"control in reason", good(Command{Op: OpAddReaderBlacklist, Serial: "R", Reason: "a\nb"}), false},
		{"bad utf8", good(Command{Op: OpAddReaderBlacklist, Serial: "R", Reason: "\xff"}), false},
		{"chinese reason", good(Command{Op: OpAddReaderBlacklist, Serial: "R", Reason: "挂失"}), true},
		{"serial with space", good(Command{Op: OpDeleteReader, Serial: "R 1"}), false},
		{"long serial", good(Command{Op: OpDeleteReader, Serial: strings.Repeat("R", 33)}), false},
		{"cards on delete", good(Command{Op: OpDeleteReader, Serial: "R", Cards: []CardSerial{{1}}}), false},
		{"put reader", good(Command{Op: OpPutReader, Reader: testReader("R")}), true},
		{"put nil reader", good(Command{Op: OpPutReader}), false},
		{"bad cipher", good(Command{Op: OpPutReader, Reader: &Reader{Serial: "R", Cipher: "des", Key: make([]byte, 16)}}), false},
		{"short key", good(Command{Op: OpPutReader, Reader: &Reader{Serial: "R", Cipher: "aes", Key: make([]byte, 8)}}), false},
		{"status", good(Command{Op: OpSetReaderStatus, Serial: "R", Status: ReaderSuspended}), true},
		{"status unset", good(Command{Op: OpSetReaderStatus, Serial: "R"}), false},
		{"status 9", good(Command{Op: OpSetReaderStatus, Serial: "R", Status: 9}), false},
		{"threshold", good(Command{Op: OpRecordAuthFailure, Serial: "R", Threshold: 5}), true},
		{"threshold 0", good(Command{Op: OpRecordAuthFailure, Serial: "R"}), false},
		{"threshold on reset", good(Command{Op: OpResetAuthFailures, Serial: "R", Threshold: 5}), false},
		{"affinity", good(Command{Op: OpSetAffinity, Serial: "R", SAMs: []ga467.SAMID{sam}}), true},
		{"affinity empty", good(Command{Op: OpSetAffinity, Serial: "R"}), false},
		{"affinity dup", good(Command{Op: OpSetAffinity, Serial: "R", SAMs: []ga467.SAMID{sam, sam}}), false},
		{"affinity zero", good(Command{Op: OpSetAffinity, Serial: "R", SAMs: []ga467.SAMID{{}}}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.c.Validate()
			if tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("%v does not wrap ErrInvalidCommand", err)
			}
			if _, err := tt.c.Encode(); tt.ok != (err == nil) {
				t.Fatalf("Encode() = %v", err)
			}
		})
	}
}

func TestEncodeDecode(t *testing.T) {
	loc := time.FixedZone("CST", 8*3600)
	c := &Command{Version: 1, Op: OpPutReader, At: t0.In(loc), By: "ops", Reader: testReader("R1")}
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	b2, _ := c.Encode()
	if string(b) != string(b2) {
		t.Fatal("encoding not deterministic")
	}
	d, err := Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	if !d.At.Equal(c.At) || !reflect.DeepEqual(d.Reader, c.Reader) || d.By != "ops" {
		t.Fatalf("round trip: %+v", d)
	}
	for _, bad := range []string{``, `{}`, `{"v":1,"op":"delete_reader","at":"2025-01-01T00:00:00Z","serial":"R","extra":1}`, `{"v":1,"op":"delete_reader","at":"2025-01-01T00:00:00Z","serial":"R"} {}`} {
		if _, err := Decode([]byte(bad)); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("Decode(%q) = %v", bad, err)
		}
	}
	if err := NewFSM().Apply([]byte(`{"v":1}`)); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("FSM.Apply(garbage) = %v", err)
	}
}

func TestCardCommands(t *testing.T) {
	var es []CardListEntry
	for i := range MaxCardsPerCommand + 5 {
		es = append(es, CardListEntry{Serial: cardSerial(uint64(i + 1))})
	}
	es = append(es, CardListEntry{Serial: cardSerial(9), Reason: "lost"})
	cmds := CardCommands(es, "stolen", "import")
	if len(cmds) != 3 || len(cmds[0].Cards) != MaxCardsPerCommand || len(cmds[1].Cards) != 5 || cmds[2].Reason != "lost" {
		t.Fatalf("%d commands", len(cmds))
	}
	for _, c := range cmds {
		c.At = t0
		if err := c.Validate(); err != nil {
			t.Fatal(err)
		}
	}
}
