package state

import (
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	"github.com/samrack/samrack/drivers/ga467"
)

// MaxCardsPage bounds the page size of Cards.
const MaxCardsPage = 10_000

// FSM is the state machine. Apply, Capture (a snapshot) and Restore have
// the shape of hashicorp/raft's FSM, FSMSnapshot (Persist, Release) and
// restore, and the raft store adapts them one to one; the read methods
// answer from memory and are safe for concurrent use with them.
//
// Apply is deterministic and never refuses a command for reasons the
// leader did not see: it decodes leniently (no re-validation), a command
// the proposer's validation would have let through is applied, and an
// outcome such as ErrUnknownReader is the same on every replica. Only a
// command from a newer version stops it (ErrNewerCommand), for good.
//
// Close stops the background merge; an FSM that is not closed may leave
// one running for a while.
type FSM struct {
	// Lock order: wmu, then mu.
	wmu sync.Mutex   // serializes changes (Apply, Restore, Capture, merge swaps) and their persistence
	mu  sync.RWMutex // guards t and the merge fields; held for writing only to swap in changes
	t   tables

	halted error // guarded by wmu: ErrNewerCommand once met

	merging   bool          // a merge goroutine runs
	mergeDone chan struct{} // closed when it ends
	closed    bool
	wg        sync.WaitGroup // the merge goroutine
}

// tables is the whole state.
type tables struct {
	cards     *cardSet
	readerBL  map[string]string        // reader serial → reason
	readers   map[string]Reader        // serial → reader
	affinity  map[string][]ga467.SAMID // reader serial → SAMs to serve it first
	operators map[string]Operator      // name → operator identity (operators.go)
	slots     map[slotKey]Slot         // the rack inventory
	config    map[string]string        // cluster config
}

func newTables() tables {
	return tables{
		cards:     newCardSet(),
		readerBL:  map[string]string{},
		readers:   map[string]Reader{},
		affinity:  map[string][]ga467.SAMID{},
		operators: map[string]Operator{},
		slots:     map[slotKey]Slot{},
		config:    map[string]string{},
	}
}

// NewFSM returns an empty state machine.
func NewFSM() *FSM { return &FSM{t: newTables()} }

// Result is what a command did, as computed by Apply on every replica; the
// raft store returns it through the apply future, so a proposer learns the
// outcome without reading the state before and after.
type Result struct {
	// Cards is the number of cards a card command newly blacklisted
	// (AddCards) or took off the blacklist (RemoveCards).
	Cards int
	// Reader is the reader after a reader registry command (zero after
	// DeleteReader).
	Reader Reader
	// Suspended reports that this RecordAuthFailure suspended the reader.
	Suspended bool
}

// Apply decodes and applies one command in its wire form (Command.Encode)
// and returns what it did. It returns ErrUnknownReader, wrapped, as the
// deterministic outcome of a command about an unregistered reader (the
// state is unchanged); ErrInvalidCommand for bytes that are not a command
// (nothing changes, on every replica alike); and ErrNewerCommand for a
// command of a newer version, after which the FSM applies nothing more.
func (f *FSM) Apply(cmd []byte) (Result, error) {
	c, err := decodeLenient(cmd)
	if err != nil {
		if isNewer(err) {
			f.wmu.Lock()
			if f.halted == nil {
				f.halted = err
			}
			f.wmu.Unlock()
		}
		return Result{}, err
	}
	return f.apply(c, nil)
}

// Halted returns ErrNewerCommand (wrapped) if the FSM has stopped
// applying, else nil.
func (f *FSM) Halted() error {
	f.wmu.Lock()
	defer f.wmu.Unlock()
	return f.halted
}

// Close waits for a background merge to end and starts no other. The FSM
// keeps working; its layers just stop being folded.
func (f *FSM) Close() {
	f.mu.Lock()
	f.closed = true
	f.mu.Unlock()
	f.wg.Wait()
}

// effect is what a command changes, computed before anything changes so
// that it can be persisted first and then swapped in under a short lock.
type effect struct {
	addCards, delCards []uint64
	entry              Entry // of addCards
	changed            int   // cards that change

	blPut   map[string]string // reader blacklist
	blDel   []string
	rdPut   []Reader
	rdDel   []string
	affPut  map[string][]ga467.SAMID
	affDel  []string
	slotPut []Slot
	slotDel []slotKey
	cfgPut  map[string]string
	cfgDel  []string
	opPut   []Operator // operator identities
}

// apply plans c, persists the effect (if persist is not nil) and swaps it
// in.
func (f *FSM) apply(c *Command, persist func(*effect) error) (Result, error) {
	f.waitMerges()
	f.wmu.Lock()
	defer f.wmu.Unlock()
	if f.halted != nil {
		return Result{}, f.halted
	}
	e, res, err := f.planLocked(c)
	if err != nil {
		return res, err
	}
	if persist != nil {
		if err := persist(e); err != nil {
			return Result{}, err
		}
	}
	f.mu.Lock()
	f.commitLocked(e)
	f.maybeMergeLocked()
	f.mu.Unlock()
	return res, nil
}

// waitMerges is the back-pressure of the merge: while too many frozen
// layers wait to be folded, wait for the merge in flight to end.
func (f *FSM) waitMerges() {
	for {
		f.mu.RLock()
		wait := f.merging && len(f.t.cards.frozen) > maxFrozen
		done := f.mergeDone
		f.mu.RUnlock()
		if !wait {
			return
		}
		<-done
	}
}

// planLocked computes the effect of c and its result. f.wmu must be held
// (so nothing changes underneath; reading t needs no other lock).
func (f *FSM) planLocked(c *Command) (*effect, Result, error) {
	e := &effect{}
	var res Result
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
		e.changed = f.t.cards.changedBy(e.addCards, true)
		res.Cards = e.changed
	case OpRemoveCards:
		e.delCards = cardKeys(c.Cards)
		e.changed = f.t.cards.changedBy(e.delCards, false)
		res.Cards = e.changed
	case OpAddReaderBlacklist:
		e.blPut = map[string]string{c.Serial: c.Reason}
	case OpRemoveReaderBlacklist:
		e.blDel = []string{c.Serial}
	case OpPutReader:
		if c.Reader == nil {
			return nil, res, fmt.Errorf("%w: %s: no reader", ErrInvalidCommand, c.Op)
		}
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
			return nil, res, err
		}
		r.Status = c.Status
		if c.Status == ReaderActive {
			r.FailedAuth = 0
		}
		e.rdPut = []Reader{r}
	case OpRecordAuthFailure:
		r, err := existing()
		if err != nil {
			return nil, res, err
		}
		r.FailedAuth = min(r.FailedAuth+1, MaxAuthThreshold)
		if r.FailedAuth >= c.Threshold && r.Status == ReaderActive {
			r.Status = ReaderSuspended
			res.Suspended = true
		}
		e.rdPut = []Reader{r}
	case OpResetAuthFailures:
		r, err := existing()
		if err != nil {
			return nil, res, err
		}
		r.FailedAuth = 0
		e.rdPut = []Reader{r}
	case OpSetAffinity:
		e.affPut = map[string][]ga467.SAMID{c.Serial: slices.Clone(c.SAMs)}
	case OpClearAffinity:
		e.affDel = []string{c.Serial}
	case OpPutOperator, OpSetOperatorRole, OpRevokeOperator:
		op, err := f.planOperatorLocked(c)
		return op, res, err
	case OpPutSlot, OpDeleteSlot:
		if c.Slot == nil {
			return nil, res, fmt.Errorf("%w: %s: no slot", ErrInvalidCommand, c.Op)
		}
		if c.Op == OpPutSlot {
			e.slotPut = []Slot{*c.Slot}
		} else {
			e.slotDel = []slotKey{c.Slot.key()}
		}
	case OpSetConfig:
		e.cfgPut = map[string]string{c.Key: c.Value}
	case OpDeleteConfig:
		e.cfgDel = []string{c.Key}
	case OpUseJoinToken:
		if err := f.planUseJoinToken(c, e); err != nil {
			return nil, res, err
		}
	default:
		return nil, res, fmt.Errorf("%w: unknown op %q", ErrInvalidCommand, c.Op)
	}
	if len(e.rdPut) == 1 {
		res.Reader = e.rdPut[0].clone()
	}
	return e, res, nil
}

func cardKeys(cs []CardSerial) []uint64 {
	keys := make([]uint64, len(cs))
	for i, s := range cs {
		keys[i] = cardKey(s)
	}
	return keys
}

// commitLocked swaps in a planned effect. f.wmu and f.mu (for writing)
// must be held.
func (f *FSM) commitLocked(e *effect) {
	t := &f.t
	if len(e.addCards) > 0 {
		t.cards.applyLocked(e.addCards, t.cards.batch(e.entry), e.changed)
	}
	if len(e.delCards) > 0 {
		t.cards.applyLocked(e.delCards, tombstone, e.changed)
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
	for _, s := range e.slotPut {
		t.slots[s.key()] = s
	}
	for _, k := range e.slotDel {
		delete(t.slots, k)
	}
	for k, v := range e.cfgPut {
		t.config[k] = v
	}
	for _, k := range e.cfgDel {
		delete(t.config, k)
	}
}

// maybeMergeLocked starts a background merge if the frozen card layers
// call for one: a full merge into a new base when they hold more than
// 1/64 of the base, else a compaction of many small layers into one. f.wmu
// and f.mu (for writing) must be held.
func (f *FSM) maybeMergeLocked() {
	cs := f.t.cards
	if f.merging || f.closed || len(cs.frozen) == 0 {
		return
	}
	full := cs.frozenLen() >= max(mergeMinChange, len(cs.base.keys)/64)
	if !full && len(cs.frozen) < compactLayers {
		return
	}
	base, layers, nb := cs.base, cs.frozen, len(cs.batches)
	f.merging, f.mergeDone = true, make(chan struct{})
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		var nbase *cardBase
		var nlayer *cardLayer
		if full {
			nbase = mergeBase(base, layers, nb)
		} else {
			k, ids := mergeLayers(layers)
			nlayer = &cardLayer{keys: k, ids: ids}
		}
		f.wmu.Lock()
		defer f.wmu.Unlock()
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.t.cards == cs { // not replaced by a Restore meanwhile
			rest := cs.frozen[len(layers):]
			if full {
				cs.base, cs.frozen = nbase, slices.Clone(rest)
			} else {
				cs.frozen = append([]*cardLayer{nlayer}, rest...)
			}
		}
		f.merging = false
		close(f.mergeDone)
		f.maybeMergeLocked()
	}()
}

// Compact folds every change into the base array now, on the caller's
// goroutine, after waiting for a background merge: for benchmarks and
// tests that want the steady state. Reads answer the same before and after.
func (f *FSM) Compact() {
	for {
		f.mu.RLock()
		merging, done := f.merging, f.mergeDone
		f.mu.RUnlock()
		if !merging {
			break
		}
		<-done
	}
	f.wmu.Lock()
	defer f.wmu.Unlock()
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.merging { // started between the wait and the lock: leave it be
		return
	}
	cs := f.t.cards
	cs.freezeLocked()
	if len(cs.frozen) > 0 {
		cs.base, cs.frozen = mergeBase(cs.base, cs.frozen, len(cs.batches)), nil
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
	a := cardKey(after)
	f.mu.RLock()
	v := f.t.cards.viewLocked(a, false)
	f.mu.RUnlock()
	var out []CardEntry
	v.each(a, func(k uint64, b uint32) bool {
		out = append(out, CardEntry{Serial: cardSerial(k), Entry: v.batches[b]})
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
	return maps.Clone(f.t.readerBL)
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

// Slots returns the rack inventory, by node and slot name.
func (f *FSM) Slots() []Slot {
	f.mu.RLock()
	out := slices.Collect(maps.Values(f.t.slots))
	f.mu.RUnlock()
	slices.SortFunc(out, compareSlots)
	return out
}

func compareSlots(a, b Slot) int {
	if c := strings.Compare(a.Node, b.Node); c != 0 {
		return c
	}
	return strings.Compare(a.Name, b.Name)
}

// Config returns a cluster config value.
func (f *FSM) Config(key string) (string, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	v, ok := f.t.config[key]
	return v, ok
}

// Digest is the SHA-256 of the snapshot of the state: equal on replicas
// that applied the same commands, whatever their merge timing.
func (f *FSM) Digest() ([32]byte, error) {
	s, err := f.Capture()
	if err != nil {
		return [32]byte{}, err
	}
	defer s.Release()
	h := sha256.New()
	if err := s.Persist(h); err != nil {
		return [32]byte{}, err
	}
	return [32]byte(h.Sum(nil)), nil
}
