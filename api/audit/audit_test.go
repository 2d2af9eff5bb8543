package audit

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

var t0 = time.Date(2025, 3, 1, 8, 0, 0, 0, time.UTC)

func TestHasher(t *testing.T) {
	h := NewHasher(bytes.Repeat([]byte{1}, 32))
	s := [8]byte{0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}
	a := h.Card(s)
	if len(a) != 32 || a != h.Card(s) || !isCardHash(a) {
		t.Fatalf("hash %q", a)
	}
	if a == h.Card([8]byte{1}) {
		t.Fatal("different serials, same hash")
	}
	if a == NewHasher(bytes.Repeat([]byte{2}, 32)).Card(s) {
		t.Fatal("different keys, same hash")
	}
	if strings.Contains(a, hex.EncodeToString(s[:])) {
		t.Fatal("hash contains the serial")
	}
}

// TestNoSerialInClear records events about many cards, including careless
// ones that put the serial in Detail or Card, and checks no serial appears
// in clear — in any case, in the stream, the file or Recent.
func TestNoSerialInClear(t *testing.T) {
	var out bytes.Buffer
	file := filepath.Join(t.TempDir(), "audit.log")
	l, err := New(Config{W: &out, File: file, Now: func() time.Time { return t0 }})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	h := NewHasher(bytes.Repeat([]byte{9}, 32))
	var serials []string
	for i := range 200 {
		s := [8]byte{0xde, 0xad, byte(i), 0xbe, 0xef, 0x10, byte(i * 7), 0x5a}
		hs := hex.EncodeToString(s[:])
		serials = append(serials, hs)
		l.Record(Event{Kind: KindReadOK, Reader: "RDR-1", Card: h.Card(s), Slot: i % 8, SAMID: "05.01-20101125-0012345678-1234567890", Duration: 800 * time.Millisecond})
		l.Record(Event{Kind: KindCardBlacklisted, Reader: "RDR-1", Card: hs, Slot: NoSlot, Detail: "card " + hs + " on blacklist"})
		l.Record(Event{Kind: KindReaderTamper, Card: strings.ToUpper(hs), Detail: fmt.Sprintf("declared %s != %s, id 11010519491231002X", strings.ToUpper(hs), hs)})
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	disk, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	recent, _ := json.Marshal(l.Recent(1000))
	for _, blob := range [][]byte{out.Bytes(), disk, recent} {
		low := strings.ToLower(string(blob))
		for _, s := range serials {
			if strings.Contains(low, s) {
				t.Fatalf("serial %s in clear", s)
			}
		}
		if strings.Contains(low, "11010519491231002x") {
			t.Fatal("ID number in clear")
		}
	}
	if !bytes.Equal(out.Bytes(), disk) {
		t.Fatal("writer and file differ")
	}
	// Lines are JSON events.
	sc := bufio.NewScanner(bytes.NewReader(disk))
	n := 0
	for sc.Scan() {
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatal(err)
		}
		if e.Kind == KindCardBlacklisted && e.Card != "invalid" {
			t.Fatalf("raw serial kept as %q", e.Card)
		}
		n++
	}
	if n != 600 {
		t.Fatalf("%d lines", n)
	}
}

func TestRecentAndCounts(t *testing.T) {
	l, err := New(Config{Ring: 4})
	if err != nil {
		t.Fatal(err)
	}
	if got := l.Recent(10); len(got) != 0 {
		t.Fatalf("empty log: %v", got)
	}
	for i := range 6 {
		l.Record(Event{Time: t0.Add(time.Duration(i) * time.Second), Kind: []string{KindReadOK, KindSAMFault}[i%2], Code: i})
	}
	got := l.Recent(10)
	if len(got) != 4 || got[0].Code != 5 || got[3].Code != 2 {
		t.Fatalf("recent %+v", got)
	}
	if got := l.Recent(1); len(got) != 1 || got[0].Code != 5 {
		t.Fatalf("recent(1) %+v", got)
	}
	c := l.Counts()
	if c[KindReadOK] != 3 || c[KindSAMFault] != 3 {
		t.Fatalf("counts %v", c)
	}
	c[KindReadOK] = 99
	if l.Counts()[KindReadOK] != 3 {
		t.Fatal("Counts shares its map")
	}
}

func TestRotate(t *testing.T) {
	file := filepath.Join(t.TempDir(), "audit.log")
	l, err := New(Config{File: file, MaxBytes: 1000, Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 100 {
		l.Record(Event{Time: t0, Kind: KindReadOK, Reader: fmt.Sprint("R", i)})
	}
	if err := l.Close(); err != nil || l.Err() != nil {
		t.Fatal(err, l.Err())
	}
	for _, name := range []string{file, file + ".1", file + ".2"} {
		fi, err := os.Stat(name)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Size() > 1000 || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %d bytes, %v", name, fi.Size(), fi.Mode().Perm())
		}
	}
	if _, err := os.Stat(file + ".3"); err == nil {
		t.Fatal("kept more than 2 rotated files")
	}
	last, _ := os.ReadFile(file)
	if !strings.Contains(string(last), `"reader":"R99"`) {
		t.Fatal("latest event not in the current file")
	}
}

func TestConcurrent(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	l, err := New(Config{W: writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	}), Ring: 64})
	if err != nil {
		t.Fatal(err)
	}
	h := NewHasher(make([]byte, 16))
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 500 {
				l.Record(Event{Kind: KindReadOK, Card: h.Card([8]byte{byte(g), byte(i)})})
				l.Recent(5)
				l.Counts()
			}
		}()
	}
	wg.Wait()
	if l.Counts()[KindReadOK] != 2000 || strings.Count(out.String(), "\n") != 2000 {
		t.Fatal("lost events")
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

func TestLoadOrCreateKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "audit.key")
	k1, err := LoadOrCreateKey(path)
	if err != nil || len(k1) != KeySize {
		t.Fatal(k1, err)
	}
	fi, _ := os.Stat(path)
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v", fi.Mode().Perm())
	}
	k2, err := LoadOrCreateKey(path)
	if err != nil || !bytes.Equal(k1, k2) {
		t.Fatal("key changed")
	}
	os.WriteFile(path, []byte("short"), 0o600)
	if _, err := LoadOrCreateKey(path); err == nil {
		t.Fatal("short key accepted")
	}
}

func BenchmarkCard(b *testing.B) {
	h := NewHasher(make([]byte, 32))
	b.ReportAllocs()
	for b.Loop() {
		h.Card([8]byte{1, 2, 3})
	}
}
