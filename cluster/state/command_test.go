package state

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
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
	good, _ := (&Command{Version: 1, Op: OpDeleteReader, At: t0, Serial: "R"}).Encode()
	for _, bad := range [][]byte{nil, {1}, {0, 6}, good[:len(good)-1], append(bytes.Clone(good), 0)} {
		if _, err := Decode(bad); !errors.Is(err, ErrInvalidCommand) {
			t.Errorf("Decode(%x) = %v", bad, err)
		}
	}
	if _, err := NewFSM().Apply([]byte{1, 6, 0}); !errors.Is(err, ErrInvalidCommand) {
		t.Fatalf("FSM.Apply(garbage) = %v", err)
	}
}

// TestWireBytes pins the wire form: the raft log of a running cluster holds
// these bytes, so an encoding change must be a new CommandVersion.
func TestWireBytes(t *testing.T) {
	at := t0
	ts := hex.EncodeToString(binary.AppendVarint(nil, t0.UnixNano()))
	tests := []struct {
		c    Command
		want string
	}{
		{Command{Op: OpAddCards, Reason: "x", Cards: []CardSerial{{1, 2, 3, 4, 5, 6, 7, 8}}}, "0101" + ts + "00017801" + "0102030405060708"},
		{Command{Op: OpRemoveCards, By: "op", Cards: []CardSerial{{0, 0, 0, 0, 0, 0, 0, 9}}}, "0102" + ts + "026f7001" + "0000000000000009"},
		{Command{Op: OpRecordAuthFailure, Serial: "R1", Threshold: 5}, "0108" + ts + "0002523105"},
		{Command{Op: OpSetConfig, Key: "k", Value: "v"}, "010e" + ts + "00016b0176"},
	}
	for _, tt := range tests {
		tt.c.Version, tt.c.At = CommandVersion, at
		b, err := tt.c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(b); got != tt.want {
			t.Errorf("%s: %s, want %s", tt.c.Op, got, tt.want)
		}
		d, err := Decode(b)
		if err != nil {
			t.Fatal(err)
		}
		d.At = at
		if !reflect.DeepEqual(*d, tt.c) {
			t.Errorf("%s: round trip %+v", tt.c.Op, d)
		}
	}
}

// TestNewerCommandHalts: a command of a newer version (or an op this
// version does not know) stops the FSM for good instead of diverging.
func TestNewerCommandHalts(t *testing.T) {
	f := NewFSM()
	defer f.Close()
	good, _ := (&Command{Version: 1, Op: OpAddCards, At: t0, Reason: "x", Cards: []CardSerial{{1}}}).Encode()
	if _, err := f.Apply(good); err != nil {
		t.Fatal(err)
	}
	for _, newer := range [][]byte{{2, 1, 0}, {1, 200}} {
		g := NewFSM()
		if _, err := g.Apply(newer); !errors.Is(err, ErrNewerCommand) || !strings.Contains(err.Error(), "upgrade this appliance") {
			t.Fatalf("Apply(%x) = %v", newer, err)
		}
		if _, err := g.Apply(good); !errors.Is(err, ErrNewerCommand) {
			t.Fatalf("after halting: %v", err)
		}
		if g.CardCount() != 0 || g.Halted() == nil {
			t.Fatal("applied after halting")
		}
		if _, err := g.Capture(); !errors.Is(err, ErrNewerCommand) {
			t.Fatalf("snapshot of a halted FSM: %v", err)
		}
		g.Close()
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
