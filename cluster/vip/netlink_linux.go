package vip

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/mdlayher/ndp"
	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Netlink is the real Effector: it adds and removes the address with
// rtnetlink (github.com/vishvananda/netlink) and announces it with raw
// AF_PACKET frames (IPv4) or an ICMPv6 socket (IPv6, mdlayher/ndp). It
// needs CAP_NET_ADMIN and CAP_NET_RAW. It looks the interface up by name
// on every call, so an interface that is re-created keeps working.
type Netlink struct {
	cfg Config
}

var _ Effector = (*Netlink)(nil)

// NewNetlink checks that cfg's interface exists and has an Ethernet
// address, and returns the effector for it.
func NewNetlink(cfg Config) (*Netlink, error) {
	e := &Netlink{cfg: cfg}
	if _, err := e.link(); err != nil {
		return nil, err
	}
	return e, nil
}

func (e *Netlink) link() (netlink.Link, error) {
	l, err := netlink.LinkByName(e.cfg.Interface)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrNoInterface, e.cfg.Interface, err)
	}
	if len(l.Attrs().HardwareAddr) != 6 {
		return nil, fmt.Errorf("%w: %s has no Ethernet address", ErrNoInterface, e.cfg.Interface)
	}
	return l, nil
}

func (e *Netlink) addr() *netlink.Addr {
	p := e.cfg.Prefix
	a := &netlink.Addr{IPNet: &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}}
	if p.Addr().Is6() {
		// Usable at once: duplicate address detection would hold it
		// "tentative" for a second, and raft already decided the owner.
		a.Flags = unix.IFA_F_NODAD
	}
	return a
}

// Add is Effector.Add: RTM_NEWADDR with NLM_F_REPLACE, which succeeds
// whether or not the address is there.
func (e *Netlink) Add(ctx context.Context) error {
	l, err := e.link()
	if err != nil {
		return err
	}
	if err := netlink.AddrReplace(l, e.addr()); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrAdd, e.cfg, err)
	}
	return nil
}

// Remove is Effector.Remove: RTM_DELADDR; "no such address" is success.
func (e *Netlink) Remove(ctx context.Context) error {
	l, err := netlink.LinkByName(e.cfg.Interface)
	var nf netlink.LinkNotFoundError
	if errors.As(err, &nf) || errors.Is(err, unix.ENODEV) {
		return nil // no interface, no address
	}
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrRemove, e.cfg, err)
	}
	err = netlink.AddrDel(l, e.addr())
	if err == nil || errors.Is(err, unix.EADDRNOTAVAIL) || errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ESRCH) {
		return nil
	}
	return fmt.Errorf("%w: %s: %v", ErrRemove, e.cfg, err)
}

// Has reports whether the VIP is on the interface now.
func (e *Netlink) Has() (bool, error) {
	l, err := e.link()
	if err != nil {
		return false, err
	}
	return e.has(l)
}

func (e *Netlink) has(l netlink.Link) (bool, error) {
	fam := netlink.FAMILY_V4
	if e.cfg.Addr().Is6() {
		fam = netlink.FAMILY_V6
	}
	addrs, err := netlink.AddrList(l, fam)
	if err != nil {
		return false, err
	}
	for _, a := range addrs {
		if ip, ok := netip.AddrFromSlice(a.IP); ok && ip.Unmap() == e.cfg.Addr() {
			return true, nil
		}
	}
	return false, nil
}

// Announce is Effector.Announce.
func (e *Netlink) Announce(ctx context.Context) error {
	l, err := e.link()
	if err != nil {
		return err
	}
	if has, err := e.has(l); err != nil {
		return fmt.Errorf("vip: announce: list addresses: %w", err)
	} else if !has {
		return fmt.Errorf("%w: %s", ErrVanished, e.cfg)
	}
	if e.cfg.Addr().Is4() {
		return sendGARP(l.Attrs().Index, l.Attrs().HardwareAddr, e.cfg.Addr())
	}
	return sendUnsolicitedNA(e.cfg.Interface, l.Attrs().HardwareAddr, e.cfg.Addr())
}

// sendGARP writes both gratuitous ARP frames on the interface through an
// AF_PACKET socket. Its protocol is 0, so it receives nothing.
func sendGARP(ifindex int, mac net.HardwareAddr, ip netip.Addr) error {
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("vip: gratuitous ARP: AF_PACKET socket: %w", err)
	}
	defer unix.Close(fd)
	sa := &unix.SockaddrLinklayer{Protocol: htons(etherTypeARP), Ifindex: ifindex, Halen: 6}
	copy(sa.Addr[:], broadcastMAC)
	for _, f := range garpFrames(mac, ip) {
		if err := unix.Sendto(fd, f, 0, sa); err != nil {
			return fmt.Errorf("vip: gratuitous ARP for %s: %w", ip, err)
		}
	}
	return nil
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// sendUnsolicitedNA sends an unsolicited neighbour advertisement (RFC 4861
// §7.2.6) for ip to all nodes: Override set, Solicited clear, with the
// target link-layer address option, from ip itself.
func sendUnsolicitedNA(ifname string, mac net.HardwareAddr, ip netip.Addr) error {
	ifi, err := net.InterfaceByName(ifname)
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrNoInterface, ifname, err)
	}
	c, _, err := ndp.Listen(ifi, ndp.Addr(ip.String()))
	if err != nil {
		return fmt.Errorf("vip: neighbour advertisement: %w", err)
	}
	defer c.Close()
	na := &ndp.NeighborAdvertisement{
		Override:      true,
		TargetAddress: ip,
		Options:       []ndp.Option{&ndp.LinkLayerAddress{Direction: ndp.Target, Addr: mac}},
	}
	if err := c.WriteTo(na, nil, netip.IPv6LinkLocalAllNodes().WithZone(ifname)); err != nil {
		return fmt.Errorf("vip: neighbour advertisement for %s: %w", ip, err)
	}
	return nil
}
