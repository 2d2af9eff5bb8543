package state

import "slices"

// changedBySorted is changedBy for a big command (more than bigCommand
// keys): it sorts keys in place (their order means nothing to a command)
// and walks them in order, so that each frozen layer is searched from
// where the previous key was found (a galloping search) rather than from
// scratch: a 100,000-card chunk of a bulk import against 64 layers of
// 100,000 costs a few steps a layer instead of seventeen. Later sorts of
// the same keys (applyLocked, Local's persist) find them sorted.
func (s *cardSet) changedBySorted(keys []uint64, add bool) int {
	slices.Sort(keys)
	pos := make([]int, len(s.frozen))
	n := 0
	for i, k := range keys {
		if i > 0 && keys[i-1] == k {
			continue
		}
		present, found := false, false
		if len(s.active) > 0 {
			if b, ok := s.active[k]; ok {
				present, found = b != tombstone, true
			}
		}
		for j := len(s.frozen) - 1; j >= 0 && !found; j-- {
			l := s.frozen[j]
			p := l.seek(pos[j], k)
			pos[j] = p
			if p < len(l.keys) && l.keys[p] == k {
				present, found = l.ids[p] != tombstone, true
			}
		}
		if !found {
			_, present = s.base.get(k)
		}
		if present != add {
			n++
		}
	}
	return n
}

// seek returns the first index ≥ from whose key is ≥ k, galloping from
// from: the cost grows with the log of the distance, not of the layer.
func (l *cardLayer) seek(from int, k uint64) int {
	if from >= len(l.keys) || l.keys[from] >= k {
		return from
	}
	lo, step := from, 1 // l.keys[lo] < k
	hi := lo + step
	for hi < len(l.keys) && l.keys[hi] < k {
		lo = hi
		step *= 2
		hi = lo + step
	}
	hi = min(hi, len(l.keys))
	i, j := lo+1, hi
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
