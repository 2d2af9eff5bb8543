package state

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// TestChangedBySorted: the sorted walk gives the per-key answer on sets
// built of a base, frozen layers with tombstones and an active map, for
// big commands with repeats, present and absent keys.
func TestChangedBySorted(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	key := func() uint64 { return rng.Uint64N(50_000) + 1 }
	for round := range 20 {
		s := newCardSet()
		for range 1 + rng.IntN(30) {
			keys := make([]uint64, 1+rng.IntN(3000))
			for i := range keys {
				keys[i] = key()
			}
			id := uint32(0)
			add := rng.IntN(4) != 0
			if !add {
				id = tombstone
			}
			s.applyLocked(keys, id, s.changedBy(slices.Clone(keys), add))
			if rng.IntN(5) == 0 {
				v := s.viewLocked(0, true)
				var ks []uint64
				var ids []uint32
				v.each(0, func(k uint64, b uint32) bool { ks, ids = append(ks, k), append(ids, b); return true })
				s.base, s.frozen = buildBase(ks, ids, 1), nil
			}
		}
		for range 10 {
			keys := make([]uint64, bigCommand+1+rng.IntN(5000))
			for i := range keys {
				keys[i] = key()
			}
			for _, add := range []bool{true, false} {
				want := 0
				seen := map[uint64]bool{}
				for _, k := range keys {
					if seen[k] {
						continue
					}
					seen[k] = true
					if _, ok := s.batchOf(k); ok != add {
						want++
					}
				}
				if got := s.changedBySorted(slices.Clone(keys), add); got != want {
					t.Fatalf("round %d, add %v: %d changed, want %d (%d layers, %d active)", round, add, got, want, len(s.frozen), len(s.active))
				}
			}
		}
	}
}

func TestLayerSeek(t *testing.T) {
	l := &cardLayer{keys: []uint64{2, 4, 6, 8, 10, 12, 14, 16, 18, 20}}
	for from := 0; from <= len(l.keys); from++ {
		for k := uint64(0); k <= 22; k++ {
			want := max(l.lowerBound(k), from)
			if got := l.seek(from, k); got != want {
				t.Fatalf("seek(%d, %d) = %d, want %d", from, k, got, want)
			}
		}
	}
}
