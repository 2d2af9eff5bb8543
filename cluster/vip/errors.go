package vip

import "errors"

// Errors of package vip.
var (
	// ErrBadVIP: the --vip value is not an address with a prefix length
	// (192.0.2.10/24, 2001:db8::10/64) fit to be a virtual IP.
	ErrBadVIP = errors.New("vip: bad virtual IP")
	// ErrBadInterface: the --vip-interface value is not a Linux interface
	// name.
	ErrBadInterface = errors.New("vip: bad interface name")
	// ErrNoInterface: the interface named by the config does not exist or
	// has no Ethernet address to announce.
	ErrNoInterface = errors.New("vip: no such interface")
	// ErrRemove: the address could not be removed. A leader steps down when
	// it sees this; the manager keeps retrying and logs at error level.
	ErrRemove = errors.New("vip: cannot remove the virtual IP")
	// ErrVanished: the address was found missing from the interface while
	// this node should hold it (an operator's ip addr flush, a DHCP client,
	// an IPv6 address lost with the link). Announce reports it; the manager
	// adds the address again.
	ErrVanished = errors.New("vip: the virtual IP vanished from the interface")
	// ErrAdd: the address could not be added.
	ErrAdd = errors.New("vip: cannot add the virtual IP")
	// ErrRunning: Start was called twice.
	ErrRunning = errors.New("vip: manager already started")
	// ErrUnsupported: the effector needs Linux (netlink, AF_PACKET).
	ErrUnsupported = errors.New("vip: not supported on this OS")
)
