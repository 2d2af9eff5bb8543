package appliance

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"time"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/appliance/pki"
)

// Join tokens.
//
// `samctl cluster token` asks the leader for a token
//
//	srj1.<id>.<secret>.<ca-pin>
//
// id: 8 random bytes (hex) naming the token; secret: 16 random bytes (hex)
// of which only the SHA-256 is stored, in the replicated state, with its
// expiry and issuer (state.JoinToken); ca-pin: the hex SHA-256 of the CA's
// public key (pki.CAHash, as kubeadm's discovery-token-ca-cert-hash). A
// joining appliance checks the CA that the admin API it contacts sends
// against the pin before it sends anything, so a token cannot be phished
// by a machine in the middle; the leader consumes the token through raft
// (state.OpUseJoinToken), so two appliances cannot both use it.
const tokenPrefix = "srj1."

type joinToken struct{ id, secret, pin string }

func parseToken(s string) (joinToken, error) {
	bad := errors.New("join token: want srj1.<id>.<secret>.<ca-pin> as `samctl cluster token` prints it")
	if !strings.HasPrefix(s, tokenPrefix) {
		return joinToken{}, bad
	}
	parts := strings.Split(strings.TrimPrefix(strings.TrimSpace(s), tokenPrefix), ".")
	if len(parts) != 3 || len(parts[0]) != 16 || len(parts[1]) != 32 || len(parts[2]) != 64 {
		return joinToken{}, bad
	}
	for _, p := range parts {
		if _, err := hex.DecodeString(p); err != nil {
			return joinToken{}, bad
		}
	}
	return joinToken{id: parts[0], secret: parts[1], pin: "sha256:" + parts[2]}, nil
}

func newToken(pin string) (joinToken, string, error) {
	var b [24]byte
	if _, err := rand.Read(b[:]); err != nil {
		return joinToken{}, "", err
	}
	t := joinToken{id: hex.EncodeToString(b[:8]), secret: hex.EncodeToString(b[8:]), pin: pin}
	return t, tokenPrefix + t.id + "." + t.secret + "." + strings.TrimPrefix(pin, "sha256:"), nil
}

func secretHash(secret string) [32]byte { return sha256.Sum256([]byte(secret)) }

// JoinRequest is the body of POST /v1/cluster/join: no client certificate,
// authorised by the token.
type JoinRequest struct {
	TokenID string `json:"token_id"`
	Secret  string `json:"secret"`
	NodeID  string `json:"node_id"`
	CSR     []byte `json:"csr"` // DER
	Raft    string `json:"raft"`
	Admin   string `json:"admin"`
	Reader  string `json:"reader"`
}

// JoinResponse is its answer.
type JoinResponse struct {
	NodeCertPEM string     `json:"node_cert_pem"`
	Shared      pki.Shared `json:"shared"`
	LeaderID    string     `json:"leader_id"`
	LeaderAdmin string     `json:"leader_admin"`
}

// VoterResponse is the answer of POST /v1/cluster/voter.
type VoterResponse struct {
	Index uint64 `json:"index"` // the leader's last index once the node is a voter
}

// joinPhase1 asks the cluster at addr (a node's admin address) for a node
// certificate with the token and installs the shared PKI in dataDir/pki.
func joinPhase1(ctx context.Context, dataDir, addr string, tok joinToken, req JoinRequest) (*JoinResponse, error) {
	var pinErr error
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, InsecureSkipVerify: true, // the pin below is the check
		VerifyConnection: func(cs tls.ConnectionState) error {
			raw := make([][]byte, len(cs.PeerCertificates))
			for i, c := range cs.PeerCertificates {
				raw[i] = c.Raw
			}
			_, pinErr = pki.VerifyPinned(raw, tok.pin)
			return pinErr
		}}
	tr := &http.Transport{TLSClientConfig: cfg, TLSHandshakeTimeout: 10 * time.Second}
	defer tr.CloseIdleConnections()
	var out JoinResponse
	for {
		// A node without a leader (an election) answers not-leader: the
		// token was not looked at; ask again until ctx ends.
		err := postJSON(ctx, &http.Client{Transport: tr, Timeout: 60 * time.Second}, adminBase(addr)+"/v1/cluster/join", req, &out)
		if err == nil {
			break
		}
		if pinErr != nil {
			return nil, fmt.Errorf("join %s: %w", addr, pinErr)
		}
		var nl *notLeaderError
		if !errors.As(err, &nl) {
			return nil, fmt.Errorf("join %s: %w", addr, err)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("join %s: %w", addr, err)
		case <-time.After(250 * time.Millisecond):
		}
	}
	if err := pki.Install(filepath.Join(dataDir, "pki"), &out.Shared, tok.pin); err != nil {
		return nil, err
	}
	return &out, nil
}

func adminBase(addr string) string {
	if !strings.Contains(addr, "://") {
		addr = "https://" + addr
	}
	return strings.TrimRight(addr, "/")
}

// postJSON posts v as JSON and decodes the answer into out; an error
// answer becomes an *admin.Error, or a *notLeaderError naming the leader.
func postJSON(ctx context.Context, c *http.Client, url string, v, out any) error {
	body, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return nodeJSON(ctx, c, http.MethodPost, url, body, out)
}

// getJSON gets url and decodes the answer into out, with postJSON's errors.
func getJSON(ctx context.Context, c *http.Client, url string, out any) error {
	return nodeJSON(ctx, c, http.MethodGet, url, nil, out)
}

// nodeJSON is a request of one appliance to another's admin API (as the
// appliance's certificate names it) with a JSON body (if any) and answer.
func nodeJSON(ctx context.Context, c *http.Client, method, url string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", admin.JSONType)
	}
	req.Host = pki.ServerName
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode >= 300 {
		var e admin.NotLeader
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		if e.NotLeader {
			return &notLeaderError{e}
		}
		return &admin.Error{Status: resp.StatusCode, Msg: e.Error}
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(data, out)
}

type notLeaderError struct{ admin.NotLeader }

func (e *notLeaderError) Error() string { return e.NotLeader.Error }

// nodeClient is an HTTPS client presenting this node's certificate and
// trusting the installation CA (node-to-node calls and forwarding).
func nodeClient(cert tls.Certificate, pool *x509.CertPool) *http.Client {
	return &http.Client{Timeout: 5 * time.Minute, Transport: &http.Transport{
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{cert}, RootCAs: pool, ServerName: pki.ServerName},
		TLSHandshakeTimeout: 10 * time.Second, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute,
	}}
}

// joinPhase1 of New: a node key and request, the token, the answer
// installed (CA, bootstrap admin identity, node certificate).
func (a *Appliance) joinPhase1(raftAdv string) error {
	tok, err := parseToken(a.cfg.Token)
	if err != nil {
		return err
	}
	key, csr, err := pki.NewNodeKey(a.id)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := JoinRequest{TokenID: tok.id, Secret: tok.secret, NodeID: a.id, CSR: csr, Raft: raftAdv, Admin: a.AdminURL(), Reader: a.advertise()}
	resp, err := joinPhase1(ctx, a.cfg.DataDir, a.cfg.Join, tok, req)
	if err != nil {
		return err
	}
	if err := pki.SaveNode(filepath.Join(a.cfg.DataDir, "pki"), key, []byte(resp.NodeCertPEM)); err != nil {
		return err
	}
	a.joinResp = resp
	a.log.Info("joined: node certificate issued", "node", a.id, "leader", resp.LeaderID)
	return nil
}

// joinPhase2 of New: ask the leader to add this node as a voter (following
// not-leader answers), then wait until this node has applied the log up to
// where the leader was when it added it.
func (a *Appliance) joinPhase2() error {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	target := adminBase(a.cfg.Join)
	if a.joinResp != nil && a.joinResp.LeaderAdmin != "" {
		target = a.joinResp.LeaderAdmin
	}
	var vr VoterResponse
	for {
		err := postJSON(ctx, a.nodeHTTP, target+"/v1/cluster/voter", struct{}{}, &vr)
		if err == nil {
			break
		}
		var nl *notLeaderError
		if errors.As(err, &nl) && nl.LeaderAdmin != "" {
			target = nl.LeaderAdmin
		}
		var ae *admin.Error
		if errors.As(err, &ae) && ae.Status < 500 {
			return fmt.Errorf("appliance: join as a voter: %w", err)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("appliance: join as a voter: %w", err)
		case <-time.After(200 * time.Millisecond):
		}
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for a.store.AppliedIndex() < vr.Index {
		select {
		case <-ctx.Done():
			return fmt.Errorf("appliance: catching up with the leader (applied %d of %d): %w", a.store.AppliedIndex(), vr.Index, ctx.Err())
		case <-t.C:
		}
	}
	a.log.Info("joined the cluster as a voter", "node", a.id, "applied", a.store.AppliedIndex())
	return nil
}
