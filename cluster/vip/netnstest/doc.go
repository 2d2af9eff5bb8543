// Package netnstest builds network-namespace labs for tests that run the
// VIP on a real kernel stack: a switch namespace with a bridge, node
// namespaces and a reader namespace, each joined to the bridge by a veth
// pair whose inner end is eth0. Addresses are 198.51.100.0/24 (TEST-NET-2)
// or 2001:db8:5a::/64 inside those namespaces only: node i (from 0) has
// .1(i+1), the reader .99.
//
// It also samples which node namespaces hold the VIP (to bound double
// ownership), dials from inside a namespace, and re-executes the test
// binary inside one. Linux only; the tests need root and skip without it
// (fail under CI=true).
package netnstest
