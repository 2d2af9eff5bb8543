package host

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
)

// Placement across a cluster. Order is the pure rule; Spread is the Host
// that follows it over a Local and the Remotes of its peers.

// Count is what an appliance streams to its peers about its SAMs.
type Count struct {
	Idle    int // healthy SAMs free now
	Healthy int // healthy SAMs in all
}

// Order returns the appliances to try a session on, in order: the
// appliances of the terminal→SAM table's SAMs (affinity, in the table's
// order, even when their last count said busy: their SAM may be free by
// now), then this appliance (self) if it has an idle SAM, then the peers
// with an idle SAM, most idle first (ties by node ID). Each appears once.
// When every try is refused the session waits in self's bounded queue.
func Order(self string, affinity []string, counts map[string]Count) []string {
	var out []string
	seen := map[string]bool{}
	add := func(n string) {
		if n != "" && !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	for _, n := range affinity {
		add(n)
	}
	if counts[self].Idle > 0 {
		add(self)
	}
	var peers []string
	for n, c := range counts {
		if n != self && c.Idle > 0 {
			peers = append(peers, n)
		}
	}
	slices.SortFunc(peers, func(a, b string) int {
		if c := cmp.Compare(counts[b].Idle, counts[a].Idle); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	for _, n := range peers {
		add(n)
	}
	return out
}

// Counts is the table of the appliances' latest counts.
type Counts struct {
	mu      sync.Mutex
	m       map[string]Count
	changed chan struct{} // closed and replaced by Set
}

// Changed returns a channel closed at the next Set.
func (c *Counts) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.changed == nil {
		c.changed = make(chan struct{})
	}
	return c.changed
}

// Set records node's count.
func (c *Counts) Set(node string, n Count) {
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]Count{}
	}
	c.m[node] = n
	if c.changed != nil {
		close(c.changed)
		c.changed = nil
	}
	c.mu.Unlock()
}

// Forget drops node (its link went down: it has no SAM for us).
func (c *Counts) Forget(node string) { c.mu.Lock(); delete(c.m, node); c.mu.Unlock() }

// Snapshot copies the table.
func (c *Counts) Snapshot() map[string]Count {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := make(map[string]Count, len(c.m))
	for k, v := range c.m {
		m[k] = v
	}
	return m
}

// Spread places sessions across the cluster by Order. It implements Host.
type Spread struct {
	Self  string
	Local Host
	// Peer returns the host of a peer appliance (nil if unknown).
	Peer func(node string) Host
	// Counts are the latest idle counts, self's included.
	Counts *Counts
	// Owner returns the appliance whose rack holds a SAM ("" if none).
	Owner func(ga467.SAMID) string
	// TryWait bounds one try on an appliance that is not the last resort
	// (default 500 ms): a refused or unreachable one is skipped.
	TryWait time.Duration
}

var _ Host = (*Spread)(nil)

// Place implements Host: every appliance of Order in turn, each within
// TryWait; a Refusal (the reader's or handshake's fault) ends the
// placement, anything else (busy, a lost link, a closed host) moves on.
// Then the local queue, within ctx: busy there is the reader's 301.
func (s *Spread) Place(ctx context.Context, p *Placement) (Session, *Placed, error) {
	try := s.TryWait
	if try <= 0 {
		try = 500 * time.Millisecond
	}
	var affinity []string
	if s.Owner != nil {
		for _, id := range p.Prefer {
			affinity = append(affinity, s.Owner(id))
		}
	}
	for _, n := range Order(s.Self, affinity, s.Counts.Snapshot()) {
		h := s.Local
		if n != s.Self {
			if h = s.Peer(n); h == nil {
				continue
			}
		}
		tctx, cancel := context.WithTimeout(ctx, try)
		sess, placed, err := h.Place(tctx, p)
		cancel()
		var ref *Refusal
		switch {
		case err == nil:
			return sess, placed, nil
		case errors.As(err, &ref):
			return nil, nil, err
		case ctx.Err() != nil:
			return nil, nil, ctx.Err()
		}
	}
	return s.Local.Place(ctx, p)
}
