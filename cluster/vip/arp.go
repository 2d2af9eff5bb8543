package vip

import (
	"encoding/binary"
	"net"
	"net/netip"
)

// ARP over Ethernet (RFC 826) as gratuitous ARP uses it (RFC 5227 §3,
// "ARP Announcement"; RFC 5944 §4.6 for the reply form).
const (
	etherTypeARP  = 0x0806
	etherTypeIPv4 = 0x0800
	arpHTEthernet = 1
	arpRequest    = 1
	arpReply      = 2
	arpLen        = 28 // payload of an Ethernet/IPv4 ARP packet
	ethHeaderLen  = 14
	ethMinFrame   = 60 // without the FCS; shorter frames are padded
)

var broadcastMAC = net.HardwareAddr{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// arpPayload encodes an Ethernet/IPv4 ARP packet (RFC 826): hardware type
// 1, protocol 0x0800, lengths 6 and 4, the operation, then sender and
// target hardware and protocol addresses.
func arpPayload(op uint16, sha net.HardwareAddr, spa netip.Addr, tha net.HardwareAddr, tpa netip.Addr) []byte {
	b := make([]byte, arpLen)
	binary.BigEndian.PutUint16(b[0:], arpHTEthernet)
	binary.BigEndian.PutUint16(b[2:], etherTypeIPv4)
	b[4], b[5] = 6, 4
	binary.BigEndian.PutUint16(b[6:], op)
	copy(b[8:14], sha)
	s := spa.As4()
	copy(b[14:18], s[:])
	copy(b[18:24], tha)
	t := tpa.As4()
	copy(b[24:28], t[:])
	return b
}

// garpFrames are the two gratuitous ARP frames that announce ip at mac,
// both to the Ethernet broadcast address and padded to the 60-byte
// minimum: the request form (RFC 5227's ARP Announcement: sender and
// target IP both ip, target hardware address zero) that every host takes,
// and the reply form (sender and target IP ip, target hardware address
// mac, as arping -A sends) for hosts and switches that only learn from
// replies.
func garpFrames(mac net.HardwareAddr, ip netip.Addr) [2][]byte {
	zero := make(net.HardwareAddr, 6)
	return [2][]byte{
		ethFrame(broadcastMAC, mac, etherTypeARP, arpPayload(arpRequest, mac, ip, zero, ip)),
		ethFrame(broadcastMAC, mac, etherTypeARP, arpPayload(arpReply, mac, ip, mac, ip)),
	}
}

// ethFrame is an Ethernet II frame without FCS, padded to 60 bytes.
func ethFrame(dst, src net.HardwareAddr, etherType uint16, payload []byte) []byte {
	n := max(ethHeaderLen+len(payload), ethMinFrame)
	b := make([]byte, n)
	copy(b[0:6], dst)
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], etherType)
	copy(b[ethHeaderLen:], payload)
	return b
}
