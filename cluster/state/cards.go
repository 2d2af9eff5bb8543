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

// cardSet is the in-memory card blacklist.
//
// The bulk of it is immutable once built: keys (sorted uint64 card serials,
// big-endian so the order is the byte order), ids (the batch of each key,
// 1, 2 or 4 bytes wide depending on how many batches there are) and dir (a
// directory over the key range that narrows a lookup to ~16 keys). Changes
// since the last rebuild sit in over (added or re-added keys, which shadow
// keys) and del (keys of the array that were removed). A rebuild folds them
// in and renumbers the batches in use; it is built aside and swapped, so
// snapshots can keep referring to the old arrays.
type cardSet struct {
	keys []uint64
	ids  idColumn
	dir  []uint32 // dir[i] = first index whose bucket ≥ i; len = buckets+1
	lo   uint64   // keys[0]
	sh   uint     // bucket of k = (k-lo)>>sh

	over map[uint64]uint32   // key → batch; added since the rebuild
	del  map[uint64]struct{} // keys of the array removed since; disjoint from over

	batches []Entry // append-only between rebuilds; snapshots share a prefix
	intern  map[Entry]uint32
	count   int
}

const dirStride = 16 // keys per directory bucket, on average

func newCardSet() *cardSet {
	return &cardSet{over: map[uint64]uint32{}, del: map[uint64]struct{}{}, intern: map[Entry]uint32{}}
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
func (s *cardSet) lowerBound(k uint64) int {
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

// find returns the index of k in keys.
func (s *cardSet) find(k uint64) (int, bool) {
	i := s.lowerBound(k)
	return i, i < len(s.keys) && s.keys[i] == k
}

// batchOf returns the batch of k if k is blacklisted.
func (s *cardSet) batchOf(k uint64) (uint32, bool) {
	if len(s.over) > 0 {
		if b, ok := s.over[k]; ok {
			return b, true
		}
	}
	if len(s.del) > 0 {
		if _, ok := s.del[k]; ok {
			return 0, false
		}
	}
	i, ok := s.find(k)
	if !ok {
		return 0, false
	}
	return s.ids.get(i), true
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

// needsRebuild reports whether adding extra more changes should rebuild.
func (s *cardSet) needsRebuild(extra int) bool {
	return len(s.over)+len(s.del)+extra > max(4096, len(s.keys)/32)
}

// add blacklists keys under batch id; small changes only (see rebuild).
func (s *cardSet) add(keys []uint64, id uint32) {
	for _, k := range keys {
		if _, ok := s.batchOf(k); !ok {
			s.count++
		}
		delete(s.del, k)
		s.over[k] = id
	}
}

func (s *cardSet) remove(keys []uint64) {
	for _, k := range keys {
		if _, ok := s.batchOf(k); !ok {
			continue
		}
		s.count--
		delete(s.over, k)
		if _, inArray := s.find(k); inArray {
			s.del[k] = struct{}{}
		}
	}
}

// rebuilt returns a new set equal to s with adds (under batch e) and
// removes applied, all folded into the arrays. s is not modified, so the
// caller may build while readers use s, then swap.
func (s *cardSet) rebuilt(adds []uint64, e Entry, removes []uint64) *cardSet {
	// Old batch ids, plus one more for e.
	old := append(s.batches[:len(s.batches):len(s.batches)], e)
	newID := uint32(len(old) - 1)

	// Pending changes in key order, this command's after the overflow's.
	type kv struct {
		k   uint64
		b   uint32 // old batch id
		seq uint32 // 0 overflow, 1 this command
	}
	pend := make([]kv, 0, len(s.over)+len(adds))
	for k, b := range s.over {
		pend = append(pend, kv{k, b, 0})
	}
	for _, k := range adds {
		pend = append(pend, kv{k, newID, 1})
	}
	slices.SortFunc(pend, func(a, b kv) int {
		switch {
		case a.k < b.k:
			return -1
		case a.k > b.k:
			return 1
		}
		return int(a.seq) - int(b.seq)
	})
	gone := make(map[uint64]struct{}, len(removes)) // this command's removals
	for _, k := range removes {
		gone[k] = struct{}{}
	}

	n := &cardSet{over: map[uint64]uint32{}, del: map[uint64]struct{}{}, intern: map[Entry]uint32{}}
	remap := make([]int32, len(old)) // old batch id → new, -1 if not yet used
	for i := range remap {
		remap[i] = -1
	}
	keys := make([]uint64, 0, len(s.keys)+len(pend))
	raw := make([]uint32, 0, cap(keys))
	emit := func(k uint64, b uint32) {
		if len(gone) > 0 {
			if _, ok := gone[k]; ok {
				return
			}
		}
		if remap[b] < 0 {
			remap[b] = int32(n.batch(old[b]))
		}
		keys = append(keys, k)
		raw = append(raw, uint32(remap[b]))
	}
	i, j := 0, 0
	for i < len(s.keys) || j < len(pend) {
		switch {
		case j == len(pend) || (i < len(s.keys) && s.keys[i] < pend[j].k):
			k := s.keys[i]
			if _, ok := s.del[k]; !ok {
				emit(k, s.ids.get(i))
			}
			i++
		default:
			k := pend[j].k
			for j+1 < len(pend) && pend[j+1].k == k {
				j++ // last write wins
			}
			emit(k, pend[j].b)
			j++
			if i < len(s.keys) && s.keys[i] == k {
				i++ // shadowed
			}
		}
	}
	n.setArrays(keys, raw)
	return n
}

// setArrays installs sorted unique keys and their batch ids.
func (s *cardSet) setArrays(keys []uint64, raw []uint32) {
	if len(keys) == 0 {
		keys = nil
	}
	s.keys = slices.Clip(keys)
	s.count = len(keys)
	s.ids = makeIDColumn(len(keys), uint32(max(len(s.batches)-1, 0)))
	for i, b := range raw {
		s.ids.set(i, b)
	}
	s.dir, s.lo, s.sh = nil, 0, 0
	if len(keys) == 0 {
		return
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
}

// memBytes estimates the memory held by the index.
func (s *cardSet) memBytes() int {
	return 8*cap(s.keys) + s.ids.bytes() + 4*cap(s.dir) + 24*(len(s.over)+len(s.del))
}

// each calls fn for each blacklisted key greater than after, in key order,
// until fn returns false.
func (s *cardSet) each(after uint64, fn func(k uint64, b uint32) bool) {
	if after == ^uint64(0) {
		return
	}
	var pend []uint64
	for k := range s.over {
		if k > after {
			pend = append(pend, k)
		}
	}
	slices.Sort(pend)
	i, j := s.lowerBound(after+1), 0
	for i < len(s.keys) || j < len(pend) {
		if j == len(pend) || (i < len(s.keys) && s.keys[i] < pend[j]) {
			k, b := s.keys[i], s.ids.get(i)
			i++
			if _, ok := s.del[k]; ok {
				continue
			}
			if !fn(k, b) {
				return
			}
			continue
		}
		k := pend[j]
		j++
		if i < len(s.keys) && s.keys[i] == k {
			i++ // shadowed by the overflow
		}
		if !fn(k, s.over[k]) {
			return
		}
	}
}
