package state

import (
	"bufio"
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
)

// MaxCardListLine bounds the length of a card list line, in bytes.
const MaxCardListLine = 512

// CardListEntry is one line of a card list.
type CardListEntry struct {
	Serial [8]byte
	Reason string // "" when the line has none
}

// ScanCardList reads a card list and calls fn for each card. The format is
// one card per line: 16 hex digits, optionally followed by a comma and a
// reason; '#' starts a comment; blank lines are skipped; lines end in LF or
// CRLF and are at most MaxCardListLine bytes. Errors wrap ErrBadCardList
// and name the line, or are fn's error.
//
//	# stolen cards, list of 2024-05-01
//	0123456789ABCDEF, reported stolen
//	fedcba9876543210
func ScanCardList(r io.Reader, fn func(CardListEntry) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), MaxCardListLine+2) // + CRLF
	line := 0
	for sc.Scan() {
		line++
		b := sc.Bytes()
		if line == 1 {
			b = bytes.TrimPrefix(b, []byte("\xef\xbb\xbf")) // UTF-8 BOM
		}
		b = bytes.TrimSuffix(b, []byte("\r"))
		if len(b) > MaxCardListLine {
			return fmt.Errorf("%w: line %d: longer than %d bytes", ErrBadCardList, line, MaxCardListLine)
		}
		e, ok, err := parseCardLine(string(b))
		if err != nil {
			return fmt.Errorf("%w: line %d: %v", ErrBadCardList, line, err)
		}
		if !ok {
			continue
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%w: line %d: longer than %d bytes", ErrBadCardList, line+1, MaxCardListLine)
		}
		return fmt.Errorf("%w: line %d: %v", ErrBadCardList, line+1, err)
	}
	return nil
}

func parseCardLine(s string) (CardListEntry, bool, error) {
	var e CardListEntry
	if i := strings.IndexByte(s, '#'); i >= 0 {
		s = s[:i]
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return e, false, nil
	}
	serial, reason, _ := strings.Cut(s, ",")
	serial, reason = strings.TrimSpace(serial), strings.TrimSpace(reason)
	if len(serial) != 16 {
		return e, false, fmt.Errorf("card serial %q: want 16 hex digits", clip(serial))
	}
	if _, err := hex.Decode(e.Serial[:], []byte(serial)); err != nil {
		return e, false, fmt.Errorf("card serial %q: want 16 hex digits", serial)
	}
	if e.Serial == ([8]byte{}) {
		return e, false, fmt.Errorf("zero card serial")
	}
	if err := textProblem("reason", reason, MaxReasonLen); err != nil {
		return e, false, err
	}
	e.Reason = reason
	return e, true, nil
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// ParseCardList reads a whole card list (see ScanCardList) and returns the
// serials in order. Use ScanCardList or ParseCardListEntries to keep the
// reasons.
func ParseCardList(r io.Reader) ([][8]byte, error) {
	var out [][8]byte
	err := ScanCardList(r, func(e CardListEntry) error {
		out = append(out, e.Serial)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ParseCardListEntries reads a whole card list with the reasons.
func ParseCardListEntries(r io.Reader) ([]CardListEntry, error) {
	var out []CardListEntry
	err := ScanCardList(r, func(e CardListEntry) error {
		out = append(out, e)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}
