package raftstore

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Node identity: a node certificate carries the URI SAN
//
//	samrack:node:<node-id>
//
// (an opaque URI: scheme "samrack", opaque part "node:<id>"), with the
// extended key usages serverAuth and clientAuth, issued by the
// installation's CA. <node-id> is the raft server ID of the appliance.
// Reader and admin certificates never carry it, so they cannot join raft.
const nodeURIPrefix = "node:"

// NodeURI is the URI SAN of node id's certificate.
func NodeURI(id string) *url.URL { return &url.URL{Scheme: "samrack", Opaque: nodeURIPrefix + id} }

// NodeID returns the node ID a certificate carries.
func NodeID(cert *x509.Certificate) (string, bool) {
	for _, u := range cert.URIs {
		if u.Scheme == "samrack" && strings.HasPrefix(u.Opaque, nodeURIPrefix) {
			if id := strings.TrimPrefix(u.Opaque, nodeURIPrefix); id != "" {
				return id, true
			}
		}
	}
	return "", false
}

// verifyNode checks the peer's chain against roots and its node identity.
// usage is the key usage the peer's role needs (serverAuth for the end
// that accepted, clientAuth for the end that dialed).
func verifyNode(cs tls.ConnectionState, roots *x509.CertPool, usage x509.ExtKeyUsage, now func() time.Time) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("raftstore: peer sent no certificate")
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now(), KeyUsages: []x509.ExtKeyUsage{usage}}); err != nil {
		return fmt.Errorf("raftstore: peer certificate: %w", err)
	}
	if _, ok := NodeID(leaf); !ok {
		return ErrNoNodeIdentity
	}
	return nil
}
