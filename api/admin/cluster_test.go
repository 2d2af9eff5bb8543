package admin_test

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/appliance/pki"
	"github.com/samrack/samrack/cluster/state"
)

type fakeCluster struct{}

func (fakeCluster) Members(context.Context) ([]admin.Member, error) {
	return []admin.Member{{ID: "node-1", Role: "leader"}}, nil
}
func (fakeCluster) IssueToken(_ context.Context, ttl time.Duration, by string) (string, time.Time, error) {
	return "srj1.0123456789abcdef.secret.pin", time.Now().Add(ttl), nil
}
func (fakeCluster) Remove(_ context.Context, id, by string) error { return nil }
func (fakeCluster) TransferLeader(context.Context, string) (string, error) {
	return "node-2", nil
}
func (fakeCluster) SaveSnapshot(w io.Writer) error {
	_, err := io.WriteString(w, "snapshot")
	return err
}
func (fakeCluster) StateDigest() (admin.Digest, error) {
	return admin.Digest{Node: "node-1", AppliedIndex: 7, SHA256: strings.Repeat("ab", 32)}, nil
}
func (fakeCluster) RestoreSnapshot(_ context.Context, r io.Reader) error {
	b, _ := io.ReadAll(r)
	if string(b) != "good" {
		return fmt.Errorf("%w: truncated", state.ErrBadSnapshot)
	}
	return nil
}

// nodeCert is a node certificate of the world's CA for id.
func nodeCert(t *testing.T, ca *pki.PKI, id string) tls.Certificate {
	t.Helper()
	key, csr, err := pki.NewNodeKey(id)
	if err != nil {
		t.Fatal(err)
	}
	certPEM, err := ca.IssueNode(id, csr)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := pki.SaveNode(dir, key, certPEM); err != nil {
		t.Fatal(err)
	}
	pair, err := tls.LoadX509KeyPair(dir+"/node.pem", dir+"/node-key.pem")
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

// TestForwardedIdentity: a node of the cluster may forward a caller's
// certificate, which then passes the checks of a direct caller; nobody else
// can.
func TestForwardedIdentity(t *testing.T) {
	e := newEnv(t)
	as := func(cert tls.Certificate) *http.Client {
		tr := &http.Transport{TLSClientConfig: &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: e.w.ca.Pool(), ServerName: pki.ServerName, Certificates: []tls.Certificate{cert}}}
		t.Cleanup(tr.CloseIdleConnections)
		return &http.Client{Transport: tr}
	}
	fwd := func(caller string) map[string]string {
		return map[string]string{admin.ForwardedCertHeader: base64.StdEncoding.EncodeToString(e.w.certs[caller].Leaf.Raw)}
	}
	addCard := request{method: "POST", path: "/v1/blacklist/cards", ctype: admin.JSONType, body: `{"cards":["4444444444444444"],"reason":"stolen"}`}
	node2, node3 := as(nodeCert(t, e.w.ca, "node-2")), as(nodeCert(t, e.w.ca, "node-3"))

	r := addCard
	r.header = fwd("operator")
	if status, msg := e.do(node2, r); status != 200 {
		t.Fatalf("forwarded operator: %d %s", status, msg)
	}
	if ev := e.lastEvent(); ev.Kind != "blacklist.card.add" || ev.Actor != "operator" {
		t.Fatalf("audit %+v: want the forwarded operator as actor", ev)
	}
	for _, tc := range []struct {
		name   string
		c      *http.Client
		caller string
		status int
		msg    string
	}{
		{"viewer's role still applies", node2, "viewer", 403, "has role viewer"},
		{"revoked stays revoked", node2, "revoked", 401, "revoked"},
		{"not a member", node3, "admin", 401, "only accepted from a node of this cluster"},
		{"an operator cannot forward", e.client("operator"), "admin", 401, "only accepted from a node"},
		{"a foreign CA's certificate", node2, "foreign-ca", 401, "not valid for this appliance"},
	} {
		r := addCard
		r.header = fwd(tc.caller)
		status, msg := e.do(tc.c, r)
		if status != tc.status || !strings.Contains(msg, tc.msg) {
			t.Errorf("%s: %d %q, want %d %q", tc.name, status, msg, tc.status, tc.msg)
		}
	}
	// A node certificate itself is no operator.
	if status, msg := e.do(node2, addCard); status != 403 {
		t.Fatalf("node as operator: %d %s", status, msg)
	}
	// Garbage in the header.
	r.header = map[string]string{admin.ForwardedCertHeader: "!!"}
	if status, _ := e.do(node2, r); status != 400 {
		t.Fatalf("bad header: %d", status)
	}
}

func TestRestoreRefusesBadSnapshot(t *testing.T) {
	e := newEnv(t)
	status, msg := e.do(e.client("admin"), request{method: "POST", path: "/v1/cluster/snapshot", ctype: admin.SnapshotType, body: "trunc"})
	if status != 400 || !strings.Contains(msg, "nothing was changed") {
		t.Fatalf("%d %q", status, msg)
	}
	status, msg = e.do(e.client("admin"), request{method: "POST", path: "/v1/cluster/tokens", ctype: admin.JSONType, body: `{"ttl":"48h"}`})
	if status != 400 || !strings.Contains(msg, "ttl") {
		t.Fatalf("%d %q", status, msg)
	}
}
