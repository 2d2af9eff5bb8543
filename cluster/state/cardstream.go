package state

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
)

// MaxCardCommandBytes bounds the wire form of an AddCards command (see
// wire.go): version and op (2), at (a varint, at most 10), by (1 + MaxByLen),
// reason (2 + MaxReasonLen), the count (a uvarint of MaxCardsPerCommand, 3)
// and 8 bytes a card. With MaxCardsPerCommand = 100,000 that is 800,338
// bytes: a bulk import's chunk of a full command is one raft log entry
// under MaxLogEntryBytes. (MaxCardsPerCommand cannot grow to fill the MiB:
// an older replica's decoder refuses a count above its own bound.)
const MaxCardCommandBytes = 2 + 10 + 1 + MaxByLen + 2 + MaxReasonLen + 3 + 8*MaxCardsPerCommand

// MaxLogEntryBytes is the size a bulk import keeps each log entry under.
const MaxLogEntryBytes = 1 << 20

// CardListScanner reads a card list (the format of ScanCardList) one line
// at a time, in bounded memory, and goes on past bad lines: each is
// reported with its number and the reason, so a bulk import can apply the
// good lines and list the bad ones. A line longer than MaxCardListLine is
// one bad line (the rest of it is skipped, whatever its length).
type CardListScanner struct {
	r    *bufio.Reader
	line int64 // number of the last line read
	err  error // sticky: a read error, or io.EOF
}

// NewCardListScanner returns a scanner over r whose first line is numbered
// firstLine (≥ 1): a part of a bigger list keeps the list's numbering. A
// UTF-8 byte order mark is skipped on line 1 only.
func NewCardListScanner(r io.Reader, firstLine int64) *CardListScanner {
	return &CardListScanner{r: bufio.NewReaderSize(r, 64<<10), line: max(firstLine, 1) - 1}
}

// Line returns the number of the last line read (firstLine-1 before the
// first).
func (s *CardListScanner) Line() int64 { return s.line }

// Next returns the next card of the list and its line number, skipping
// blank and comment lines. A bad line returns its number and an error
// wrapping ErrBadCardList: call Next again for the lines after it. At the
// end Next returns io.EOF; a read error of the underlying reader is
// returned as is (and again on every later call).
func (s *CardListScanner) Next() (CardListEntry, int64, error) {
	for {
		if s.err != nil {
			return CardListEntry{}, s.line, s.err
		}
		b, err := s.r.ReadSlice('\n')
		if len(b) == 0 && err != nil {
			s.err = err
			continue
		}
		s.line++
		if errors.Is(err, bufio.ErrBufferFull) {
			for errors.Is(err, bufio.ErrBufferFull) { // skip the rest of the line
				_, err = s.r.ReadSlice('\n')
			}
			if err != nil && err != io.EOF {
				s.err = err
				continue
			}
			return CardListEntry{}, s.line, fmt.Errorf("%w: line %d: longer than %d bytes", ErrBadCardList, s.line, MaxCardListLine)
		}
		if err != nil && err != io.EOF {
			s.err = err // a line cut by a failed read is not judged
			continue
		}
		b = bytes.TrimSuffix(b, []byte("\n"))
		b = bytes.TrimSuffix(b, []byte("\r"))
		b = bytes.TrimSuffix(b, []byte("\r")) // as ScanCardList: bufio.ScanLines drops one, then one more
		if s.line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
		}
		if len(b) > MaxCardListLine {
			return CardListEntry{}, s.line, fmt.Errorf("%w: line %d: longer than %d bytes", ErrBadCardList, s.line, MaxCardListLine)
		}
		var e CardListEntry
		if len(b) == 16 { // the common line: a bare serial, parsed without allocating
			if _, herr := hex.Decode(e.Serial[:], b); herr == nil && e.Serial != ([8]byte{}) {
				return e, s.line, nil
			}
		}
		e, ok, perr := parseCardLine(string(b))
		if perr != nil {
			return CardListEntry{}, s.line, fmt.Errorf("%w: line %d: %v", ErrBadCardList, s.line, perr)
		}
		if ok {
			return e, s.line, nil
		}
	}
}

// maxOpenReasons bounds the commands a CardChunker fills at once.
const maxOpenReasons = 64

// CardChunker groups the entries of a card list, as they are read, into
// AddCards commands of at most MaxCardsPerCommand cards, one reason each
// (entries without a reason get DefaultReason). It holds at most
// MaxCardsPerCommand cards and maxOpenReasons reasons: when either bound is
// reached, every command it holds is handed out. Each command is one log
// entry of at most MaxCardCommandBytes, applied whole or not at all.
type CardChunker struct {
	DefaultReason, By string

	open    map[string]*Command
	order   []*Command // open commands in the order they were started
	pending int        // cards in open commands
}

// Add adds an entry and returns the commands now ready (usually none).
func (c *CardChunker) Add(e CardListEntry) []*Command {
	reason := e.Reason
	if reason == "" {
		reason = c.DefaultReason
	}
	if c.open == nil {
		c.open = map[string]*Command{}
	}
	cmd := c.open[reason]
	if cmd == nil {
		cmd = &Command{Version: CommandVersion, Op: OpAddCards, Reason: reason, By: c.By}
		c.open[reason] = cmd
		c.order = append(c.order, cmd)
	}
	cmd.Cards = append(cmd.Cards, CardSerial(e.Serial))
	c.pending++
	if c.pending >= MaxCardsPerCommand || len(c.order) > maxOpenReasons {
		return c.Flush()
	}
	return nil
}

// Flush returns the commands held, oldest first, and empties the chunker.
func (c *CardChunker) Flush() []*Command {
	out := c.order
	c.order, c.pending = nil, 0
	clear(c.open)
	return out
}
