package host_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/samrack/samrack/appliance/dispatch/host"
	"github.com/samrack/samrack/appliance/dispatch/host/hosttest"
	"github.com/samrack/samrack/cluster/link"
	"github.com/samrack/samrack/cluster/link/linktest"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/samtest/leaktest"
)

// busyPool has no idle SAM.
type busyPool struct{ tries atomic.Int32 }

func (p *busyPool) Lease(context.Context, []ga467.SAMID) (host.Lease, error) {
	p.tries.Add(1)
	return nil, &host.BusyError{RetryAfter: time.Second}
}

// appliance is one node of a three-appliance test cluster.
type appliance struct {
	local  *host.Local
	server *host.Server
	counts *host.Counts
	node   *linktest.Node
}

func cluster(t *testing.T, pools map[string]host.Pool) map[string]*appliance {
	apps := map[string]*appliance{}
	var ids []string
	for id, p := range pools {
		a := &appliance{local: host.New(host.Config{Pool: p, HashCard: func([8]byte) string { return "h" }, IdleTimeout: time.Hour}), counts: &host.Counts{}}
		t.Cleanup(a.local.Close)
		a.server = host.NewServer(a.local)
		a.server.Counts = a.counts
		t.Cleanup(a.server.Close)
		apps[id] = a
		ids = append(ids, id)
	}
	slices.Sort(ids)
	nodes := linktest.Mesh(t, linktest.NewCA(t), linktest.NewMembers(ids...), func(id string) link.Config {
		return link.Config{Handle: apps[id].server.Handle, Down: apps[id].server.Down}
	}, ids...)
	for id, n := range nodes {
		apps[id].node = n
	}
	return apps
}

func (a *appliance) spread(apps map[string]*appliance, self string) *host.Spread {
	return &host.Spread{Self: self, Local: a.local, Counts: a.counts, TryWait: 2 * time.Second,
		Peer: func(n string) host.Host {
			if apps[n] == nil {
				return nil
			}
			return host.NewRemote(a.node.Link, n)
		}}
}

// TestSpreadDrainedEntry: the entry appliance a has no idle SAM; b's
// last count says idle but it refuses (its SAMs went busy since); c
// has one. Counts travel by Announce over the link. The read runs on c,
// whole; then c's link dies mid-session: the front end's Step fails
// with a link error (the front end answers the retryable 302) and c
// releases the lease at once.
func TestSpreadDrainedEntry(t *testing.T) {
	leaktest.Check(t)
	bPool := &busyPool{}
	released := make(chan error, 4)
	apps := cluster(t, map[string]host.Pool{"a": &busyPool{}, "b": bPool, "c": &notePool{Pool: hosttest.NewPool(), released: released}})
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{}, 2)
	for id, n := range map[string]host.Count{"b": {Idle: 5, Healthy: 5}, "c": {Idle: 1, Healthy: 1}} {
		go func() {
			defer func() { done <- struct{}{} }()
			host.Announce(ctx, apps[id].node.Link, func() []string { return []string{"a"} }, func() host.Count { return n }, nil, time.Millisecond, time.Hour)
		}()
	}
	t.Cleanup(func() { stop(); <-done; <-done })
	a := apps["a"]
	for deadline := time.After(10 * time.Second); len(a.counts.Snapshot()) < 2; {
		select {
		case <-a.counts.Changed():
		case <-deadline:
			t.Fatalf("counts %v", a.counts.Snapshot())
		}
	}
	if got := host.Order("a", nil, a.counts.Snapshot()); !slices.Equal(got, []string{"b", "c"}) {
		t.Fatalf("order %v", got)
	}
	sp := a.spread(apps, "a")
	hosttest.Read(t, sp)
	if err := <-released; err != nil {
		t.Fatalf("c's lease released with %v", err)
	}
	if bPool.tries.Load() == 0 {
		t.Fatal("b was never tried")
	}
	// c dies mid-session.
	s, _, err := sp.Place(context.Background(), &host.Placement{KeyShares: shares()})
	if err != nil {
		t.Fatal(err)
	}
	apps["c"].node.Link.Close()
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := s.Step(sctx, &host.Input{}); !errors.Is(err, host.ErrLink) && !errors.Is(err, host.ErrSessionGone) {
		t.Fatalf("Step on a dead peer: %v", err)
	}
	select {
	case err := <-released:
		if err == nil {
			t.Fatal("the dead link's lease released as clean")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("lease lost: never released")
	}
	if n := apps["c"].server.Leases(); n != 0 {
		t.Fatalf("%d leases left on c", n)
	}
	// With no idle SAM anywhere, the local queue answers busy (301).
	a.counts.Forget("b")
	a.counts.Forget("c")
	qctx, qcancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer qcancel()
	var busy *host.BusyError
	if _, _, err := sp.Place(qctx, &host.Placement{KeyShares: shares()}); !errors.As(err, &busy) {
		t.Fatalf("nothing idle: %v", err)
	}
}
