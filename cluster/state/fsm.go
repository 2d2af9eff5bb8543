package state

import (
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/samrack/samrack/drivers/ga467"
)

// MaxCardsPage bounds the page size of Cards.
const MaxCardsPage = 10_000

// FSM is the state machine. Apply, Snapshot and Restore have the shape of
// hashicorp/raft's FSM (the raft store adapts them one to one); the read
// methods answer from memory and are safe for concurrent use with them.
type FSM struct {
	// Lock order: wmu, then mu.
	wmu sync.Mutex   // serializes changes (Apply, Restore) and their persistence
	mu  sync.RWMutex // guards t; held for writing only to swap in prepared changes
	t   tables
}

// tables is the whole state.
type tables struct {
	cards     *cardSet
	readerBL  map[string]string        // reader serial → reason
	readers   map[string]Reader        // serial → reader
	affinity  map[string][]ga467.SAMID // reader serial → SAMs to serve it first
	operators map[string]Operator      // name → operator identity (operators.go)
}

func newTables() tables {
	return tables{
		cards:     newCardSet(),
		readerBL:  map[string]string{},
		readers:   map[string]Reader{},
		affinity:  map[string][]ga467.SAMID{},
		operators: map[string]Operator{},
	}
}

// NewFSM returns an empty state machine.
func NewFSM() *FSM { return &FSM{t: newTables()} }

// Apply decodes, validates and applies one command in its wire form
// (Command.Encode). It returns ErrUnknownReader, wrapped, as the
// deterministic outcome of a command about an unregistered reader (the
// state is unchanged); any other error means the bytes did not come from
// Command.Encode of this version.
func (f *FSM) Apply(cmd []byte) error {
	c, err := Decode(cmd)
	if err != nil {
		return err
	}
	return f.apply(c, nil)
}

// effect is what a command changes, computed before anything changes so
// that it can be persisted first and then swapped in under a short lock.
type effect struct {
	addCards, delCards []uint64
	entry              Entry    // of addCards
	rebuilt            *cardSet // a rebuilt card set replacing the current one, or nil

	blPut  map[string]string // reader blacklist
	blDel  []string
	rdPut  []Reader
	rdDel  []string
	affPut map[string][]ga467.SAMID
	affDel []string
	opPut  []Operator // operator identities
}

// apply plans c, persists the effect (if persist is not nil) and swaps it
// in. c must be valid.
func (f *FSM) apply(c *Command, persist func(*effect) error) error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	e, err := f.planLocked(c)
	if err != nil {
		return err
	}
	if n := len(e.addCards) + len(e.delCards); n > 0 && f.t.cards.needsRebuild(n) {
		e.rebuilt = f.t.cards.rebuilt(e.addCards, e.entry, e.delCards)
	}
	if persist != nil {
		if err := persist(e); err != nil {
			return err
		}
	}
	f.mu.Lock()
	f.commitLocked(e)
	f.mu.Unlock()
	return nil
}

// planLocked computes the effect of c. f.wmu must be held (so nothing
// changes underneath; reading t needs no other lock).
func (f *FSM) planLocked(c *Command) (*effect, error) {
	e := &effect{}
	at := normTime(c.At)
	existing := func() (Reader, error) {
		r, ok := f.t.readers[c.Serial]
		if !ok {
			return Reader{}, fmt.Errorf("%w: %q", ErrUnknownReader, c.Serial)
		}
		return r.clone(), nil
	}
	switch c.Op {
	case OpAddCards:
		e.addCards = cardKeys(c.Cards)
		e.entry = Entry{Reason: c.Reason, AddedAt: at, AddedBy: c.By}
	case OpRemoveCards:
		e.delCards = cardKeys(c.Cards)
	case OpAddReaderBlacklist:
		e.blPut = map[string]string{c.Serial: c.Reason}
	case OpRemoveReaderBlacklist:
		e.blDel = []string{c.Serial}
	case OpPutReader:
		r := c.Reader.clone()
		r.CreatedAt = normTime(r.CreatedAt)
		if old, ok := f.t.readers[r.Serial]; ok {
			r.CreatedAt, r.FailedAuth = old.CreatedAt, old.FailedAuth
			if r.Status == 0 {
				r.Status = old.Status
			}
		} else {
			if r.CreatedAt.IsZero() {
				r.CreatedAt = at
			}
			if r.Status == 0 {
				r.Status = ReaderActive
			}
		}
		e.rdPut = []Reader{r}
	case OpDeleteReader:
		e.rdDel = []string{c.Serial}
		e.affDel = []string{c.Serial}
	case OpSetReaderStatus:
		r, err := existing()
		if err != nil {
			return nil, err
		}
		r.Status = c.Status
		if c.Status == ReaderActive {
			r.FailedAuth = 0
		}
		e.rdPut = []Reader{r}
	case OpRecordAuthFailure:
		r, err := existing()
		if err != nil {
			return nil, err
		}
		r.FailedAuth = min(r.FailedAuth+1, MaxAuthThreshold)
		if r.FailedAuth >= c.Threshold && r.Status == ReaderActive {
			r.Status = ReaderSuspended
		}
		e.rdPut = []Reader{r}
	case OpResetAuthFailures:
		r, err := existing()
		if err != nil {
			return nil, err
		}
		r.FailedAuth = 0
		e.rdPut = []Reader{r}
	case OpSetAffinity:
		e.affPut = map[string][]ga467.SAMID{c.Serial: slices.Clone(c.SAMs)}
	case OpClearAffinity:
		e.affDel = []string{c.Serial}
	case OpPutOperator, OpSetOperatorRole, OpRevokeOperator:
		return f.planOperatorLocked(c)
	default:
		return nil, fmt.Errorf("%w: unknown op %q", ErrInvalidCommand, c.Op)
	}
	return e, nil
}

func cardKeys(cs []CardSerial) []uint64 {
	keys := make([]uint64, len(cs))
	for i, s := range cs {
		keys[i] = cardKey(s)
	}
	return keys
}

// commitLocked swaps in a planned effect. f.mu must be held for writing.
func (f *FSM) commitLocked(e *effect) {
	t := &f.t
	switch {
	case e.rebuilt != nil:
		t.cards = e.rebuilt
	case len(e.addCards) > 0:
		t.cards.add(e.addCards, t.cards.batch(e.entry))
	case len(e.delCards) > 0:
		t.cards.remove(e.delCards)
	}
	for s, reason := range e.blPut {
		t.readerBL[s] = reason
	}
	for _, s := range e.blDel {
		delete(t.readerBL, s)
	}
	for _, r := range e.rdPut {
		t.readers[r.Serial] = r
	}
	for _, s := range e.rdDel {
		delete(t.readers, s)
	}
	for s, ids := range e.affPut {
		t.affinity[s] = ids
	}
	for _, s := range e.affDel {
		delete(t.affinity, s)
	}
	for _, o := range e.opPut {
		t.operators[o.Name] = o
	}
}

// CardBlacklisted reports whether the card is blacklisted, and why. It does
// not allocate.
func (f *FSM) CardBlacklisted(serial [8]byte) (Entry, bool) {
	k := cardKey(serial)
	f.mu.RLock()
	e, ok := f.t.cards.lookup(k)
	f.mu.RUnlock()
	return e, ok
}

// CardCount returns the number of blacklisted cards.
func (f *FSM) CardCount() int {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.t.cards.count
}

// Cards returns up to limit (at most MaxCardsPage) blacklisted cards with
// serials greater than after, in serial order. Start with the zero serial
// (never a valid card) and continue from the last serial returned.
func (f *FSM) Cards(after [8]byte, limit int) []CardEntry {
	limit = min(limit, MaxCardsPage)
	if limit <= 0 {
		return nil
	}
	f.mu.RLock()
	defer f.mu.RUnlock()
	var out []CardEntry
	cs := f.t.cards
	cs.each(cardKey(after), func(k uint64, b uint32) bool {
		out = append(out, CardEntry{Serial: cardSerial(k), Entry: cs.batches[b]})
		return len(out) < limit
	})
	return out
}

// ReaderBlacklisted reports whether the reader serial is on the reader
// blacklist. The registry status (Reader.Status) is separate.
func (f *FSM) ReaderBlacklisted(serial string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, ok := f.t.readerBL[serial]
	return ok
}

// ReaderBlacklist returns the reader blacklist: serial → reason.
func (f *FSM) ReaderBlacklist() map[string]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	m := make(map[string]string, len(f.t.readerBL))
	for k, v := range f.t.readerBL {
		m[k] = v
	}
	return m
}

// Reader returns a registered reader.
func (f *FSM) Reader(serial string) (Reader, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	r, ok := f.t.readers[serial]
	return r.clone(), ok
}

// Readers returns every registered reader, by serial.
func (f *FSM) Readers() []Reader {
	f.mu.RLock()
	out := make([]Reader, 0, len(f.t.readers))
	for _, r := range f.t.readers {
		out = append(out, r.clone())
	}
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b Reader) int { return strings.Compare(a.Serial, b.Serial) })
	return out
}

// Affinity returns the SAMs that should serve the reader first, in order.
func (f *FSM) Affinity(reader string) []ga467.SAMID {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Clone(f.t.affinity[reader])
}
