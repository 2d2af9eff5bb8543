// Package statetest is the conformance suite of state.Store: one body run
// over every implementation (state.Memory, state.Local, the raft store
// with one node and with three), as NATS runs one body over memory and
// file storage. Each implementation's tests call Run with a way to open an
// empty store.
package statetest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/drivers/ga467"
)

// Store is what the suite needs: a state.Store that writes a snapshot of
// its applied state.
type Store interface {
	state.Store
	Snapshot(w io.Writer) error
}

// Opener returns an empty store, closed by the test's cleanup.
type Opener func(t *testing.T) Store

// Run runs every conformance test against the stores open returns.
func Run(t *testing.T, open Opener) {
	for _, tc := range []struct {
		name string
		fn   func(*testing.T, Store)
	}{
		{"Cards", testCards},
		{"Readers", testReaders},
		{"Inventory", testInventory},
		{"Validation", testValidation},
		{"Model", testModel},
		{"SameBytesAsMemory", testSameBytes},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, open(t)) })
	}
}

func serial(k uint64) (s state.CardSerial) {
	binary.BigEndian.PutUint64(s[:], k)
	return s
}

func key(s [8]byte) uint64 { return binary.BigEndian.Uint64(s[:]) }

func cards(op state.Op, reason string, keys ...uint64) *state.Command {
	c := &state.Command{Version: state.CommandVersion, Op: op, Reason: reason, By: "test"}
	for _, k := range keys {
		c.Cards = append(c.Cards, serial(k))
	}
	return c
}

func exec(t *testing.T, s state.Store, c *state.Command) state.Result {
	t.Helper()
	if c.Version == 0 {
		c.Version = state.CommandVersion
	}
	if c.At.IsZero() {
		c.At = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)
	}
	res, err := s.Exec(context.Background(), c)
	if err != nil {
		t.Fatalf("%s: %v", c.Op, err)
	}
	return res
}

func reader(serial string) *state.Reader {
	return &state.Reader{Serial: serial, Cipher: state.CipherSM4, Key: bytes.Repeat([]byte{7}, 16), Note: "lobby"}
}

func testCards(t *testing.T, s Store) {
	if r := exec(t, s, cards(state.OpAddCards, "stolen", 5, 1, 3)); r.Cards != 3 {
		t.Fatalf("added %d", r.Cards)
	}
	if r := exec(t, s, cards(state.OpAddCards, "lost", 3, 9)); r.Cards != 1 {
		t.Fatalf("re-add counted %d new", r.Cards)
	}
	if e, ok := s.CardBlacklisted(serial(3)); !ok || e.Reason != "lost" || e.AddedBy != "test" {
		t.Fatalf("card 3 = %+v %v", e, ok)
	}
	if r := exec(t, s, cards(state.OpRemoveCards, "", 5, 77)); r.Cards != 1 {
		t.Fatalf("removed %d", r.Cards)
	}
	if _, ok := s.CardBlacklisted(serial(5)); ok || s.CardCount() != 3 {
		t.Fatalf("after remove: count %d", s.CardCount())
	}
	var got []uint64
	for _, c := range s.Cards([8]byte{}, 10) {
		got = append(got, key(c.Serial))
	}
	if !reflect.DeepEqual(got, []uint64{1, 3, 9}) {
		t.Fatalf("cards %v", got)
	}
	if p := s.Cards(serial(1), 1); len(p) != 1 || key(p[0].Serial) != 3 {
		t.Fatalf("page %+v", p)
	}
}

func testReaders(t *testing.T, s Store) {
	exec(t, s, &state.Command{Op: state.OpPutReader, Reader: reader("R1")})
	for i := 1; i <= 3; i++ {
		r := exec(t, s, &state.Command{Op: state.OpRecordAuthFailure, Serial: "R1", Threshold: 3})
		if r.Suspended != (i == 3) || r.Reader.FailedAuth != i {
			t.Fatalf("failure %d: %+v", i, r)
		}
	}
	if r, _ := s.Reader("R1"); r.Status != state.ReaderSuspended {
		t.Fatalf("R1 %+v", r)
	}
	exec(t, s, &state.Command{Op: state.OpSetReaderStatus, Serial: "R1", Status: state.ReaderActive})
	if r, _ := s.Reader("R1"); r.Status != state.ReaderActive || r.FailedAuth != 0 {
		t.Fatalf("reactivated %+v", r)
	}
	err := s.Apply(context.Background(), &state.Command{Version: state.CommandVersion, Op: state.OpRecordAuthFailure, Serial: "nope", Threshold: 3})
	if !errors.Is(err, state.ErrUnknownReader) {
		t.Fatalf("unknown reader: %v", err)
	}
	exec(t, s, &state.Command{Op: state.OpAddReaderBlacklist, Serial: "R9", Reason: "stolen van"})
	sams := []ga467.SAMID{{A: 5, B: 1, Date: 20240101, Serial1: 1, Serial2: 2}}
	exec(t, s, &state.Command{Op: state.OpSetAffinity, Serial: "R1", SAMs: sams})
	if !s.ReaderBlacklisted("R9") || !reflect.DeepEqual(s.Affinity("R1"), sams) {
		t.Fatal("reader blacklist or affinity")
	}
	exec(t, s, &state.Command{Op: state.OpDeleteReader, Serial: "R1"})
	if _, ok := s.Reader("R1"); ok || s.Affinity("R1") != nil {
		t.Fatal("delete")
	}
}

func testInventory(t *testing.T, s Store) {
	sam := ga467.SAMID{A: 5, Date: 20240101, Serial1: 9}
	exec(t, s, &state.Command{Op: state.OpPutSlot, Slot: &state.Slot{Node: "n1", Name: "3", SAM: sam, State: "enabled", Health: "OK"}})
	exec(t, s, &state.Command{Op: state.OpPutSlot, Slot: &state.Slot{Node: "n1", Name: "3", SAM: sam, State: "enabled", Health: "OK", Admin: state.SlotAdminDrained}})
	exec(t, s, &state.Command{Op: state.OpSetConfig, Key: "auth.threshold", Value: "5"})
	if sl := s.Slots(); len(sl) != 1 || sl[0].Admin != state.SlotAdminDrained || sl[0].SAM != sam {
		t.Fatalf("slots %+v", sl)
	}
	if v, ok := s.Config("auth.threshold"); !ok || v != "5" {
		t.Fatal("config")
	}
}

func testValidation(t *testing.T, s Store) {
	bad := &state.Command{Version: state.CommandVersion, Op: state.OpAddCards, Cards: []state.CardSerial{{1}}}
	if err := s.Apply(context.Background(), bad); !errors.Is(err, state.ErrInvalidCommand) {
		t.Fatalf("no reason: %v", err)
	}
	newer := cards(state.OpAddCards, "x", 1)
	newer.Version = state.CommandVersion + 1
	if err := s.Apply(context.Background(), newer); !errors.Is(err, state.ErrInvalidCommand) {
		t.Fatalf("a proposer does not send a version it does not speak: %v", err)
	}
	if s.CardCount() != 0 {
		t.Fatal("applied")
	}
}

// testModel applies random card commands and compares with a map; the
// small key space exercises the layers, tombstones and merges.
func testModel(t *testing.T, s Store) {
	rng := rand.New(rand.NewPCG(1, 2))
	model := map[uint64]string{}
	steps := 120
	if testing.Short() {
		steps = 40
	}
	for step := range steps {
		keys := make([]uint64, 1+rng.IntN(2000))
		for i := range keys {
			keys[i] = 1 + rng.Uint64N(20000)
		}
		if rng.IntN(3) == 0 {
			exec(t, s, cards(state.OpRemoveCards, "", keys...))
			for _, k := range keys {
				delete(model, k)
			}
		} else {
			reason := fmt.Sprint("r", rng.IntN(5))
			exec(t, s, cards(state.OpAddCards, reason, keys...))
			for _, k := range keys {
				model[k] = reason
			}
		}
		if s.CardCount() != len(model) {
			t.Fatalf("step %d: count %d, model %d", step, s.CardCount(), len(model))
		}
		for range 100 {
			k := 1 + rng.Uint64N(20001)
			e, ok := s.CardBlacklisted(serial(k))
			if want, wok := model[k]; ok != wok || e.Reason != want {
				t.Fatalf("step %d: card %d = %q,%v; model %q,%v", step, k, e.Reason, ok, want, wok)
			}
		}
	}
	n := 0
	for after := [8]byte{}; ; {
		p := s.Cards(after, 999)
		if len(p) == 0 {
			break
		}
		for _, c := range p {
			if model[key(c.Serial)] != c.Reason {
				t.Fatalf("listing: %d", key(c.Serial))
			}
		}
		n += len(p)
		after = p[len(p)-1].Serial
	}
	if n != len(model) {
		t.Fatalf("listed %d, model %d", n, len(model))
	}
}

// testSameBytes: the same commands give the same snapshot bytes as
// state.Memory: every implementation computes the same state.
func testSameBytes(t *testing.T, s Store) {
	m := state.NewMemory()
	defer m.Close()
	for _, st := range []state.Store{s, m} {
		exec(t, st, cards(state.OpAddCards, "a", 1, 2, 3, 4000))
		exec(t, st, cards(state.OpRemoveCards, "", 2))
		exec(t, st, &state.Command{Op: state.OpPutReader, Reader: reader("R1")})
		exec(t, st, &state.Command{Op: state.OpRecordAuthFailure, Serial: "R1", Threshold: 9})
		exec(t, st, &state.Command{Op: state.OpSetConfig, Key: "k", Value: "v"})
	}
	var a, b bytes.Buffer
	if err := s.Snapshot(&a); err != nil {
		t.Fatal(err)
	}
	if err := m.Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Fatal("snapshot differs from state.Memory's")
	}
}
