package vip

import (
	"fmt"
	"net/netip"
	"strings"
)

// Config names the virtual IP and the interface that carries it: the
// appliance's --vip and --vip-interface flags (vip: and vip-interface: in
// its config file).
type Config struct {
	// Prefix is the address with the prefix length it gets on the
	// interface, e.g. 192.0.2.10/24. The length matters for the route the
	// kernel adds with it; the address is what readers connect to.
	Prefix netip.Prefix
	// Interface is the Linux interface name, e.g. eth0.
	Interface string
}

// Addr is the virtual IP.
func (c Config) Addr() netip.Addr { return c.Prefix.Addr() }

// String is "192.0.2.10/24 on eth0".
func (c Config) String() string { return c.Prefix.String() + " on " + c.Interface }

// maxIfName is IFNAMSIZ less the terminating NUL.
const maxIfName = 15

// Parse validates the --vip and --vip-interface values. The address must
// be a unicast IPv4 or IPv6 address written with its prefix length
// (192.0.2.10/24); not the network or broadcast address of an IPv4 prefix
// shorter than /31, not loopback, multicast, unspecified or link-local,
// and without an IPv6 zone. The interface name must be one Linux accepts
// (1–15 bytes, no '/', ':', whitespace, not "." or ".."); whether it
// exists is checked when the effector opens it.
func Parse(cidr, iface string) (Config, error) {
	if len(cidr) > 64 {
		return Config{}, fmt.Errorf("%w: %d bytes is too long", ErrBadVIP, len(cidr))
	}
	p, err := netip.ParsePrefix(strings.TrimSpace(cidr))
	if err != nil {
		if a, aerr := netip.ParseAddr(strings.TrimSpace(cidr)); aerr == nil && a.Zone() == "" {
			return Config{}, fmt.Errorf("%w: %s has no prefix length (write e.g. %s/24)", ErrBadVIP, a, a)
		}
		return Config{}, fmt.Errorf("%w: %q: %v", ErrBadVIP, cidr, err)
	}
	a := p.Addr()
	switch {
	case a.Is4In6():
		return Config{}, fmt.Errorf("%w: %s: write an IPv4 address as IPv4", ErrBadVIP, p)
	case a.IsUnspecified(), a.IsLoopback(), a.IsMulticast(), a.IsLinkLocalUnicast(),
		a.IsInterfaceLocalMulticast(), a.IsLinkLocalMulticast():
		return Config{}, fmt.Errorf("%w: %s is not a routable unicast address", ErrBadVIP, a)
	case a.Is4() && a == netip.AddrFrom4([4]byte{255, 255, 255, 255}):
		return Config{}, fmt.Errorf("%w: %s is the broadcast address", ErrBadVIP, a)
	}
	if a.Is4() && p.Bits() < 31 {
		net := p.Masked().Addr()
		if a == net {
			return Config{}, fmt.Errorf("%w: %s is the network address of %s", ErrBadVIP, a, p.Masked())
		}
		if a == lastAddr(p) {
			return Config{}, fmt.Errorf("%w: %s is the broadcast address of %s", ErrBadVIP, a, p.Masked())
		}
	}
	if err := checkIfName(iface); err != nil {
		return Config{}, err
	}
	return Config{Prefix: p, Interface: iface}, nil
}

// lastAddr is the highest address of the IPv4 prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	b := p.Masked().Addr().As4()
	host := uint32(1)<<(32-p.Bits()) - 1
	v := uint32(b[0])<<24 | uint32(b[1])<<16 | uint32(b[2])<<8 | uint32(b[3]) | host
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

// checkIfName applies the kernel's dev_valid_name rules.
func checkIfName(s string) error {
	if s == "" {
		return fmt.Errorf("%w: empty (give --vip-interface)", ErrBadInterface)
	}
	if len(s) > maxIfName {
		return fmt.Errorf("%w: %q is longer than %d bytes", ErrBadInterface, s, maxIfName)
	}
	if s == "." || s == ".." {
		return fmt.Errorf("%w: %q", ErrBadInterface, s)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '/' || c == ':' || c <= ' ' || c >= 0x7f {
			return fmt.Errorf("%w: %q has a '/', ':', space or non-ASCII byte", ErrBadInterface, s)
		}
	}
	return nil
}
