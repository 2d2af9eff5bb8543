// Package audit records what the appliance did — reads, rejections,
// blacklist hits, tampering, faults — without personal data. Card data never
// reaches it; a card serial appears only as Hasher.Card, a keyed hash
// (HMAC-SM3 under a key local to the appliance, see LoadOrCreateKey), so
// events about the same card can be linked by whoever holds the logs while
// the serial cannot be recovered from them.
//
// Log writes JSON lines to a writer and/or a size-rotated file, keeps the
// last events in memory for the admin API (Recent) and counts events by kind
// (Counts).
//
// It lives under api because its event schema (Event, the Kind constants,
// Query, NoSlot) crosses the admin edge: the appliance writes events, the
// admin API (api/admin) serves them and samctl prints them, and api packages
// do not import the appliance.
package audit

import (
	"crypto/hmac"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/emmansun/gmsm/sm3"
)

// Event kinds used by the appliance. Kind is an open set; these are the
// names other packages should use.
const (
	KindReadOK          = "read.ok"
	KindReadRejected    = "read.rejected"
	KindCardBlacklisted = "card.blacklisted"
	KindReaderTamper    = "reader.tamper"
	KindReaderSuspended = "reader.suspended"
	KindReaderRejected  = "reader.rejected"
	KindPossibleClone   = "card.clone"
	KindSAMFault        = "sam.fault"
	KindFrameMalformed  = "frame.malformed"
	KindBusy            = "pool.busy"
	KindWriteError      = "audit.write_error" // counted when the log cannot be written
)

// NoSlot is Event.Slot when no SAM slot is involved.
const NoSlot = -1

// Event is one audit record. It must hold no personal data: Card is a
// Hasher.Card value (anything else is replaced by "invalid"), and Detail is
// machine-made text — Log also redacts from it anything that looks like a
// card serial or an ID number.
type Event struct {
	Time   time.Time `json:"time"`
	Kind   string    `json:"kind"`
	Reader string    `json:"reader,omitempty"`
	Card   string    `json:"card,omitempty"` // Hasher.Card
	// Declared is the keyed hash of the serial a reader declared, when it
	// differs from Card (the SAM-authenticated one): reader tampering.
	Declared string        `json:"declared_card,omitempty"`
	Slot     int           `json:"slot"` // NoSlot if none
	SAMID    string        `json:"sam,omitempty"`
	Code     int           `json:"code,omitempty"` // error code sent to the reader, 0 if none
	Detail   string        `json:"detail,omitempty"`
	Duration time.Duration `json:"duration_ns,omitempty"`
	// Actor is the operator identity that made a change, taken from its
	// verified client certificate by the admin API (never from a request
	// body); "samrackd" for the daemon's own configuration events.
	Actor string `json:"actor,omitempty"`
	Count int    `json:"count,omitempty"` // how many things a change touched (cards added, removed, imported)
}

// Limits applied by Log.Record.
const (
	MaxDetail    = 256
	maxKind      = 48
	maxField     = 64
	maxKinds     = 256 // distinct kinds counted; later ones count as "other"
	cardHashLen  = 32  // hex digits of Hasher.Card
	minRedactRun = 15  // hex/digit runs this long are redacted from Detail
)

// Hasher makes the keyed hashes of card serials. Safe for concurrent use.
type Hasher struct {
	pool sync.Pool // of hash.Hash (HMAC-SM3 under the key)
}

// KeySize is the size of the keys LoadOrCreateKey makes.
const KeySize = 32

// NewHasher returns a Hasher under key (at least 16 bytes; it is copied).
func NewHasher(key []byte) *Hasher {
	if len(key) < 16 {
		panic("audit: hasher key shorter than 16 bytes")
	}
	k := append([]byte(nil), key...)
	h := &Hasher{}
	h.pool.New = func() any { return hmac.New(sm3.New, k) }
	return h
}

// Card returns the loggable form of a card serial: the first 16 bytes of
// HMAC-SM3(key, serial), as 32 lowercase hex digits.
func (h *Hasher) Card(serial [8]byte) string {
	m := h.pool.Get().(hash.Hash)
	m.Reset()
	m.Write(serial[:])
	var sum [sm3.Size]byte
	m.Sum(sum[:0])
	h.pool.Put(m)
	return hex.EncodeToString(sum[:16])
}

// LoadOrCreateKey returns the hashing key in the file at path, creating it
// (KeySize random bytes, mode 0600) if it does not exist. The key must stay
// with the appliance (the PKI directory) and outlive its logs.
func LoadOrCreateKey(path string) ([]byte, error) {
	key, err := os.ReadFile(path)
	if err == nil {
		if len(key) < 16 {
			return nil, fmt.Errorf("audit: key %s: %d bytes, want ≥ 16", path, len(key))
		}
		return key, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("audit: key: %w", err)
	}
	key = make([]byte, KeySize)
	rand.Read(key)
	// Write aside, then link into place: the key appears whole or not at
	// all, and a concurrent creator's key wins over ours.
	f, err := os.CreateTemp(filepath.Dir(path), ".audit-key*")
	if err != nil {
		return nil, fmt.Errorf("audit: key: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp)
	_, err = f.Write(key)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Link(tmp, path)
	}
	if errors.Is(err, fs.ErrExist) {
		return LoadOrCreateKey(path)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: key: %w", err)
	}
	return key, nil
}

// Config configures a Log. The zero Config keeps events in memory only.
type Config struct {
	W        io.Writer // JSON lines, if not nil (e.g. the journal via stderr)
	File     string    // JSON lines appended to this file, if not ""
	MaxBytes int64     // rotate File beyond this size; default 64 MiB
	Keep     int       // rotated files kept (File.1 … File.Keep); default 3
	// MaxAge deletes a rotated file once its newest event is older than
	// this (checked at open and at each rotation); 0 keeps files by
	// MaxBytes and Keep only.
	MaxAge time.Duration
	Ring   int              // events kept for Recent; default 1024
	Now    func() time.Time // fills Event.Time when zero; default time.Now
}

// Log is the audit log. Safe for concurrent use; it starts no goroutines.
type Log struct {
	cfg Config

	mu     sync.Mutex // guards everything below
	f      *os.File
	size   int64
	ring   []Event
	next   int // ring index of the next event
	full   bool
	counts map[string]uint64
	err    error // last write error
	closed bool
}

// New opens a Log.
func New(cfg Config) (*Log, error) {
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 64 << 20
	}
	if cfg.Keep <= 0 {
		cfg.Keep = 3
	}
	if cfg.Ring <= 0 {
		cfg.Ring = 1024
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	l := &Log{cfg: cfg, ring: make([]Event, cfg.Ring), counts: map[string]uint64{}}
	if cfg.File != "" {
		if err := l.openLocked(); err != nil {
			return nil, err
		}
		l.pruneLocked()
	}
	return l, nil
}

func (l *Log) openLocked() error {
	f, err := os.OpenFile(l.cfg.File, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return fmt.Errorf("audit: %w", err)
	}
	l.f, l.size = f, fi.Size()
	return nil
}

// rotateLocked shifts File → File.1 → … → File.Keep and opens a new File.
func (l *Log) rotateLocked() error {
	if err := l.f.Close(); err != nil {
		return err
	}
	l.f = nil
	for i := l.cfg.Keep - 1; i >= 1; i-- {
		os.Rename(fmt.Sprintf("%s.%d", l.cfg.File, i), fmt.Sprintf("%s.%d", l.cfg.File, i+1))
	}
	if err := os.Rename(l.cfg.File, l.cfg.File+".1"); err != nil {
		return err
	}
	l.pruneLocked()
	return l.openLocked()
}

// Record adds an event: it is sanitized (see Event), written, kept for
// Recent and counted. Write failures are counted as KindWriteError and
// reported by Err; the event is still kept and counted.
func (l *Log) Record(e Event) {
	e = l.sanitize(e)
	line, err := json.Marshal(e)
	if err != nil { // cannot happen for this struct
		line = []byte(`{"kind":"audit.encode_error"}`)
	}
	line = append(line, '\n')

	l.mu.Lock()
	defer l.mu.Unlock()
	l.ring[l.next] = e
	l.next = (l.next + 1) % len(l.ring)
	l.full = l.full || l.next == 0
	kind := e.Kind
	if _, ok := l.counts[kind]; !ok && len(l.counts) >= maxKinds {
		kind = "other"
	}
	l.counts[kind]++
	if l.closed {
		return
	}
	if err := l.writeLocked(line); err != nil {
		l.err = err
		l.counts[KindWriteError]++
	}
}

func (l *Log) writeLocked(line []byte) error {
	var errs []error
	if l.cfg.W != nil {
		if _, err := l.cfg.W.Write(line); err != nil {
			errs = append(errs, err)
		}
	}
	if l.cfg.File != "" {
		if l.f != nil && l.size > 0 && l.size+int64(len(line)) > l.cfg.MaxBytes {
			if err := l.rotateLocked(); err != nil {
				errs = append(errs, fmt.Errorf("rotate: %w", err))
			}
		}
		if l.f == nil { // a failed rotation or open: try again
			if err := l.openLocked(); err != nil {
				return errors.Join(append(errs, err)...)
			}
		}
		n, err := l.f.Write(line)
		l.size += int64(n)
		if err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

func (l *Log) sanitize(e Event) Event {
	if e.Time.IsZero() {
		e.Time = l.cfg.Now()
	}
	e.Time = e.Time.UTC()
	e.Kind = clean(e.Kind, maxKind)
	if e.Kind == "" {
		e.Kind = "unknown"
	}
	e.Reader = clean(e.Reader, maxField)
	e.Actor = clean(e.Actor, maxField)
	e.SAMID = clean(e.SAMID, maxField)
	if e.Card != "" && !isCardHash(e.Card) {
		e.Card = "invalid"
	}
	if e.Declared != "" && !isCardHash(e.Declared) {
		e.Declared = "invalid"
	}
	e.Detail = redact(clean(e.Detail, MaxDetail))
	return e
}

func isCardHash(s string) bool {
	if len(s) != cardHashLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// clean bounds s and drops control characters.
func clean(s string, max int) string {
	s = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == '\uFFFD' {
			return -1
		}
		return r
	}, s)
	if len(s) > max {
		s = strings.ToValidUTF8(s[:max], "")
	}
	return s
}

// redact replaces runs of minRedactRun or more hex digits (or digits and X,
// as in an ID number) with "[redacted]": card serials in clear and resident
// ID numbers never belong in a Detail.
func redact(s string) string {
	isRun := func(c byte) bool {
		return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F' || c == 'x' || c == 'X'
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		j := i
		for j < len(s) && isRun(s[j]) {
			j++
		}
		if j-i >= minRedactRun {
			b.WriteString("[redacted]")
		} else {
			b.WriteString(s[i:j])
		}
		if j < len(s) {
			b.WriteByte(s[j])
			j++
		}
		i = j
	}
	return b.String()
}

// Recent returns up to n of the latest events, newest first.
func (l *Log) Recent(n int) []Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	have := l.next
	if l.full {
		have = len(l.ring)
	}
	n = min(max(n, 0), have)
	out := make([]Event, n)
	for i := range out {
		out[i] = l.ring[(l.next-1-i+len(l.ring))%len(l.ring)]
	}
	return out
}

// Counts returns the number of events recorded by kind since New.
func (l *Log) Counts() map[string]uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	m := make(map[string]uint64, len(l.counts))
	for k, v := range l.counts {
		m[k] = v
	}
	return m
}

// Err returns the last write error, or nil.
func (l *Log) Err() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.err
}

// Close flushes and closes the file. Later events are kept in memory and
// counted but not written.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return nil
	}
	l.closed = true
	if l.f == nil {
		return nil
	}
	err := l.f.Sync()
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
