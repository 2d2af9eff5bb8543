package vip

import "context"

// Effector changes the node's network: the manager's hands. Every method
// is idempotent. Netlink is the real one; tests of the manager use fakes.
type Effector interface {
	// Add puts the VIP on the interface; already there is success.
	Add(ctx context.Context) error
	// Remove takes the VIP off the interface; already gone is success.
	Remove(ctx context.Context) error
	// Announce tells the segment that the VIP is at this node's MAC:
	// gratuitous ARP, request and reply forms, for IPv4; an unsolicited
	// neighbour advertisement with the override flag for IPv6. It
	// returns an error wrapping ErrVanished, and sends nothing, if the
	// address is not on the interface.
	Announce(ctx context.Context) error
}
