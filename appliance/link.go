package appliance

import (
	"context"
	"crypto/tls"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/samrack/samrack/appliance/dispatch/host"
	clink "github.com/samrack/samrack/cluster/link"
	"github.com/samrack/samrack/cluster/raftstore"
	"github.com/samrack/samrack/drivers/ga467"
)

// Placement across the cluster (cluster/link, host.Spread).
//
// Each appliance holds one link (mutual TLS 1.3 with node certificates,
// yamux) to every other member of the raft configuration, at the link
// address the peer wrote into the node registry. Over it:
//   - the dispatcher's host is a host.Spread over this appliance's
//     host.Local and a host.Remote per peer: the terminal→SAM table's
//     SAMs' appliances first (SAM ID → appliance from the replicated
//     inventory), then this appliance if it has an idle SAM, then the
//     peers by idle count, then the local bounded queue;
//   - a host.Server serves the peers' placements onto the local host;
//   - Announce streams this rack's idle/healthy counts to the peers, on
//     every lease and release (debounced) and every linkAnnounce.
const (
	linkRefresh  = 500 * time.Millisecond // peers re-read from the registry
	linkDebounce = 20 * time.Millisecond
	linkAnnounce = time.Second
)

// cluster placement state, built by setupLink.
type placement struct {
	link   *clink.Link
	server *host.Server
	local  *host.Local
	counts *host.Counts
	spread *host.Spread
	kick   chan struct{} // the rack's idle count may have changed

	mu    sync.Mutex
	peers map[string]string // node ID → link address, members only
	rems  map[string]*host.Remote
}

func (p *placement) changed() {
	select {
	case p.kick <- struct{}{}:
	default:
	}
}

// setupLink makes the local host, the link and the Spread the dispatcher
// places on; Run serves the link (runLink).
func (a *Appliance) setupLink(hcfg host.Config, nodeCert tls.Certificate) error {
	p := &placement{counts: &host.Counts{}, kick: make(chan struct{}, 1), peers: map[string]string{}, rems: map[string]*host.Remote{}}
	hcfg.Pool = kickPool{Pool: hcfg.Pool, p: p}
	p.local = host.New(hcfg)
	p.server = host.NewServer(p.local)
	p.server.Counts = p.counts
	var err error
	p.link, err = clink.New(clink.Config{
		ID:     a.id,
		TLS:    &tls.Config{Certificates: []tls.Certificate{nodeCert}, RootCAs: a.pki.Pool()},
		Member: a.isMember,
		Handle: p.server.Handle,
		Down:   p.server.Down,
		Logger: a.log.With(slog.String("part", "link")),
	})
	if err != nil {
		p.local.Close()
		return err
	}
	p.spread = &host.Spread{Self: a.id, Local: p.local, Counts: p.counts, Peer: p.peer, Owner: a.owner}
	a.place = p
	return nil
}

// isMember: id is in the raft configuration now.
func (a *Appliance) isMember(id string) bool {
	ms, err := a.store.Members()
	if err != nil {
		return false
	}
	return slices.ContainsFunc(ms, func(m raftstore.Member) bool { return m.ID == id })
}

// owner is the appliance whose rack holds SAM id, from the replicated
// inventory ("" if none does).
func (a *Appliance) owner(id ga467.SAMID) string {
	for _, s := range a.store.Slots() {
		if s.SAM == id {
			return s.Node
		}
	}
	return ""
}

func (p *placement) peer(n string) host.Host {
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.peers[n]; !ok {
		return nil
	}
	r := p.rems[n]
	if r == nil {
		r = host.NewRemote(p.link, n)
		p.rems[n] = r
	}
	return r
}

func (p *placement) peerIDs() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]string, 0, len(p.peers))
	for id := range p.peers {
		out = append(out, id)
	}
	slices.Sort(out)
	return out
}

// localCount is this rack's count for the peers.
func (a *Appliance) localCount() host.Count {
	st := a.rack.Stats()
	return host.Count{Idle: st.Idle, Healthy: st.Enabled}
}

// clusterHost is the dispatcher's host.
type clusterHost struct{ a *Appliance }

// Place implements host.Host: this appliance's own count is read fresh,
// then the Spread decides.
func (h clusterHost) Place(ctx context.Context, pl *host.Placement) (host.Session, *host.Placed, error) {
	h.a.place.counts.Set(h.a.id, h.a.localCount())
	return h.a.place.spread.Place(ctx, pl)
}

// linkAddrs are the members' link addresses from the registry, self
// excluded.
func (a *Appliance) linkAddrs() map[string]string {
	ms, err := a.store.Members()
	if err != nil {
		return nil
	}
	reg := a.registry()
	out := map[string]string{}
	for _, m := range ms {
		if m.ID == a.id {
			continue
		}
		if info, ok := reg[m.ID]; ok && info.Link != "" {
			out[m.ID] = info.Link
		}
	}
	return out
}

// runLink serves the link until ctx ends: the listener, the peers
// (re-read from the registry every linkRefresh) and the announcements.
// Then it releases every lease peers hold here and closes the link.
func (a *Appliance) runLink(ctx context.Context) error {
	p := a.place
	var wg sync.WaitGroup
	errc := make(chan error, 1)
	wg.Add(2)
	go func() {
		defer wg.Done()
		if err := p.link.Serve(a.raw[3]); err != nil && ctx.Err() == nil {
			errc <- err
		}
	}()
	go func() {
		defer wg.Done()
		host.Announce(ctx, p.link, p.peerIDs, a.localCount, p.kick, linkDebounce, linkAnnounce)
	}()
	t := time.NewTicker(linkRefresh)
	defer t.Stop()
	var err error
	for err == nil {
		addrs := a.linkAddrs()
		p.mu.Lock()
		same := mapsEqual(addrs, p.peers)
		if !same {
			p.peers = addrs
			for id := range p.rems {
				if _, ok := addrs[id]; !ok {
					delete(p.rems, id)
					p.counts.Forget(id)
				}
			}
		}
		p.mu.Unlock()
		if !same {
			p.link.SetPeers(addrs)
			p.changed() // announce to the new peers at once
		}
		select {
		case <-ctx.Done():
			err = ctx.Err()
		case err = <-errc:
		case <-t.C:
		}
	}
	p.server.Close()
	p.link.Close()
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	return err
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// closeLink stops what setupLink made (idempotent).
func (a *Appliance) closeLink() {
	if a.place == nil {
		return
	}
	a.place.server.Close()
	a.place.link.Close()
	a.place.local.Close()
}

// kickPool tells the announcer that the idle count may have changed on
// every lease and release.
type kickPool struct {
	host.Pool
	p *placement
}

func (k kickPool) Lease(ctx context.Context, prefer []ga467.SAMID) (host.Lease, error) {
	l, err := k.Pool.Lease(ctx, prefer)
	if err != nil {
		return nil, err
	}
	k.p.changed()
	return kickLease{Lease: l, p: k.p}, nil
}

type kickLease struct {
	host.Lease
	p *placement
}

func (l kickLease) Release(outcome error) {
	l.Lease.Release(outcome)
	l.p.changed()
}

// PlacementStats is the placement part of GET /v1/stats.
type PlacementStats struct {
	// Counts are the latest idle/healthy counts by appliance (this one's
	// as of its last placement, the peers' as announced).
	Counts map[string]host.Count `json:"counts"`
	// Peers are the link peers, with whether a connection is up.
	Peers map[string]bool `json:"peers"`
	// PeerLeases are the SAMs of this appliance leased to peers' sessions.
	PeerLeases int `json:"peer_leases"`
}

func (a *Appliance) placementStats() PlacementStats {
	p := a.place
	st := PlacementStats{Counts: p.counts.Snapshot(), Peers: map[string]bool{}, PeerLeases: p.server.Leases()}
	for _, id := range p.peerIDs() {
		st.Peers[id] = p.link.Connected(id)
	}
	return st
}
