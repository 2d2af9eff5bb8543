package state

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"
)

type scanned struct {
	line int64
	e    CardListEntry
	err  string
}

func scanAll(t testing.TB, r io.Reader, first int64) []scanned {
	t.Helper()
	sc := NewCardListScanner(r, first)
	var out []scanned
	for {
		e, line, err := sc.Next()
		if err == io.EOF {
			return out
		}
		if err != nil && !errors.Is(err, ErrBadCardList) {
			t.Fatalf("line %d: %v", line, err)
		}
		s := scanned{line: line, e: e}
		if err != nil {
			s.err = err.Error()
		}
		out = append(out, s)
	}
}

func TestCardListScannerGoesOnPastBadLines(t *testing.T) {
	in := "\xef\xbb\xbf# list\r\n" + // 1
		"0123456789ABCDEF, reported stolen\r\n" + // 2
		"0123\n" + // 3 bad
		"\n" + // 4
		strings.Repeat("f", 200000) + "\n" + // 5 bad: longer than the read buffer
		"fedcba9876543210\n" + // 6
		"0000000000000000\n" + // 7 bad: zero
		"0000000000000001, " + strings.Repeat("x", 600) + "\n" + // 8 bad: long
		"0000000000000002,\x01\n" + // 9 bad: control
		"0000000000000003" // 10, no newline
	got := scanAll(t, strings.NewReader(in), 1)
	want := []struct {
		line int64
		bad  string
	}{{2, ""}, {3, "line 3: card serial"}, {5, "line 5: longer than 512"}, {6, ""}, {7, "line 7: zero"}, {8, "line 8: longer than 512"}, {9, "line 9: reason has control"}, {10, ""}}
	if len(got) != len(want) {
		t.Fatalf("got %d results: %+v", len(got), got)
	}
	for i, w := range want {
		g := got[i]
		if g.line != w.line || (w.bad == "") != (g.err == "") || !strings.Contains(g.err, w.bad) {
			t.Errorf("result %d: line %d err %q, want line %d err ~%q", i, g.line, g.err, w.line, w.bad)
		}
	}
	if got[0].e.Reason != "reported stolen" || got[0].e.Serial != [8]byte{1, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef} {
		t.Errorf("line 2: %+v", got[0].e)
	}
	if got[7].e.Serial != [8]byte{7: 3} {
		t.Errorf("line 10: %+v", got[7].e)
	}
}

func TestCardListScannerNumbering(t *testing.T) {
	// A later part of a list: numbered from firstLine, no BOM skipped.
	got := scanAll(t, strings.NewReader("0000000000000001\n\xef\xbb\xbf0000000000000002\nzz\n"), 1001)
	if len(got) != 3 || got[0].line != 1001 || got[0].err != "" || got[1].line != 1002 || got[1].err == "" || !strings.Contains(got[2].err, "line 1003:") {
		t.Fatalf("%+v", got)
	}
}

// errAfter fails with err once n bytes are read.
type errAfter struct {
	r   io.Reader
	n   int
	err error
}

func (e *errAfter) Read(p []byte) (int, error) {
	if e.n <= 0 {
		return 0, e.err
	}
	p = p[:min(len(p), e.n)]
	n, err := e.r.Read(p)
	e.n -= n
	return n, err
}

func TestCardListScannerReadError(t *testing.T) {
	boom := errors.New("connection reset")
	// The read fails in the middle of line 3: lines 1 and 2 are read, line
	// 3 is not judged, the error is returned (and again after).
	in := "0000000000000001\n0000000000000002\n00000000"
	sc := NewCardListScanner(&errAfter{r: strings.NewReader(in), n: len(in), err: boom}, 1)
	for want := int64(1); want <= 2; want++ {
		if _, line, err := sc.Next(); err != nil || line != want {
			t.Fatalf("line %d: %v", line, err)
		}
	}
	for range 2 {
		if _, _, err := sc.Next(); err != boom {
			t.Fatalf("got %v, want the read error", err)
		}
	}
}

// FuzzCardListScanner: the scanner agrees with ScanCardList line by line
// up to ScanCardList's first error, which it reports on the same line with
// the same message; it never panics.
func FuzzCardListScanner(f *testing.F) {
	f.Add([]byte("0123456789abcdef,stolen\n# c\n\nFEDCBA9876543210\r\n"))
	f.Add([]byte("0123\n0000000000000001\n"))
	f.Add([]byte("\xef\xbb\xbf0000000000000001 , x # y\r\r\n" + strings.Repeat("a", 513) + "\n"))
	f.Add([]byte(strings.Repeat("0", 514) + "\r\n0000000000000001"))
	f.Fuzz(func(t *testing.T, in []byte) {
		var ref []CardListEntry
		refErr := ScanCardList(bytes.NewReader(in), func(e CardListEntry) error { ref = append(ref, e); return nil })
		got := scanAll(t, bytes.NewReader(in), 1)
		i := 0
		for _, g := range got {
			if g.err != "" {
				if refErr == nil || g.err != refErr.Error() {
					t.Fatalf("scanner: %s; ScanCardList: %v", g.err, refErr)
				}
				return
			}
			if i >= len(ref) || g.e != ref[i] {
				t.Fatalf("entry %d (line %d): %+v, ScanCardList %v", i, g.line, g.e, ref)
			}
			i++
		}
		if refErr != nil || i != len(ref) {
			t.Fatalf("scanner: %d entries, no error; ScanCardList: %d, %v", i, len(ref), refErr)
		}
	})
}

func TestCardChunker(t *testing.T) {
	c := &CardChunker{DefaultReason: "imported", By: "ops"}
	var cmds []*Command
	n := 2*MaxCardsPerCommand + 10
	for i := range n {
		e := CardListEntry{Serial: cardSerial(uint64(i + 1))}
		if i%3 == 0 {
			e.Reason = "lost"
		}
		cmds = append(cmds, c.Add(e)...)
	}
	cmds = append(cmds, c.Flush()...)
	total := 0
	for _, cmd := range cmds {
		if len(cmd.Cards) > MaxCardsPerCommand || cmd.By != "ops" || (cmd.Reason != "lost" && cmd.Reason != "imported") {
			t.Fatalf("command of %d cards, by %q, reason %q", len(cmd.Cards), cmd.By, cmd.Reason)
		}
		cmd.At = time.Now()
		b, err := cmd.Encode()
		if err != nil || len(b) > MaxLogEntryBytes {
			t.Fatalf("%d bytes: %v", len(b), err)
		}
		total += len(cmd.Cards)
	}
	if total != n || len(cmds) != 6 {
		t.Fatalf("%d cards in %d commands", total, len(cmds))
	}
	// Many reasons: never more than maxOpenReasons commands held.
	for i := range 1000 {
		out := c.Add(CardListEntry{Serial: cardSerial(uint64(i + 1)), Reason: fmt.Sprint("r", i)})
		if len(c.order) > maxOpenReasons || (out != nil && len(out) != maxOpenReasons+1) {
			t.Fatalf("entry %d: %d open, %d out", i, len(c.order), len(out))
		}
	}
}

func TestMaxCardCommandBytes(t *testing.T) {
	if MaxCardCommandBytes > MaxLogEntryBytes {
		t.Fatalf("a full card command is %d bytes, over %d", MaxCardCommandBytes, MaxLogEntryBytes)
	}
	// The biggest command there is: every field at its bound, the time
	// with the longest varint.
	c := &Command{Version: CommandVersion, Op: OpAddCards,
		By: strings.Repeat("b", MaxByLen), Reason: strings.Repeat("r", MaxReasonLen), Cards: make([]CardSerial, MaxCardsPerCommand)}
	for i := range c.Cards {
		c.Cards[i] = cardSerial(uint64(i + 1))
	}
	c.At = time.Date(2262, 4, 11, 0, 0, 0, 0, time.UTC) // close to the int64 nanosecond bound: a 10-byte varint
	b, err := c.Encode()
	if err != nil {
		t.Fatal(err)
	}
	if len(b) != MaxCardCommandBytes {
		t.Fatalf("encoded %d bytes, MaxCardCommandBytes %d", len(b), MaxCardCommandBytes)
	}
}
