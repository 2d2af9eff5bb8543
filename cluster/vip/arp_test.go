package vip

import (
	"bytes"
	"net"
	"net/netip"
	"testing"
)

// TestARPPayloadVector checks the ARP encoding against a byte-exact
// vector published elsewhere: github.com/mdlayher/arp's packet_test.go,
// "ARP request to ethernet broadcast, 6 byte hardware addresses".
func TestARPPayloadVector(t *testing.T) {
	want := []byte{
		0, 1,
		8, 0,
		6,
		4,
		0, 1,
		0, 0, 0, 0, 0, 0,
		192, 168, 1, 10,
		255, 255, 255, 255, 255, 255,
		192, 168, 1, 1,
	}
	got := arpPayload(arpRequest, net.HardwareAddr{0, 0, 0, 0, 0, 0}, netip.MustParseAddr("192.168.1.10"),
		broadcastMAC, netip.MustParseAddr("192.168.1.1"))
	if !bytes.Equal(got, want) {
		t.Fatalf("got  % x\nwant % x", got, want)
	}
}

// TestGARPFrames checks the two gratuitous ARP forms field by field
// (RFC 5227 §3 for the request, arping -A for the reply).
func TestGARPFrames(t *testing.T) {
	mac := net.HardwareAddr{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	f := garpFrames(mac, netip.MustParseAddr("192.0.2.10"))
	req := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, 0x08, 0x06, // Ethernet
		0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x01, // request
		0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, 192, 0, 2, 10, // sender
		0, 0, 0, 0, 0, 0, 192, 0, 2, 10, // target: zero MAC, same IP
	}
	req = append(req, make([]byte, 60-len(req))...)
	rep := []byte{
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, 0x08, 0x06,
		0x00, 0x01, 0x08, 0x00, 0x06, 0x04, 0x00, 0x02, // reply
		0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, 192, 0, 2, 10,
		0x02, 0x00, 0x5e, 0x10, 0x00, 0x01, 192, 0, 2, 10, // target: own MAC, same IP
	}
	rep = append(rep, make([]byte, 60-len(rep))...)
	if !bytes.Equal(f[0], req) {
		t.Errorf("request\ngot  % x\nwant % x", f[0], req)
	}
	if !bytes.Equal(f[1], rep) {
		t.Errorf("reply\ngot  % x\nwant % x", f[1], rep)
	}
}
