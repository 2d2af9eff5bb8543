package vip_test

import (
	"context"
	"log"
	"time"

	"github.com/samrack/samrack/cluster/vip"
)

// raftLeadership stands for the appliance's adapter of *raft.Raft,
// raftstore.Leadership (cluster/raftstore/leadership.go): LeaderCh is fed
// from raft's NotifyCh, Barrier raft.Barrier(timeout).Error(),
// QuorumContact the start of the last raft.VerifyLeader() that passed (a
// goroutine the adapter owns runs one every LeaseTimeout/4 while leader),
// LeaseTimeout Config().LeaderLeaseTimeout and TransferLeadership
// raft.LeadershipTransfer().Error().
type raftLeadership struct{ ch chan bool }

func (r raftLeadership) LeaderCh() <-chan bool             { return r.ch }
func (r raftLeadership) Barrier(ctx context.Context) error { return nil }
func (r raftLeadership) QuorumContact() time.Time          { return time.Now() }
func (r raftLeadership) LeaseTimeout() time.Duration       { return 500 * time.Millisecond }
func (r raftLeadership) TransferLeadership() error         { return nil }

// The appliance's wiring: samrackd --vip 192.0.2.10/24 --vip-interface eth0.
func Example() {
	cfg, err := vip.Parse("192.0.2.10/24", "eth0")
	if err != nil {
		log.Fatal(err) // a clear message for the operator
	}
	eff, err := vip.NewNetlink(cfg)
	if err != nil {
		log.Printf("no VIP: %v", err) // e.g. no eth0 here
		return
	}
	m := vip.NewManager(raftLeadership{ch: make(chan bool, 1)}, eff, vip.Options{})
	if err := m.Start(context.Background()); err != nil {
		log.Fatal(err)
	}
	// … serve until shutdown, then: VIP removed, leadership transferred.
	if err := m.Close(); err != nil {
		log.Printf("VIP: %v", err)
	}
}
