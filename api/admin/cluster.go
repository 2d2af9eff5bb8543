package admin

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"net/http"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/cluster/raftstore"
	"github.com/samrack/samrack/cluster/state"
)

// Cluster endpoints and forwarding.
//
// A write sent to a follower is forwarded by the follower to the leader's
// admin API (the appliance does that in front of this handler), over
// mutual TLS with the follower's node certificate, with the caller's
// client certificate in the ForwardedCertHeader. The leader believes that
// header only when the TLS peer is a node certificate of the installation
// CA of a node of the cluster (Server.IsNode): a node saw the caller prove
// the certificate's key in its own handshake. The forwarded certificate
// then goes through exactly the checks of a direct caller (chain, operator
// or admin, the identity in the state, revoked, serial, role), and the
// audit actor is that operator. Anyone else sending the header is refused.
const (
	ForwardedCertHeader = "Samrack-Forwarded-Cert" // base64 DER of the caller's leaf certificate
	ForwardedNodeHeader = "Samrack-Forwarded-Node" // the forwarding node's ID (information only)
	// ConsistentHeader on a GET asks for a linearizable read: the answer
	// comes from the leader after a raft barrier.
	ConsistentHeader = "Samrack-Consistent"
	// SnapshotType is the body of POST /v1/cluster/snapshot.
	SnapshotType = "application/vnd.samrack.snapshot"
)

// Cluster is what the admin API needs of the raft cluster.
type Cluster interface {
	Members(ctx context.Context) ([]Member, error)
	IssueToken(ctx context.Context, ttl time.Duration, by string) (token string, expires time.Time, err error)
	Remove(ctx context.Context, id, by string) error
	TransferLeader(ctx context.Context, id string) (newLeader string, err error)
	SaveSnapshot(w io.Writer) error
	RestoreSnapshot(ctx context.Context, r io.Reader) error
}

// Member is one node of the cluster as `samctl cluster members` shows it.
type Member struct {
	ID           string    `json:"id"`
	Raft         string    `json:"raft"`
	Admin        string    `json:"admin,omitempty"`
	Reader       string    `json:"reader,omitempty"`
	Role         string    `json:"role"`             // leader, follower, non-voter
	State        string    `json:"state,omitempty"`  // the node's own raft state, when it answered
	LastContact  string    `json:"last_contact"`     // since it last heard the leader ("-" on the leader, "unreachable")
	AppliedIndex uint64    `json:"applied_index"`    // 0 when it did not answer
	SlotsUp      int       `json:"slots_in_service"` // from the replicated inventory
	Slots        int       `json:"slots"`            // idem
	Local        bool      `json:"local,omitempty"`  // the node that answered
	Error        string    `json:"error,omitempty"`  // why it did not answer
	Checked      time.Time `json:"checked,omitzero"` // when it answered
}

// Token is the answer of POST /v1/cluster/tokens.
type Token struct {
	Token   string    `json:"token"`
	Expires time.Time `json:"expires"`
}

// TokenRequest is the body of POST /v1/cluster/tokens.
type TokenRequest struct {
	TTL string `json:"ttl,omitempty"` // Go duration; default 15m, at most 24h
}

// TransferRequest is the body of POST /v1/cluster/transfer-leader.
type TransferRequest struct {
	ID string `json:"id,omitempty"` // empty: the most up-to-date follower
}

// NotLeader is the body of a 503 answer of a node that could not reach the
// leader for a write (or a consistent read): the leader's ID and admin URL
// when known, which samctl then asks itself.
type NotLeader struct {
	Error       string `json:"error"`
	NotLeader   bool   `json:"not_leader"`
	LeaderID    string `json:"leader_id,omitempty"`
	LeaderAdmin string `json:"leader_admin,omitempty"`
}

// Default and maximum lifetime of a join token.
const (
	DefaultTokenTTL = 15 * time.Minute
	MaxTokenTTL     = 24 * time.Hour
)

func (s *Server) clusterRoutes() []route {
	const v, a = state.RoleViewer, state.RoleAdmin
	return []route{
		{"GET /v1/cluster/members", v, "", s.members},
		{"GET /v1/inventory", v, "", s.inventory},
		{"POST /v1/cluster/tokens", a, "", s.issueToken},
		{"DELETE /v1/cluster/members/{id}", a, "", s.removeMember},
		{"POST /v1/cluster/transfer-leader", a, "", s.transferLeader},
		{"GET /v1/cluster/snapshot", a, "", s.saveSnapshot},
		{"POST /v1/cluster/snapshot", a, SnapshotType, s.restoreSnapshot},
		{"GET /v1/cluster/digest", v, "", s.digest},
	}
}

// Digester is an optional capability of a Cluster: the digest of this
// node's copy of the replicated state, equal on nodes that applied the
// same commands (GET /v1/cluster/digest, for checks that the replicas
// converged).
type Digester interface {
	StateDigest() (Digest, error)
}

// Digest is the answer of GET /v1/cluster/digest.
type Digest struct {
	Node         string `json:"node"`
	AppliedIndex uint64 `json:"applied_index"` // raft's applied index when the digest was taken
	SHA256       string `json:"sha256"`        // hex of the SHA-256 of the state's snapshot
}

func (s *Server) digest(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cluster()
	if err != nil {
		return err
	}
	d, ok := c.(Digester)
	if !ok {
		return errorf(http.StatusNotFound, "this appliance has no state digest")
	}
	out, err := d.StateDigest()
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) cluster() (Cluster, error) {
	if s.Cluster == nil {
		return nil, errorf(http.StatusNotFound, "this appliance runs without cluster support")
	}
	return s.Cluster, nil
}

func (s *Server) members(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cluster()
	if err != nil {
		return err
	}
	ms, err := c.Members(r.Context())
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, ms)
}

// inventory answers the replicated inventory: every appliance's slots.
func (s *Server) inventory(w http.ResponseWriter, r *http.Request) error {
	out := s.State.Slots()
	if out == nil {
		out = []state.Slot{}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) issueToken(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cluster()
	if err != nil {
		return err
	}
	var req TokenRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	ttl := DefaultTokenTTL
	if req.TTL != "" {
		if ttl, err = time.ParseDuration(req.TTL); err != nil || ttl <= 0 || ttl > MaxTokenTTL {
			return errorf(http.StatusBadRequest, "ttl %q: want a duration up to %v, e.g. 15m", req.TTL, MaxTokenTTL)
		}
	}
	tok, exp, err := c.IssueToken(r.Context(), ttl, s.actor(r))
	if err != nil {
		return err
	}
	id := tok
	if len(id) > 21 {
		id = id[5:21] // "srj1.<id>.": never the secret
	}
	s.record(r, audit.Event{Kind: "cluster.token", Detail: "join token " + id + " until " + exp.Format(time.RFC3339)})
	return writeJSON(w, http.StatusCreated, Token{Token: tok, Expires: exp})
}

func (s *Server) removeMember(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cluster()
	if err != nil {
		return err
	}
	id := r.PathValue("id")
	if err := c.Remove(r.Context(), id, s.actor(r)); err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "cluster.remove", Detail: "node " + id})
	return writeJSON(w, http.StatusOK, map[string]string{"removed": id})
}

func (s *Server) transferLeader(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cluster()
	if err != nil {
		return err
	}
	var req TransferRequest
	if err := readJSON(r, &req); err != nil {
		return err
	}
	leader, err := c.TransferLeader(r.Context(), req.ID)
	if err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "cluster.transfer-leader", Detail: "to " + leader})
	return writeJSON(w, http.StatusOK, map[string]string{"leader": leader})
}

func (s *Server) saveSnapshot(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cluster()
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", SnapshotType)
	s.record(r, audit.Event{Kind: "cluster.snapshot.save"})
	return c.SaveSnapshot(w)
}

func (s *Server) restoreSnapshot(w http.ResponseWriter, r *http.Request) error {
	c, err := s.cluster()
	if err != nil {
		return err
	}
	if err := c.RestoreSnapshot(r.Context(), r.Body); err != nil {
		if errors.Is(err, state.ErrBadSnapshot) {
			s.record(r, audit.Event{Kind: "cluster.snapshot.restore", Detail: "refused: " + err.Error()})
			return errorf(http.StatusBadRequest, "%v (nothing was changed)", err)
		}
		return err
	}
	s.record(r, audit.Event{Kind: "cluster.snapshot.restore"})
	return writeJSON(w, http.StatusOK, map[string]string{"restored": "ok"})
}

// forwardedLeaf returns the caller's certificate of a request forwarded by
// a node, nil if the request was not forwarded, or an error if the header
// comes from anything but a node of this cluster.
func (s *Server) forwardedLeaf(r *http.Request) (*x509.Certificate, error) {
	h := r.Header.Get(ForwardedCertHeader)
	if h == "" {
		return nil, nil
	}
	peer := r.TLS.PeerCertificates[0]
	if _, err := peer.Verify(x509.VerifyOptions{Roots: s.ClientCAs, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: s.now()}); err != nil {
		return nil, errorf(http.StatusUnauthorized, "a forwarded identity is only accepted from a node of this cluster: %v", err)
	}
	node, ok := raftstore.NodeID(peer)
	if !ok || s.IsNode == nil || !s.IsNode(node) {
		return nil, errorf(http.StatusUnauthorized, "a forwarded identity is only accepted from a node of this cluster (%q is not)", peer.Subject.CommonName)
	}
	der, err := base64.StdEncoding.DecodeString(h)
	if err != nil || len(der) > 16<<10 {
		return nil, errorf(http.StatusBadRequest, "bad %s header", ForwardedCertHeader)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, errorf(http.StatusBadRequest, "bad %s header: %v", ForwardedCertHeader, err)
	}
	return leaf, nil
}
