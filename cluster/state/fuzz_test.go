package state

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeCommand: the command decoder never panics, refuses with a
// named error, and what it accepts re-encodes to the same bytes.
func FuzzDecodeCommand(f *testing.F) {
	for _, c := range []*Command{
		cmdCards(OpAddCards, "stolen", 1, 2, 3),
		cmdCards(OpRemoveCards, "", 9),
		{Version: 1, Op: OpPutReader, Reader: testReader("R1")},
		{Version: 1, Op: OpSetConfig, Key: "k", Value: "v"},
		{Version: 1, Op: OpPutSlot, Slot: &Slot{Node: "n", Name: "1", State: "enabled"}},
	} {
		c.At = t0
		b, err := c.Encode()
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{2, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodeLenient(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidCommand) && !errors.Is(err, ErrNewerCommand) {
				t.Fatalf("unnamed error %v", err)
			}
			return
		}
		fsm := NewFSM()
		defer fsm.Close()
		if _, err := fsm.Apply(b); err != nil && !errors.Is(err, ErrUnknownReader) {
			t.Fatalf("decoded but not applied: %v", err)
		}
		if c.Validate() != nil {
			return
		}
		enc, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(enc, b) {
			t.Fatalf("re-encoded %x, want %x", enc, b)
		}
	})
}

// FuzzReadSnapshot: the snapshot reader never panics, refuses with
// ErrBadSnapshot, and what it accepts snapshots to the same bytes.
func FuzzReadSnapshot(f *testing.F) {
	m := NewMemory()
	defer m.Close()
	populateSmall(f, m)
	var b bytes.Buffer
	if err := m.Snapshot(&b); err != nil {
		f.Fatal(err)
	}
	f.Add(b.Bytes())
	var empty bytes.Buffer
	NewFSM().Snapshot(&empty)
	f.Add(empty.Bytes())
	f.Fuzz(func(t *testing.T, b []byte) {
		fsm := NewFSM()
		defer fsm.Close()
		if err := fsm.Restore(bytes.NewReader(b)); err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("unnamed error %v", err)
			}
			if fsm.CardCount() != 0 {
				t.Fatal("failed restore changed the state")
			}
			return
		}
		var again bytes.Buffer
		if err := fsm.Snapshot(&again); err != nil {
			t.Fatal(err)
		}
		g := NewFSM()
		defer g.Close()
		if err := g.Restore(bytes.NewReader(again.Bytes())); err != nil {
			t.Fatalf("a snapshot of a restored state does not restore: %v", err)
		}
	})
}

func populateSmall(t testing.TB, s Store) {
	t.Helper()
	for _, c := range []*Command{
		cmdCards(OpAddCards, "a", 5, 6, 700),
		cmdCards(OpAddCards, "b", 6, 9),
		{Version: 1, Op: OpPutReader, Reader: testReader("R1")},
		{Version: 1, Op: OpAddReaderBlacklist, Serial: "B", Reason: "x"},
		{Version: 1, Op: OpPutSlot, Slot: &Slot{Node: "n", Name: "1", State: "enabled"}},
		{Version: 1, Op: OpSetConfig, Key: "k", Value: "v"},
	} {
		if err := s.Apply(t.Context(), c); err != nil {
			t.Fatal(err)
		}
	}
}
