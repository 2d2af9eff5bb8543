package audit

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// clock is a settable clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

func TestQuery(t *testing.T) {
	for _, withFile := range []bool{false, true} {
		t.Run(fmt.Sprintf("file=%v", withFile), func(t *testing.T) {
			c := &clock{t: t0}
			cfg := Config{Now: c.now, MaxBytes: 600, Keep: 50}
			if withFile {
				cfg.File = filepath.Join(t.TempDir(), "audit.log")
			}
			l, err := New(cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer l.Close()
			// 30 minutes of events, one a minute, rotating every few lines.
			for i := range 30 {
				c.t = t0.Add(time.Duration(i) * time.Minute)
				switch i % 3 {
				case 0:
					l.Record(Event{Kind: "blacklist.card.add", Actor: "alice", Count: i, Slot: NoSlot})
				case 1:
					l.Record(Event{Kind: "blacklist.reader.remove", Actor: "bob", Reader: "R1", Slot: NoSlot})
				case 2:
					l.Record(Event{Kind: KindReadOK, Reader: "R1", Slot: 2})
				}
			}
			if withFile {
				if _, err := os.Stat(cfg.File + ".3"); err != nil {
					t.Fatalf("no rotation happened: %v", err)
				}
			}
			tests := []struct {
				name  string
				q     Query
				count int
				first int // minute of the newest match
			}{
				{"all", Query{N: 100}, 30, 29},
				{"n", Query{N: 4}, 4, 29},
				{"kind exact", Query{Kind: "blacklist.card.add"}, 10, 27},
				{"kind family", Query{Kind: "blacklist"}, 20, 28},
				{"kind family dot", Query{Kind: "blacklist."}, 20, 28},
				{"kind not a word prefix", Query{Kind: "black"}, 0, 0},
				{"actor", Query{Actor: "bob"}, 10, 28},
				{"actor and kind", Query{Actor: "bob", Kind: "blacklist.card"}, 0, 0},
				{"since", Query{Since: t0.Add(20 * time.Minute)}, 10, 29},
				{"until", Query{Until: t0.Add(10 * time.Minute)}, 10, 9},
				{"window", Query{Since: t0.Add(10 * time.Minute), Until: t0.Add(13 * time.Minute), Kind: "read"}, 1, 11},
			}
			for _, tt := range tests {
				got, err := l.Query(tt.q)
				if err != nil {
					t.Fatal(err)
				}
				if len(got) != tt.count {
					t.Fatalf("%s: %d events, want %d", tt.name, len(got), tt.count)
				}
				if len(got) > 0 {
					if m := int(got[0].Time.Sub(t0) / time.Minute); m != tt.first {
						t.Fatalf("%s: newest at minute %d, want %d", tt.name, m, tt.first)
					}
					for i := 1; i < len(got); i++ {
						if got[i].Time.After(got[i-1].Time) {
							t.Fatalf("%s: not newest first", tt.name)
						}
					}
				}
			}
		})
	}
}

func TestRetention(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "audit.log")
	c := &clock{t: t0}
	l, err := New(Config{File: file, MaxBytes: 200, Keep: 20, MaxAge: 48 * time.Hour, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 10 {
		l.Record(Event{Kind: "config.start", Actor: "samrackd", Detail: fmt.Sprintf("event %d with some padding to fill the file", i)})
	}
	l.Close()
	// Age the rotated files: .1 one day old, the others five days.
	rotated := 0
	for i := 1; i <= 20; i++ {
		name := fmt.Sprintf("%s.%d", file, i)
		if _, err := os.Stat(name); err != nil {
			break
		}
		rotated++
		age := 5 * 24 * time.Hour
		if i == 1 {
			age = 24 * time.Hour
		}
		if err := os.Chtimes(name, t0.Add(-age), t0.Add(-age)); err != nil {
			t.Fatal(err)
		}
	}
	if rotated < 3 {
		t.Fatalf("%d rotated files, want ≥ 3", rotated)
	}
	// A file beyond a smaller Keep is dropped too.
	l, err = New(Config{File: file, MaxBytes: 200, Keep: 20, MaxAge: 48 * time.Hour, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Stat(file + ".1"); err != nil {
		t.Fatal("a file younger than MaxAge was deleted")
	}
	if _, err := os.Stat(file + ".2"); err == nil {
		t.Fatal("a file older than MaxAge was kept")
	}
	if err := os.WriteFile(file+".2", []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err = New(Config{File: file, Keep: 1, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	l.Close()
	if _, err := os.Stat(file + ".2"); err == nil {
		t.Fatal("a file beyond Keep was kept")
	}
}
