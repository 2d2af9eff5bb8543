// Package raftstoretest runs raft store clusters for tests and benchmarks
// of other packages: n nodes of raftstore.Store in this process over TCP
// and mutual TLS on loopback, with a CA made for the test. Not for
// production.
package raftstoretest

import (
	"context"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/samrack/samrack/cluster/raftstore"
	"github.com/samrack/samrack/cluster/testca"
)

// Options of a test cluster.
type Options struct {
	// SnapshotThreshold and TrailingLogs, if not zero, replace raft's
	// (a snapshot every SnapshotThreshold entries, keeping TrailingLogs).
	SnapshotThreshold, TrailingLogs uint64
	// Fast shortens raft's timeouts for an idle loopback; leave it off
	// when the nodes are loaded (a bulk import on a shared machine).
	Fast bool
	// Dir holds the nodes' data directories; default tb.TempDir().
	Dir string
	// Tune, if set, adjusts each node's raft configuration last.
	Tune func(*raft.Config)
}

// Node is a member of a test cluster.
type Node struct {
	ID, Addr, Dir string
	Store         *raftstore.Store
}

// Cluster is a test cluster; its nodes are closed when the test ends.
type Cluster struct {
	tb    testing.TB
	opt   Options
	ca    *testca.CA
	Nodes []*Node
}

// New starts n nodes; the first bootstraps the cluster and adds the others
// as voters.
func New(tb testing.TB, n int, opt Options) *Cluster {
	tb.Helper()
	if opt.Dir == "" {
		opt.Dir = tb.TempDir()
	}
	c := &Cluster{tb: tb, opt: opt}
	c.ca = testca.New(tb, "raftstoretest CA")
	tb.Cleanup(func() {
		for _, nd := range c.Nodes {
			nd.Store.Close()
		}
	})
	for i := range n {
		nd, err := c.start(fmt.Sprintf("n%d", i+1), i == 0)
		if err != nil {
			tb.Fatal(err)
		}
		c.Nodes = append(c.Nodes, nd)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Nodes[0].Store.WaitLeader(ctx); err != nil {
		tb.Fatal(err)
	}
	for _, nd := range c.Nodes[1:] {
		if err := c.Nodes[0].Store.AddVoter(ctx, nd.ID, nd.Addr); err != nil {
			tb.Fatalf("add %s: %v", nd.ID, err)
		}
	}
	return c
}

func (c *Cluster) start(id string, bootstrap bool) (*Node, error) {
	cfg := c.ca.TLS(c.tb, id, raftstore.NodeURI(id))
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	logger := hclog.New(&hclog.LoggerOptions{Name: id, Level: hclog.Error, Output: io.Discard})
	trans, err := raftstore.NewTLSTransport(ln, cfg, nil, logger)
	if err != nil {
		ln.Close()
		return nil, err
	}
	nd := &Node{ID: id, Addr: ln.Addr().String(), Dir: filepath.Join(c.opt.Dir, id)}
	opt := c.opt
	nd.Store, err = raftstore.Open(raftstore.Config{Dir: nd.Dir, ID: id, Transport: trans, Bootstrap: bootstrap, Logger: logger,
		ApplyTimeout: time.Minute,
		Tune: func(rc *raft.Config) {
			if opt.Fast {
				rc.HeartbeatTimeout = 400 * time.Millisecond
				rc.ElectionTimeout = 400 * time.Millisecond
				rc.LeaderLeaseTimeout = 200 * time.Millisecond
			}
			if opt.SnapshotThreshold > 0 {
				rc.SnapshotThreshold = opt.SnapshotThreshold
			}
			if opt.TrailingLogs > 0 {
				rc.TrailingLogs = opt.TrailingLogs
			}
			if opt.Tune != nil {
				opt.Tune(rc)
			}
		}})
	if err != nil {
		trans.Close()
		return nil, err
	}
	return nd, nil
}

// Leader returns the node that is leader, waiting up to 30 s for one.
func (c *Cluster) Leader() *Node {
	c.tb.Helper()
	deadline := time.Now().Add(30 * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for time.Now().Before(deadline) {
		for _, nd := range c.Nodes {
			if nd.Store.IsLeader() {
				return nd
			}
		}
		<-tick.C
	}
	c.tb.Fatal("no leader after 30 s")
	return nil
}

// Start starts a new node that is not yet a member (add it with the
// leader's AddVoter); it is closed when the test ends.
func (c *Cluster) Start(id string) *Node {
	c.tb.Helper()
	nd, err := c.start(id, false)
	if err != nil {
		c.tb.Fatal(err)
	}
	c.Nodes = append(c.Nodes, nd)
	return nd
}
