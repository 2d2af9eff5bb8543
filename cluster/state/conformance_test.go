package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

// fakeClock is a settable clock for the stores.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

// snapStore is a Store that can snapshot itself, for comparisons.
type snapStore interface {
	Store
	Snapshot(w io.Writer) error
	Restore(r io.Reader) error
}

// harness opens a store; reopen (nil if not persistent) closes and opens it again.
type harness struct {
	name string
	open func(t *testing.T) (s snapStore, reopen func() snapStore)
}

func harnesses() []harness {
	return []harness{
		{"Memory", func(t *testing.T) (snapStore, func() snapStore) {
			c := &fakeClock{t: t0}
			m := NewMemory(WithClock(c.now))
			t.Cleanup(func() { m.Close() })
			return m, nil
		}},
		{"Local", func(t *testing.T) (snapStore, func() snapStore) {
			c := &fakeClock{t: t0}
			path := filepath.Join(t.TempDir(), "state.db")
			l, err := OpenLocal(path, WithClock(c.now))
			if err != nil {
				t.Fatal(err)
			}
			cur := l
			t.Cleanup(func() { cur.Close() })
			return l, func() snapStore {
				if err := cur.Close(); err != nil {
					t.Fatal(err)
				}
				l, err := OpenLocal(path, WithClock(c.now))
				if err != nil {
					t.Fatal(err)
				}
				cur = l
				return l
			}
		}},
	}
}

// forEachStore runs body against every Store implementation.
func forEachStore(t *testing.T, body func(t *testing.T, s snapStore, reopen func() snapStore)) {
	for _, h := range harnesses() {
		t.Run(h.name, func(t *testing.T) {
			s, reopen := h.open(t)
			body(t, s, reopen)
		})
	}
}

func mustApply(t *testing.T, s Store, c *Command) {
	t.Helper()
	if c.Version == 0 {
		c.Version = CommandVersion
	}
	if err := s.Apply(context.Background(), c); err != nil {
		t.Fatalf("apply %s: %v", c.Op, err)
	}
}

func serialOf(n uint64) [8]byte { return cardSerial(n) }

func cmdCards(op Op, reason string, keys ...uint64) *Command {
	c := &Command{Version: CommandVersion, Op: op, Reason: reason, By: "test"}
	for _, k := range keys {
		c.Cards = append(c.Cards, CardSerial(cardSerial(k)))
	}
	return c
}

func testReader(serial string) *Reader {
	return &Reader{Serial: serial, Cipher: CipherSM4, Key: bytes.Repeat([]byte{7}, 16), Note: "lobby"}
}

func snapBytes(t *testing.T, s interface{ Snapshot(io.Writer) error }) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestCards(t *testing.T) {
	forEachStore(t, func(t *testing.T, s snapStore, reopen func() snapStore) {
		mustApply(t, s, cmdCards(OpAddCards, "stolen", 5, 1, 3))
		mustApply(t, s, cmdCards(OpAddCards, "lost", 3, 9))
		e, ok := s.CardBlacklisted(serialOf(3))
		if !ok || e.Reason != "lost" || e.AddedBy != "test" || e.AddedAt.IsZero() {
			t.Fatalf("card 3 = %+v, %v; want re-added as lost", e, ok)
		}
		if e, ok := s.CardBlacklisted(serialOf(5)); !ok || e.Reason != "stolen" {
			t.Fatalf("card 5 = %+v, %v", e, ok)
		}
		if _, ok := s.CardBlacklisted(serialOf(4)); ok {
			t.Fatal("card 4 blacklisted")
		}
		mustApply(t, s, cmdCards(OpRemoveCards, "", 5, 77))
		if _, ok := s.CardBlacklisted(serialOf(5)); ok {
			t.Fatal("card 5 still blacklisted")
		}
		if n := s.CardCount(); n != 3 {
			t.Fatalf("count %d, want 3", n)
		}
		check := func(s Store) {
			t.Helper()
			var got []uint64
			for _, c := range s.Cards([8]byte{}, 10) {
				got = append(got, cardKey(c.Serial))
			}
			if want := []uint64{1, 3, 9}; !reflect.DeepEqual(got, want) {
				t.Fatalf("cards %v, want %v", got, want)
			}
			page := s.Cards(serialOf(1), 1)
			if len(page) != 1 || cardKey(page[0].Serial) != 3 || page[0].Reason != "lost" {
				t.Fatalf("page after 1: %+v", page)
			}
		}
		check(s)
		if reopen != nil {
			s = reopen()
			check(s)
		}
	})
}

func TestCardsBulkRebuild(t *testing.T) {
	forEachStore(t, func(t *testing.T, s snapStore, reopen func() snapStore) {
		var keys []uint64
		for i := uint64(1); i <= 20000; i++ {
			keys = append(keys, i*7919)
		}
		mustApply(t, s, cmdCards(OpAddCards, "bulk", keys...)) // rebuilds at once
		mustApply(t, s, cmdCards(OpRemoveCards, "", keys[:5000]...))
		mustApply(t, s, cmdCards(OpAddCards, "again", keys[:10]...))
		if n := s.CardCount(); n != 15010 {
			t.Fatalf("count %d", n)
		}
		var n int
		after := [8]byte{}
		for {
			page := s.Cards(after, 4000)
			if len(page) == 0 {
				break
			}
			n += len(page)
			after = page[len(page)-1].Serial
		}
		if n != 15010 {
			t.Fatalf("listed %d", n)
		}
		if reopen != nil {
			want := snapBytes(t, s)
			s = reopen()
			if got := snapBytes(t, s); !bytes.Equal(got, want) {
				t.Fatal("state differs after reopen")
			}
		}
	})
}

func TestReaders(t *testing.T) {
	forEachStore(t, func(t *testing.T, s snapStore, reopen func() snapStore) {
		ctx := context.Background()
		mustApply(t, s, &Command{Op: OpPutReader, Reader: testReader("R1")})
		r, ok := s.Reader("R1")
		if !ok || r.Status != ReaderActive || r.CreatedAt.IsZero() || r.Cipher != CipherSM4 {
			t.Fatalf("R1 = %+v, %v", r, ok)
		}
		created := r.CreatedAt
		r.Key[0] = 99 // a copy: must not change the store
		if r2, _ := s.Reader("R1"); r2.Key[0] != 7 {
			t.Fatal("Reader returned shared key bytes")
		}

		// Auth failures suspend at the threshold carried in the command.
		for i := 1; i <= 3; i++ {
			mustApply(t, s, &Command{Op: OpRecordAuthFailure, Serial: "R1", Threshold: 3})
			r, _ := s.Reader("R1")
			if r.FailedAuth != i {
				t.Fatalf("failed auth %d, want %d", r.FailedAuth, i)
			}
			if want := map[bool]ReaderStatus{true: ReaderSuspended, false: ReaderActive}[i == 3]; r.Status != want {
				t.Fatalf("after %d failures: %v, want %v", i, r.Status, want)
			}
		}
		// Put keeps created-at, failures and (unset) status.
		nr := testReader("R1")
		nr.Cipher, nr.Note = CipherAES, "moved"
		mustApply(t, s, &Command{Op: OpPutReader, Reader: nr})
		if r, _ := s.Reader("R1"); r.Status != ReaderSuspended || r.FailedAuth != 3 || !r.CreatedAt.Equal(created) || r.Cipher != CipherAES || r.Note != "moved" {
			t.Fatalf("after put: %+v", r)
		}
		mustApply(t, s, &Command{Op: OpSetReaderStatus, Serial: "R1", Status: ReaderActive})
		if r, _ := s.Reader("R1"); r.Status != ReaderActive || r.FailedAuth != 0 {
			t.Fatalf("reactivated: %+v", r)
		}
		mustApply(t, s, &Command{Op: OpRecordAuthFailure, Serial: "R1", Threshold: 5})
		mustApply(t, s, &Command{Op: OpResetAuthFailures, Serial: "R1"})
		if r, _ := s.Reader("R1"); r.FailedAuth != 0 {
			t.Fatalf("reset: %+v", r)
		}
		// A blacklisted reader is not "suspended" by failures.
		mustApply(t, s, &Command{Op: OpPutReader, Reader: testReader("R2")})
		mustApply(t, s, &Command{Op: OpSetReaderStatus, Serial: "R2", Status: ReaderBlacklisted})
		mustApply(t, s, &Command{Op: OpRecordAuthFailure, Serial: "R2", Threshold: 1})
		if r, _ := s.Reader("R2"); r.Status != ReaderBlacklisted {
			t.Fatalf("R2: %+v", r)
		}

		for _, c := range []*Command{
			{Op: OpSetReaderStatus, Serial: "nope", Status: ReaderSuspended},
			{Op: OpRecordAuthFailure, Serial: "nope", Threshold: 3},
			{Op: OpResetAuthFailures, Serial: "nope"},
		} {
			c.Version = CommandVersion
			if err := s.Apply(ctx, c); !errors.Is(err, ErrUnknownReader) {
				t.Errorf("%s on unknown reader: %v", c.Op, err)
			}
		}
		if _, ok := s.Reader("nope"); ok {
			t.Fatal("unknown reader created")
		}

		// Reader blacklist.
		mustApply(t, s, &Command{Op: OpAddReaderBlacklist, Serial: "R9", Reason: "stolen van"})
		if !s.ReaderBlacklisted("R9") || s.ReaderBlacklisted("R1") {
			t.Fatal("reader blacklist")
		}

		// Affinity, cleared with the reader.
		sams := []ga467.SAMID{{A: 5, B: 1, Date: 20240101, Serial1: 1, Serial2: 2}, {A: 5, B: 1, Date: 20240101, Serial1: 1, Serial2: 3}}
		mustApply(t, s, &Command{Op: OpSetAffinity, Serial: "R1", SAMs: sams})
		mustApply(t, s, &Command{Op: OpSetAffinity, Serial: "R2", SAMs: sams[1:]})
		if got := s.Affinity("R1"); !reflect.DeepEqual(got, sams) {
			t.Fatalf("affinity %v", got)
		}
		mustApply(t, s, &Command{Op: OpClearAffinity, Serial: "R2"})
		if reopen != nil {
			s = reopen()
		}
		if got := s.Affinity("R2"); got != nil {
			t.Fatalf("cleared affinity %v", got)
		}
		if !s.ReaderBlacklisted("R9") {
			t.Fatal("reader blacklist lost")
		}
		if rs := s.Readers(); len(rs) != 2 || rs[0].Serial != "R1" || rs[1].Serial != "R2" {
			t.Fatalf("readers %+v", rs)
		}
		mustApply(t, s, &Command{Op: OpDeleteReader, Serial: "R1"})
		mustApply(t, s, &Command{Op: OpRemoveReaderBlacklist, Serial: "R9"})
		if _, ok := s.Reader("R1"); ok || s.Affinity("R1") != nil || s.ReaderBlacklisted("R9") {
			t.Fatal("delete")
		}
	})
}

func TestApplyValidates(t *testing.T) {
	forEachStore(t, func(t *testing.T, s snapStore, _ func() snapStore) {
		err := s.Apply(context.Background(), &Command{Version: CommandVersion, Op: OpAddCards, Cards: []CardSerial{{1}}})
		if !errors.Is(err, ErrInvalidCommand) {
			t.Fatalf("no reason: %v", err)
		}
		if err := s.Apply(context.Background(), nil); !errors.Is(err, ErrInvalidCommand) {
			t.Fatalf("nil: %v", err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := s.Apply(ctx, cmdCards(OpAddCards, "x", 1)); !errors.Is(err, context.Canceled) {
			t.Fatalf("canceled: %v", err)
		}
		if s.CardCount() != 0 {
			t.Fatal("applied")
		}
	})
}

func TestSnapshotRestore(t *testing.T) {
	forEachStore(t, func(t *testing.T, s snapStore, reopen func() snapStore) {
		populate(t, s)
		want := snapBytes(t, s)

		f := NewFSM()
		if err := f.Restore(bytes.NewReader(want)); err != nil {
			t.Fatal(err)
		}
		if got := snapBytes(t, f); !bytes.Equal(got, want) {
			t.Fatal("snapshot of restored FSM differs")
		}
		sameReads(t, f, s)

		// Restore into the store itself: an empty snapshot, then back.
		empty := snapBytes(t, NewFSM())
		if err := s.Restore(bytes.NewReader(empty)); err != nil {
			t.Fatal(err)
		}
		if s.CardCount() != 0 || len(s.Readers()) != 0 {
			t.Fatal("not emptied")
		}
		if err := s.Restore(bytes.NewReader(want)); err != nil {
			t.Fatal(err)
		}
		if reopen != nil {
			s = reopen()
		}
		if got := snapBytes(t, s); !bytes.Equal(got, want) {
			t.Fatal("restored store differs")
		}

		// Corrupt snapshots are refused and change nothing.
		for i := 0; i < len(want); i += max(1, len(want)/50) {
			bad := bytes.Clone(want)
			bad[i] ^= 0x20
			if err := s.Restore(bytes.NewReader(bad)); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("flip at %d: %v", i, err)
			}
		}
		if err := s.Restore(bytes.NewReader(want[:len(want)-1])); !errors.Is(err, ErrBadSnapshot) {
			t.Fatalf("truncated: %v", err)
		}
		if got := snapBytes(t, s); !bytes.Equal(got, want) {
			t.Fatal("failed restore changed the state")
		}
	})
}

func populate(t *testing.T, s Store) {
	t.Helper()
	for i := range 3 {
		var keys []uint64
		for j := range 3000 {
			keys = append(keys, uint64(i*100000+j*31+1))
		}
		mustApply(t, s, cmdCards(OpAddCards, fmt.Sprint("batch ", i), keys...))
	}
	mustApply(t, s, cmdCards(OpRemoveCards, "", 1, 32, 63))
	mustApply(t, s, &Command{Op: OpPutReader, Reader: testReader("R1")})
	mustApply(t, s, &Command{Op: OpPutReader, Reader: testReader("R2")})
	mustApply(t, s, &Command{Op: OpRecordAuthFailure, Serial: "R2", Threshold: 9})
	mustApply(t, s, &Command{Op: OpAddReaderBlacklist, Serial: "BAD", Reason: "cloned"})
	mustApply(t, s, &Command{Op: OpSetAffinity, Serial: "R1", SAMs: []ga467.SAMID{{A: 1, Date: 20200101, Serial1: 42}}})
}

func sameReads(t *testing.T, a, b Reads) {
	t.Helper()
	if a.CardCount() != b.CardCount() {
		t.Fatalf("count %d vs %d", a.CardCount(), b.CardCount())
	}
	if !reflect.DeepEqual(a.Cards([8]byte{}, MaxCardsPage), b.Cards([8]byte{}, MaxCardsPage)) {
		t.Fatal("cards differ")
	}
	if !reflect.DeepEqual(a.Readers(), b.Readers()) {
		t.Fatalf("readers differ:\n%+v\n%+v", a.Readers(), b.Readers())
	}
	if !reflect.DeepEqual(a.Affinity("R1"), b.Affinity("R1")) || a.ReaderBlacklisted("BAD") != b.ReaderBlacklisted("BAD") {
		t.Fatal("affinity or reader blacklist differ")
	}
}

// TestModel applies random card commands to every store and to a map, and
// compares after each step; the small key space exercises the overflow,
// the removed set and rebuilds.
func TestModel(t *testing.T) {
	forEachStore(t, func(t *testing.T, s snapStore, reopen func() snapStore) {
		rng := rand.New(rand.NewPCG(1, 2))
		model := map[uint64]string{}
		steps := 300
		if testing.Short() {
			steps = 60
		}
		for step := range steps {
			n := 1 + rng.IntN(600)
			keys := make([]uint64, n)
			for i := range keys {
				keys[i] = 1 + rng.Uint64N(20000)
			}
			if rng.IntN(3) == 0 {
				mustApply(t, s, cmdCards(OpRemoveCards, "", keys...))
				for _, k := range keys {
					delete(model, k)
				}
			} else {
				reason := fmt.Sprint("r", rng.IntN(5))
				mustApply(t, s, cmdCards(OpAddCards, reason, keys...))
				for _, k := range keys {
					model[k] = reason
				}
			}
			if s.CardCount() != len(model) {
				t.Fatalf("step %d: count %d, model %d", step, s.CardCount(), len(model))
			}
			for range 200 {
				k := 1 + rng.Uint64N(20001)
				e, ok := s.CardBlacklisted(serialOf(k))
				if want, wok := model[k]; ok != wok || e.Reason != want {
					t.Fatalf("step %d: card %d = %q,%v; model %q,%v", step, k, e.Reason, ok, want, wok)
				}
			}
			if step%50 == 49 && reopen != nil {
				s = reopen()
			}
		}
		var listed int
		prev := uint64(0)
		for after := [8]byte{}; ; {
			page := s.Cards(after, 999)
			if len(page) == 0 {
				break
			}
			for _, c := range page {
				k := cardKey(c.Serial)
				if k <= prev || model[k] != c.Reason {
					t.Fatalf("listing: %d after %d, reason %q want %q", k, prev, c.Reason, model[k])
				}
				prev = k
			}
			listed += len(page)
			after = page[len(page)-1].Serial
		}
		if listed != len(model) {
			t.Fatalf("listed %d, model %d", listed, len(model))
		}
	})
}

// TestDeterministic: same commands, same bytes, on every implementation.
func TestDeterministic(t *testing.T) {
	var snaps [][]byte
	forEachStore(t, func(t *testing.T, s snapStore, _ func() snapStore) {
		populate(t, s)
		snaps = append(snaps, snapBytes(t, s))
	})
	for i := 1; i < len(snaps); i++ {
		if !bytes.Equal(snaps[0], snaps[i]) {
			t.Fatal("stores disagree")
		}
	}
}

func TestConcurrentReadsDuringWrites(t *testing.T) {
	forEachStore(t, func(t *testing.T, s snapStore, _ func() snapStore) {
		mustApply(t, s, &Command{Op: OpPutReader, Reader: testReader("R1")})
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				var b bytes.Buffer
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					s.CardBlacklisted(serialOf(uint64(i%5000 + 1)))
					s.Cards(serialOf(uint64(i%100)), 10)
					s.CardCount()
					s.Reader("R1")
					s.Readers()
					s.Affinity("R1")
					s.ReaderBlacklisted("R1")
					if g == 0 && i%200 == 0 {
						b.Reset()
						if err := s.Snapshot(&b); err != nil {
							t.Error(err)
						}
					}
				}
			}()
		}
		for i := range 40 {
			keys := make([]uint64, 500)
			for j := range keys {
				keys[j] = uint64(i*250 + j + 1)
			}
			mustApply(t, s, cmdCards(OpAddCards, "x", keys...))
			mustApply(t, s, cmdCards(OpRemoveCards, "", keys[:100]...))
			mustApply(t, s, &Command{Op: OpRecordAuthFailure, Serial: "R1", Threshold: 1000})
		}
		close(stop)
		wg.Wait()
	})
}

func TestCardLookupAllocs(t *testing.T) {
	s := NewMemory()
	mustApply(t, s, cmdCards(OpAddCards, "x", 1, 2, 3))
	if n := testing.AllocsPerRun(100, func() { s.CardBlacklisted(serialOf(2)) }); n != 0 {
		t.Fatalf("%v allocs per lookup", n)
	}
}

func TestLocalClosed(t *testing.T) {
	l, err := OpenLocal(filepath.Join(t.TempDir(), "s.db"))
	if err != nil {
		t.Fatal(err)
	}
	mustApply(t, l, cmdCards(OpAddCards, "x", 1))
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Apply(context.Background(), cmdCards(OpAddCards, "x", 2)); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
	if _, ok := l.CardBlacklisted(serialOf(1)); !ok {
		t.Fatal("reads after close")
	}
}

func TestInventoryAndConfig(t *testing.T) {
	forEachStore(t, func(t *testing.T, s snapStore, reopen func() snapStore) {
		sam := ga467.SAMID{A: 5, B: 1, Date: 20240101, Serial1: 9}
		mustApply(t, s, &Command{Op: OpPutSlot, Slot: &Slot{Node: "n2", Name: "3", SAM: sam, State: "enabled", Health: "OK"}})
		mustApply(t, s, &Command{Op: OpPutSlot, Slot: &Slot{Node: "n1", Name: "1", State: "absent", Health: "Warning", Admin: SlotAdminDrained}})
		mustApply(t, s, &Command{Op: OpPutSlot, Slot: &Slot{Node: "n1", Name: "2", State: "absent"}})
		mustApply(t, s, &Command{Op: OpDeleteSlot, Slot: &Slot{Node: "n1", Name: "2"}})
		mustApply(t, s, &Command{Op: OpSetConfig, Key: "auth.threshold", Value: "5"})
		mustApply(t, s, &Command{Op: OpSetConfig, Key: "x", Value: "gone"})
		mustApply(t, s, &Command{Op: OpDeleteConfig, Key: "x"})
		if err := s.Apply(context.Background(), &Command{Version: CommandVersion, Op: OpPutSlot, Slot: &Slot{Node: "n1", Name: "1", Admin: "asleep"}}); !errors.Is(err, ErrInvalidCommand) {
			t.Fatalf("bad admin state: %v", err)
		}
		if reopen != nil {
			s = reopen()
		}
		want := []Slot{
			{Node: "n1", Name: "1", State: "absent", Health: "Warning", Admin: SlotAdminDrained},
			{Node: "n2", Name: "3", SAM: sam, State: "enabled", Health: "OK"},
		}
		if got := s.Slots(); !reflect.DeepEqual(got, want) {
			t.Fatalf("slots %+v", got)
		}
		if v, ok := s.Config("auth.threshold"); !ok || v != "5" {
			t.Fatalf("config %q %v", v, ok)
		}
		if _, ok := s.Config("x"); ok {
			t.Fatal("deleted config key")
		}
		f := NewFSM()
		defer f.Close()
		if err := f.Restore(bytes.NewReader(snapBytes(t, s))); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f.Slots(), want) {
			t.Fatal("slots lost in the snapshot")
		}
	})
}

// TestExecResult: the outcome comes back from Apply, computed by the FSM.
func TestExecResult(t *testing.T) {
	forEachStore(t, func(t *testing.T, s snapStore, _ func() snapStore) {
		ctx := context.Background()
		mustApply(t, s, &Command{Op: OpPutReader, Reader: testReader("R1")})
		for i := 1; i <= 3; i++ {
			res, err := s.Exec(ctx, &Command{Version: CommandVersion, Op: OpRecordAuthFailure, Serial: "R1", Threshold: 2})
			if err != nil {
				t.Fatal(err)
			}
			if res.Suspended != (i == 2) || res.Reader.FailedAuth != i {
				t.Fatalf("failure %d: %+v", i, res)
			}
		}
		res, err := s.Exec(ctx, cmdCards(OpAddCards, "x", 1, 2, 2, 3))
		if err != nil || res.Cards != 3 {
			t.Fatalf("add: %+v %v", res, err)
		}
		if res, _ := s.Exec(ctx, cmdCards(OpAddCards, "y", 3, 4)); res.Cards != 1 {
			t.Fatalf("re-add: %+v", res)
		}
		if res, _ := s.Exec(ctx, cmdCards(OpRemoveCards, "", 1, 9)); res.Cards != 1 {
			t.Fatalf("remove: %+v", res)
		}
	})
}

// TestCaptureIsolation: a capture holds exactly the state when it was
// taken, while applies (and background merges) go on.
func TestCaptureIsolation(t *testing.T) {
	f := NewFSM()
	defer f.Close()
	apply := func(c *Command) {
		t.Helper()
		c.At = t0
		b, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Apply(b); err != nil {
			t.Fatal(err)
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	ref := NewFSM()
	defer ref.Close()
	for i := range 40 {
		keys := make([]uint64, 1+rng.IntN(3000))
		for j := range keys {
			keys[j] = 1 + rng.Uint64N(50000)
		}
		c := cmdCards(OpAddCards, fmt.Sprint("r", i%3), keys...)
		if i%4 == 3 {
			c = cmdCards(OpRemoveCards, "", keys...)
		}
		apply(c)
	}
	capture, err := f.Capture()
	if err != nil {
		t.Fatal(err)
	}
	var at bytes.Buffer
	if err := f.Snapshot(&at); err != nil {
		t.Fatal(err)
	}
	for i := range 40 {
		keys := make([]uint64, 1+rng.IntN(3000))
		for j := range keys {
			keys[j] = 1 + rng.Uint64N(50000)
		}
		apply(cmdCards(OpRemoveCards, "", keys...))
		apply(cmdCards(OpAddCards, fmt.Sprint("later ", i), keys[:len(keys)/2]...))
	}
	var later bytes.Buffer
	if err := capture.Persist(&later); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(at.Bytes(), later.Bytes()) {
		t.Fatal("the capture changed with later applies")
	}
	d1, _ := f.Digest()
	f.Compact()
	d2, _ := f.Digest()
	if d1 != d2 {
		t.Fatal("digest changed by compaction")
	}
	if len(f.t.cards.frozen) != 0 || len(f.t.cards.active) != 0 {
		t.Fatal("not compacted")
	}
}
