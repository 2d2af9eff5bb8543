package state

import (
	"encoding/binary"
	"slices"
	"time"
)

// Entry is what the blacklist holds about a card.
type Entry struct {
	Reason  string
	AddedAt time.Time
	AddedBy string
}

// CardEntry is a blacklisted card with its entry.
type CardEntry struct {
	Serial [8]byte
	Entry
}

func cardKey(s [8]byte) uint64 { return binary.BigEndian.Uint64(s[:]) }

func cardSerial(k uint64) (s [8]byte) {
	binary.BigEndian.PutUint64(s[:], k)
	return s
}

// The card blacklist in memory.
//
// The bulk of it is a cardBase, immutable once built: keys (sorted uint64
// card serials, big-endian so the order is the byte order), ids (the batch
// of each key, 1, 2 or 4 bytes wide depending on how many batches there
// are) and dir (a directory over the key range that narrows a lookup to ~16
// keys). Changes since the base was built sit in layers above it: frozen
// cardLayers (sorted, immutable, oldest first) and one small active map
// that only the apply goroutine writes. A lookup asks the active map, then
// the frozen layers newest first, then the base; a layer's tombstone hides
// the key below it.
//
// Folding layers into the base (or small layers into one) runs on a
// background goroutine (FSM.maybeMergeLocked) over immutable inputs and is
// swapped in atomically; a read gives the same answer before and after. A
// snapshot captures the base and the frozen layers by reference after
// freezing the active map, so capturing costs O(active map).
type cardSet struct {
	base   *cardBase
	frozen []*cardLayer      // immutable, oldest first; replaced, never appended in place
	active map[uint64]uint32 // newest changes; tombstone marks a removal

	batches []Entry // append-only: a prefix is immutable, so views share it
	intern  map[Entry]uint32
	count   int
}

// tombstone is the batch id of a removal in a layer.
const tombstone = ^uint32(0)

// Sizes that drive freezing and merging.
const (
	activeMax      = 4096 // the active map is frozen into a layer at this size
	bigCommand     = 1024 // a command with more cards becomes its own layer
	compactLayers  = 8    // this many frozen layers are compacted into one
	maxFrozen      = 64   // Apply waits for a merge in flight beyond this many
	mergeMinChange = 4096
)

type cardBase struct {
	keys []uint64
	ids  idColumn
	dir  []uint32 // dir[i] = first index whose bucket ≥ i; len = buckets+1
	lo   uint64   // keys[0]
	sh   uint     // bucket of k = (k-lo)>>sh
}

// cardLayer is a sorted run of changes: ids[i] is the batch of keys[i], or
// tombstone.
type cardLayer struct {
	keys []uint64
	ids  []uint32
}

const dirStride = 16 // keys per directory bucket, on average

var emptyBase = &cardBase{}

func newCardSet() *cardSet {
	return &cardSet{base: emptyBase, active: map[uint64]uint32{}, intern: map[Entry]uint32{}}
}

// idColumn is a column of batch ids in the narrowest width that holds them.
type idColumn struct {
	w8  []uint8
	w16 []uint16
	w32 []uint32
}

func (c *idColumn) get(i int) uint32 {
	switch {
	case c.w8 != nil:
		return uint32(c.w8[i])
	case c.w16 != nil:
		return uint32(c.w16[i])
	default:
		return c.w32[i]
	}
}

func makeIDColumn(n int, maxID uint32) idColumn {
	switch {
	case maxID <= 0xff:
		return idColumn{w8: make([]uint8, n)}
	case maxID <= 0xffff:
		return idColumn{w16: make([]uint16, n)}
	default:
		return idColumn{w32: make([]uint32, n)}
	}
}

func (c *idColumn) set(i int, v uint32) {
	switch {
	case c.w8 != nil:
		c.w8[i] = uint8(v)
	case c.w16 != nil:
		c.w16[i] = uint16(v)
	default:
		c.w32[i] = v
	}
}

func (c *idColumn) bytes() int { return len(c.w8) + 2*len(c.w16) + 4*len(c.w32) }

// lowerBound returns the first index whose key is ≥ k.
func (s *cardBase) lowerBound(k uint64) int {
	if len(s.keys) == 0 || k <= s.lo {
		return 0
	}
	b := (k - s.lo) >> s.sh
	if b >= uint64(len(s.dir)-1) {
		return len(s.keys)
	}
	i, j := int(s.dir[b]), int(s.dir[b+1])
	for i < j {
		h := int(uint(i+j) >> 1)
		if s.keys[h] < k {
			i = h + 1
		} else {
			j = h
		}
	}
	return i
}

func (s *cardBase) get(k uint64) (uint32, bool) {
	i := s.lowerBound(k)
	if i < len(s.keys) && s.keys[i] == k {
		return s.ids.get(i), true
	}
	return 0, false
}

func (l *cardLayer) lowerBound(k uint64) int {
	i, j := 0, len(l.keys)
	for i < j {
		h := int(uint(i+j) >> 1)
		if l.keys[h] < k {
			i = h + 1
		} else {
			j = h
		}
	}
	return i
}

// get returns the layer's word on k: a batch, tombstone, or !ok.
func (l *cardLayer) get(k uint64) (uint32, bool) {
	i := l.lowerBound(k)
	if i < len(l.keys) && l.keys[i] == k {
		return l.ids[i], true
	}
	return 0, false
}

// batchOf returns the batch of k if k is blacklisted.
func (s *cardSet) batchOf(k uint64) (uint32, bool) {
	if len(s.active) > 0 {
		if b, ok := s.active[k]; ok {
			return b, b != tombstone
		}
	}
	for i := len(s.frozen) - 1; i >= 0; i-- {
		if b, ok := s.frozen[i].get(k); ok {
			return b, b != tombstone
		}
	}
	return s.base.get(k)
}

func (s *cardSet) lookup(k uint64) (Entry, bool) {
	b, ok := s.batchOf(k)
	if !ok {
		return Entry{}, false
	}
	return s.batches[b], true
}

// batch interns e, appending it to the batch table if new.
func (s *cardSet) batch(e Entry) uint32 {
	if id, ok := s.intern[e]; ok {
		return id
	}
	id := uint32(len(s.batches))
	s.batches = append(s.batches, e)
	s.intern[e] = id
	return id
}

// changedBy returns how many of keys an add (add true) or a remove would
// change; duplicates count once. It only reads the set; a big command's
// keys are sorted in place (changedBySorted).
func (s *cardSet) changedBy(keys []uint64, add bool) int {
	if len(keys) > bigCommand {
		return s.changedBySorted(keys, add)
	}
	n := 0
	var seen map[uint64]struct{}
	if len(keys) > 1 {
		seen = make(map[uint64]struct{}, len(keys))
	}
	for _, k := range keys {
		if seen != nil {
			if _, dup := seen[k]; dup {
				continue
			}
			seen[k] = struct{}{}
		}
		if _, ok := s.batchOf(k); ok != add {
			n++
		}
	}
	return n
}

// applyLocked blacklists keys under batch id (or removes them, for id ==
// tombstone); changed is changedBy's answer. Small changes go into the
// active map; a big one becomes a frozen layer of its own. The caller holds
// the FSM's write lock.
func (s *cardSet) applyLocked(keys []uint64, id uint32, changed int) {
	if id == tombstone {
		s.count -= changed
	} else {
		s.count += changed
	}
	if len(keys) <= bigCommand {
		for _, k := range keys {
			s.active[k] = id
		}
		if len(s.active) >= activeMax {
			s.freezeLocked()
		}
		return
	}
	s.freezeLocked()
	l := &cardLayer{keys: slices.Clone(keys)}
	slices.Sort(l.keys)
	l.keys = slices.Compact(l.keys)
	l.ids = make([]uint32, len(l.keys))
	for i := range l.ids {
		l.ids[i] = id
	}
	s.pushLocked(l)
}

// freezeLocked turns the active map into a frozen layer.
func (s *cardSet) freezeLocked() {
	if len(s.active) == 0 {
		return
	}
	l := &cardLayer{keys: make([]uint64, 0, len(s.active)), ids: make([]uint32, len(s.active))}
	for k := range s.active {
		l.keys = append(l.keys, k)
	}
	slices.Sort(l.keys)
	for i, k := range l.keys {
		l.ids[i] = s.active[k]
	}
	s.active = map[uint64]uint32{}
	s.pushLocked(l)
}

func (s *cardSet) pushLocked(l *cardLayer) {
	f := make([]*cardLayer, len(s.frozen), len(s.frozen)+1)
	copy(f, s.frozen)
	s.frozen = append(f, l)
}

func (s *cardSet) frozenLen() int {
	n := 0
	for _, l := range s.frozen {
		n += len(l.keys)
	}
	return n
}

// mergeLayers folds layers (oldest first) into one sorted run, the newest
// word on each key winning; tombstones stay (they hide keys below).
func mergeLayers(layers []*cardLayer) ([]uint64, []uint32) {
	// k-way merge; few layers, so a linear scan of the heads is enough.
	pos := make([]int, len(layers))
	total := 0
	for _, l := range layers {
		total += len(l.keys)
	}
	keys := make([]uint64, 0, total)
	ids := make([]uint32, 0, total)
	for {
		var min uint64
		found := false
		for i, l := range layers {
			if pos[i] < len(l.keys) && (!found || l.keys[pos[i]] < min) {
				min, found = l.keys[pos[i]], true
			}
		}
		if !found {
			break
		}
		id := uint32(0)
		for i, l := range layers { // oldest to newest: the last wins
			if pos[i] < len(l.keys) && l.keys[pos[i]] == min {
				id = l.ids[pos[i]]
				pos[i]++
			}
		}
		keys = append(keys, min)
		ids = append(ids, id)
	}
	return keys, ids
}

// mergeBase returns a new base: base with the layers (oldest first)
// folded in. Its inputs are immutable, so it runs without locks.
func mergeBase(base *cardBase, layers []*cardLayer, nbatches int) *cardBase {
	pk, pid := mergeLayers(layers)
	keys := make([]uint64, 0, len(base.keys)+len(pk))
	raw := make([]uint32, 0, cap(keys))
	i, j := 0, 0
	for i < len(base.keys) || j < len(pk) {
		switch {
		case j == len(pk) || (i < len(base.keys) && base.keys[i] < pk[j]):
			keys = append(keys, base.keys[i])
			raw = append(raw, base.ids.get(i))
			i++
		default:
			if i < len(base.keys) && base.keys[i] == pk[j] {
				i++ // shadowed
			}
			if pid[j] != tombstone {
				keys = append(keys, pk[j])
				raw = append(raw, pid[j])
			}
			j++
		}
	}
	return buildBase(keys, raw, nbatches)
}

// buildBase builds a base from sorted unique keys and their batch ids,
// all < nbatches.
func buildBase(keys []uint64, raw []uint32, nbatches int) *cardBase {
	s := &cardBase{}
	if len(keys) == 0 {
		return s
	}
	s.keys = slices.Clip(keys)
	s.ids = makeIDColumn(len(keys), uint32(max(nbatches-1, 0)))
	for i, b := range raw {
		s.ids.set(i, b)
	}
	s.lo = keys[0]
	span := keys[len(keys)-1] - s.lo
	want := uint64(max(len(keys)/dirStride, 1))
	for span>>s.sh >= want {
		s.sh++
	}
	buckets := int(span>>s.sh) + 1
	s.dir = make([]uint32, buckets+1)
	i := 0
	for b := 0; b <= buckets; b++ {
		for i < len(keys) && int((keys[i]-s.lo)>>s.sh) < b {
			i++
		}
		s.dir[b] = uint32(i)
	}
	return s
}

// memBytes estimates the memory held by the index.
func (s *cardSet) memBytes() int {
	n := 8*cap(s.base.keys) + s.base.ids.bytes() + 4*cap(s.base.dir) + 24*len(s.active)
	for _, l := range s.frozen {
		n += 12 * len(l.keys)
	}
	return n
}

// cardView is an immutable view of the card set: a snapshot's, or a
// reader's under the FSM's read lock.
type cardView struct {
	base    *cardBase
	layers  []*cardLayer // oldest first; the newest may be the active map, sorted
	batches []Entry
	count   int
}

// viewLocked returns a view of s. With freeze (the caller holds the write
// lock) the active map is frozen first so the view is O(1) to keep;
// otherwise the keys of the active map above after are copied.
func (s *cardSet) viewLocked(after uint64, freeze bool) cardView {
	if freeze {
		s.freezeLocked()
	}
	v := cardView{base: s.base, layers: s.frozen, batches: s.batches[:len(s.batches):len(s.batches)], count: s.count}
	if len(s.active) > 0 {
		l := &cardLayer{}
		for k := range s.active {
			if k > after {
				l.keys = append(l.keys, k)
			}
		}
		slices.Sort(l.keys)
		l.ids = make([]uint32, len(l.keys))
		for i, k := range l.keys {
			l.ids[i] = s.active[k]
		}
		v.layers = append(v.layers[:len(v.layers):len(v.layers)], l)
	}
	return v
}

// each calls fn for each blacklisted key greater than after, in key order,
// until fn returns false.
func (v *cardView) each(after uint64, fn func(k uint64, b uint32) bool) {
	if after == ^uint64(0) {
		return
	}
	// Sources: the base (index -1) and each layer; newest wins on ties.
	bi := v.base.lowerBound(after + 1)
	pos := make([]int, len(v.layers))
	for i, l := range v.layers {
		pos[i] = l.lowerBound(after + 1)
	}
	for {
		var min uint64
		found := false
		if bi < len(v.base.keys) {
			min, found = v.base.keys[bi], true
		}
		for i, l := range v.layers {
			if pos[i] < len(l.keys) && (!found || l.keys[pos[i]] < min) {
				min, found = l.keys[pos[i]], true
			}
		}
		if !found {
			return
		}
		id, present := uint32(0), false
		if bi < len(v.base.keys) && v.base.keys[bi] == min {
			id, present = v.base.ids.get(bi), true
			bi++
		}
		for i, l := range v.layers {
			if pos[i] < len(l.keys) && l.keys[pos[i]] == min {
				id = l.ids[pos[i]]
				present = id != tombstone
				pos[i]++
			}
		}
		if present && !fn(min, id) {
			return
		}
	}
}
