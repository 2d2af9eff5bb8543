// Package vip keeps the appliance's virtual IP (--vip 192.0.2.10/24
// --vip-interface eth0) on the raft leader, and only there, so that ID-card
// readers configured with one address always reach the node that can
// answer them.
//
// # Pieces
//
//   - machine (machine.go): the pure ownership state machine. Events in —
//     start, leadership gained (after a barrier), leadership lost, quorum
//     contact at time T, tick, the results of its actions, stop — and
//     actions out: add, remove, announce, step down (with a reason),
//     transfer. Its clock is the events' timestamps. Golden scenarios in
//     testdata/*.txt, refreshed with go test -run TestScenarios -rewrite.
//   - Netlink (netlink_linux.go), the Effector: adds and removes the
//     address with rtnetlink (idempotent: RTM_NEWADDR with NLM_F_REPLACE;
//     "no such address" on delete is success; IPv6 addresses get
//     IFA_F_NODAD) and announces it: for IPv4 two gratuitous ARP frames
//     written on an AF_PACKET socket, the request form of RFC 5227 §3
//     (sender IP = target IP = VIP, target MAC zero) and the reply form
//     (target MAC = own MAC, as arping -A); for IPv6 an unsolicited
//     neighbour advertisement (RFC 4861 §7.2.6, Override set, target
//     link-layer address option) to ff02::1 from the VIP itself.
//   - Manager (manager.go): owns the goroutine that feeds the machine from
//     a caller-owned Leadership (raft adapted to it) and runs its actions
//     through an Effector.
//   - Parse (config.go): validation of the --vip and --vip-interface values.
//
// # Ownership
//
// At Start the manager removes the VIP (a stale one left by a crash). When
// LeaderCh says this node leads, it runs Barrier so that its state is
// current, then adds the address and announces it 5 times 500 ms apart,
// then every 10 s (Options.Burst, BurstInterval, Refresh). A reader's ARP
// entry keeps the old owner's MAC for 20–50 s otherwise; a gratuitous ARP
// moves it at once. When LeaderCh says leadership is lost, the address is
// removed at once. Each announcement first checks that the address is
// still there; one that vanished (an operator's ip addr flush, a DHCP
// client, IPv6 addresses lost with the link) is added again and the burst
// starts over. Close (or the end of Start's context) is a graceful
// stop: the address is removed first, then leadership is transferred
// (raft's LeadershipTransfer), so that the successor is elected at once
// instead of after a heartbeat timeout, and there is never a moment with
// two owners.
//
// # Fencing
//
// The guarantee that two nodes do not both answer for the VIP for longer
// than the leader lease rests on raft's LeaderLeaseTimeout (Leadership's
// LeaseTimeout):
//
//   - raft: a leader that has not heard from a quorum within
//     LeaderLeaseTimeout steps down (hashicorp/raft's checkLeaderLease);
//     LeaderCh then says false and the manager removes the VIP at once.
//   - the manager's own check: it asks Leadership.QuorumContact when the
//     lease of the last contact runs out, and removes the VIP once that
//     contact is LeaseTimeout − Margin old (Margin defaults to a fifth of
//     the lease, room for the netlink call). While it still leads and
//     contact comes back, it adds the VIP again.
//
// Whichever comes first drops the VIP: within LeaderLeaseTimeout of the
// last quorum contact C. Nobody else can take it earlier: hashicorp/raft
// requires LeaderLeaseTimeout ≤ HeartbeatTimeout, a follower that heard the
// leader at h ≥ C (QuorumContact must be the start of a round that a
// quorum acknowledged, e.g. of a VerifyLeader that passed) votes for no
// other candidate before h + HeartbeatTimeout, a new leader needs a vote
// from that quorum, and it runs a Barrier before adding the address. The
// bound measures durations on each node's monotonic clock; it needs no
// synchronised clocks, only rates that agree to better than Margin over a
// lease.
//
// A node that cannot remove its VIP (netlink error) steps down from
// leadership, logs why at error level ("STEPPING DOWN"), and keeps
// retrying the removal every Options.Retry. A leader that fails to add the
// VIP MaxAddFailures times in a row steps down too, so that a node that can
// serve it takes over.
//
// # Anchors
//
// keepalived's VRRP declares the master down after ~3.5 s (3 × advert
// interval + skew); kube-vip's former raft mode took ~3 s. Here a handover
// takes raft's election plus a barrier plus milliseconds for the address
// and the gratuitous ARP: BenchmarkHandover reports handover-ms, from
// leadership gained to a reader in another namespace reaching the VIP on
// the new owner's MAC.
//
// # Tests
//
// netns_linux_test.go builds, as root, a switch namespace with a bridge,
// three appliance namespaces and a reader namespace joined to it by veth
// pairs (198.51.100.0/24 inside them only), runs each manager in a child
// process of the test binary that entered its namespace, drives their
// leadership by hand, cuts links with ip link set down, and samples every
// 50 ms which namespaces hold the VIP. It skips when not root or without
// namespaces, and fails instead under CI=true.
package vip
