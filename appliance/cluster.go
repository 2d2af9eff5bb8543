package appliance

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/appliance/pki"
	"github.com/samrack/samrack/cluster/raftstore"
	"github.com/samrack/samrack/cluster/state"
)

// The cluster side of the admin API.
//
// Writes anywhere: a write (any method but GET and HEAD, except the slot
// actions, which act on this appliance's own hardware) that reaches a
// follower is forwarded to the leader's admin API by a reverse proxy over
// mutual TLS with this node's certificate, the caller's certificate in
// admin.ForwardedCertHeader (see api/admin/cluster.go for why the leader
// believes it). A GET with admin.ConsistentHeader is forwarded the same
// way and answered by the leader after a raft barrier. When no leader is
// known, or it cannot be reached, the answer is 503 with an
// admin.NotLeader naming the leader, which samctl follows. Forwarded
// requests are never forwarded again (no loops while leadership moves).
//
// Node endpoints (mutual TLS with a node certificate of a node in the
// registry, never forwarded, answered by the leader only):
//
//	POST /v1/cluster/join   a new node, authorised by a join token (no certificate)
//	POST /v1/cluster/voter  a node that joined asks to become a voter
//	POST /v1/cluster/apply  a node's own writes: its inventory, its registry entry, reader auth failures
//	GET  /v1/cluster/self   a node's raft status (for `samctl cluster members`)

// The node registry: each node's addresses, cluster-wide.
func (a *Appliance) registry() map[string]state.NodeInfo {
	out := map[string]state.NodeInfo{}
	for k, v := range a.store.ConfigPrefix(state.NodePrefix) {
		if n, err := state.ParseNodeInfo(v); err == nil {
			out[strings.TrimPrefix(k, state.NodePrefix)] = n
		}
	}
	return out
}

// isNode reports whether id is a node of this cluster: in the registry
// or in the raft configuration (a restored snapshot may lack a node's
// registry entry until it republishes it).
func (a *Appliance) isNode(id string) bool {
	if _, ok := a.store.Config(state.NodePrefix + id); ok {
		return true
	}
	ms, _ := a.store.Members()
	for _, m := range ms {
		if m.ID == id {
			return true
		}
	}
	return false
}

// leaderAdmin is the leader's admin URL from the registry, "" if unknown.
func (a *Appliance) leaderAdmin() (id, url string) {
	id, _ = a.store.Leader()
	if id == "" {
		return "", ""
	}
	return id, a.registry()[id].Admin
}

func (a *Appliance) selfInfo() state.NodeInfo {
	return state.NodeInfo{Raft: a.store.LocalAddr(), Admin: a.AdminURL(), Reader: a.advertise(), Link: a.linkAdv}
}

// publishSelf writes this node's registry entry when it differs.
func (a *Appliance) publishSelf(ctx context.Context) error {
	want := a.selfInfo()
	if have, ok := a.registry()[a.id]; ok && have == want {
		return nil
	}
	b, _ := json.Marshal(want)
	return a.nodes.Apply(ctx, &state.Command{Version: state.CommandVersion, Op: state.OpSetConfig, By: a.id,
		Key: state.NodePrefix + a.id, Value: string(b)})
}

// adminHandler is the admin API with the cluster's node endpoints and
// forwarding in front.
func (a *Appliance) adminHandler() http.Handler {
	inner := a.adminServer().Handler()
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/cluster/join", a.handleJoin)
	mux.HandleFunc("POST /v1/cluster/voter", a.nodeOnly(a.handleVoter))
	mux.HandleFunc("POST /v1/cluster/apply", a.nodeOnly(a.handleApply))
	mux.HandleFunc("GET /v1/cluster/read-index", a.nodeOnly(a.handleReadIndex))
	mux.HandleFunc("GET /v1/cluster/self", a.nodeOnly(func(w http.ResponseWriter, r *http.Request, _ string) {
		writeJSON(w, http.StatusOK, a.store.Status())
	}))
	mux.Handle("/", a.forwarding(inner))
	mux.Handle("POST /v1/slots/{id}/{action}", a.slotRouting(a.forwarding(inner))) // slotroute.go
	return mux
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, format string, args ...any) {
	writeJSON(w, status, map[string]string{"error": fmt.Sprintf(format, args...)})
}

func (a *Appliance) writeNotLeader(w http.ResponseWriter, why string) {
	id, url := a.leaderAdmin()
	msg := why
	if id == "" {
		msg += ": no raft leader is known now (an election, or no quorum); retry shortly"
	} else {
		msg += fmt.Sprintf(": the leader is %s at %s", id, url)
	}
	writeJSON(w, http.StatusServiceUnavailable, admin.NotLeader{Error: msg, NotLeader: true, LeaderID: id, LeaderAdmin: url})
}

// peerNode returns the node ID of the request's verified node certificate.
func (a *Appliance) peerNode(r *http.Request) (string, error) {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return "", errors.New("a node certificate is required")
	}
	leaf := r.TLS.PeerCertificates[0]
	if _, err := leaf.Verify(x509Opts(a.pki)); err != nil {
		return "", fmt.Errorf("node certificate: %v", err)
	}
	id, ok := raftstore.NodeID(leaf)
	if !ok {
		return "", errors.New("not a node certificate")
	}
	return id, nil
}

func (a *Appliance) nodeOnly(h func(w http.ResponseWriter, r *http.Request, node string)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		id, err := a.peerNode(r)
		if err != nil {
			writeErr(w, http.StatusUnauthorized, "%v", err)
			return
		}
		if !a.isNode(id) {
			writeErr(w, http.StatusForbidden, "node %s is not in this cluster's registry (removed, or never joined)", id)
			return
		}
		h(w, r.WithContext(r.Context()), id)
	}
}

// forwarding sends writes and consistent reads to the leader.
func (a *Appliance) forwarding(inner http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		read := r.Method == http.MethodGet || r.Method == http.MethodHead
		consistent := read && r.Header.Get(admin.ConsistentHeader) != ""
		local := strings.HasPrefix(r.URL.Path, "/v1/slots/") // this appliance's hardware
		if (read && !consistent) || local {
			inner.ServeHTTP(w, r)
			return
		}
		if a.store.IsLeader() {
			if consistent {
				if err := a.store.Barrier(r.Context()); err != nil {
					a.writeNotLeader(w, "consistent read: "+err.Error())
					return
				}
			}
			inner.ServeHTTP(w, r)
			return
		}
		if r.Header.Get(admin.ForwardedNodeHeader) != "" {
			a.writeNotLeader(w, "forwarded to a node that is no longer the leader")
			return
		}
		a.proxyToLeader(w, r, true)
	})
}

// proxyToLeader forwards r to the leader's admin API; withIdentity adds
// the caller's certificate.
func (a *Appliance) proxyToLeader(w http.ResponseWriter, r *http.Request, withIdentity bool) {
	id, base := a.leaderAdmin()
	if id == "" || base == "" || id == a.id {
		a.writeNotLeader(w, "this node cannot take writes")
		return
	}
	target, err := url.Parse(base)
	if err != nil {
		a.writeNotLeader(w, "bad leader address "+base)
		return
	}
	p := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(target)
			pr.Out.Host = pki.ServerName // a name every appliance's certificate carries
			for _, h := range []string{"Origin", "Sec-Fetch-Site", "Sec-Fetch-Mode", "Sec-Fetch-Dest", admin.ForwardedCertHeader, admin.ForwardedNodeHeader} {
				pr.Out.Header.Del(h)
			}
			pr.Out.Header.Set(admin.ForwardedNodeHeader, a.id)
			if withIdentity && pr.In.TLS != nil && len(pr.In.TLS.PeerCertificates) > 0 {
				pr.Out.Header.Set(admin.ForwardedCertHeader, base64.StdEncoding.EncodeToString(pr.In.TLS.PeerCertificates[0].Raw))
			}
		},
		Transport:     a.nodeHTTP.Transport,
		FlushInterval: -1,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			a.writeNotLeader(w, "the leader could not be reached: "+err.Error())
		},
	}
	p.ServeHTTP(w, r)
}

// joinLimiter refuses join attempts from a source after too many failures.
type joinLimiter struct {
	mu   sync.Mutex
	fail map[string][]time.Time
}

const (
	joinFailures      = 5
	joinFailureWindow = time.Minute
)

func (l *joinLimiter) allowed(src string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	recent := l.fail[src][:0]
	for _, t := range l.fail[src] {
		if now.Sub(t) < joinFailureWindow {
			recent = append(recent, t)
		}
	}
	l.fail[src] = recent
	if len(recent) == 0 {
		delete(l.fail, src)
	}
	return len(recent) < joinFailures
}

func (l *joinLimiter) failed(src string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.fail) > 10000 { // bounded: forget everything rather than grow
		l.fail = map[string][]time.Time{}
	}
	l.fail[src] = append(l.fail[src], now)
}

// handleJoin signs a new node's certificate against a join token. A
// follower forwards it to the leader (who consumes the token through
// raft), counting failures against the source here, where it is known.
func (a *Appliance) handleJoin(w http.ResponseWriter, r *http.Request) {
	src, _, _ := net.SplitHostPort(r.RemoteAddr)
	now := time.Now()
	if r.Header.Get(admin.ForwardedNodeHeader) == "" && !a.joins.allowed(src, now) {
		writeErr(w, http.StatusTooManyRequests, "too many failed joins from %s: wait a minute", src)
		return
	}
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		if sw.status >= 400 && sw.status != http.StatusServiceUnavailable {
			a.joins.failed(src, now)
		}
	}()
	if !a.store.IsLeader() {
		if r.Header.Get(admin.ForwardedNodeHeader) != "" {
			a.writeNotLeader(sw, "forwarded join reached a node that is no longer the leader")
			return
		}
		a.proxyToLeader(sw, r, false)
		return
	}
	a.join(sw, r)
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	s.status = code
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (a *Appliance) join(w http.ResponseWriter, r *http.Request) {
	if ct := r.Header.Get("Content-Type"); ct != admin.JSONType {
		writeErr(w, http.StatusUnsupportedMediaType, "Content-Type %q: want %s", ct, admin.JSONType)
		return
	}
	var req JoinRequest
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, "bad join request: %v", err)
		return
	}
	if len(req.TokenID) != 16 || len(req.Secret) != 32 {
		writeErr(w, http.StatusBadRequest, "bad join request: malformed token")
		return
	}
	for _, f := range []struct{ what, v string }{{"raft", req.Raft}, {"admin", req.Admin}, {"reader", req.Reader}} {
		if len(f.v) == 0 || len(f.v) > 256 {
			writeErr(w, http.StatusBadRequest, "bad join request: %s address %q", f.what, f.v)
			return
		}
	}
	if _, _, err := net.SplitHostPort(req.Raft); err != nil {
		writeErr(w, http.StatusBadRequest, "bad join request: raft address %q: %v", req.Raft, err)
		return
	}
	if ms, err := a.store.Members(); err == nil {
		for _, m := range ms {
			if m.ID == req.NodeID {
				writeErr(w, http.StatusConflict, "node %s is a member already (remove it first to rejoin)", req.NodeID)
				return
			}
		}
	}
	if err := pki.CheckNodeCSR(req.NodeID, req.CSR); err != nil {
		writeErr(w, http.StatusBadRequest, "%v", err)
		return
	}
	tokenBy := ""
	if v, ok := a.store.Config(state.JoinTokenPrefix + req.TokenID); ok {
		if t, err := state.ParseJoinToken(v); err == nil {
			tokenBy = t.By
		}
	}
	if err := a.store.Apply(r.Context(), state.UseJoinTokenCommand(req.TokenID, secretHash(req.Secret), req.NodeID)); err != nil {
		if errors.Is(err, state.ErrJoinToken) {
			a.audit.Record(audit.Event{Kind: "cluster.join.denied", Actor: tokenBy, Slot: audit.NoSlot,
				Detail: fmt.Sprintf("node %s token %s from %s: %v", req.NodeID, req.TokenID, r.RemoteAddr, err)})
			writeErr(w, http.StatusForbidden, "join refused: %v", strings.TrimPrefix(err.Error(), "state: join token refused: "))
			return
		}
		a.writeNotLeader(w, err.Error())
		return
	}
	certPEM, err := a.pki.IssueNode(req.NodeID, req.CSR)
	if err != nil {
		writeErr(w, http.StatusBadRequest, "%v", err)
		return
	}
	shared, err := a.pki.Share()
	if err != nil {
		writeErr(w, http.StatusInternalServerError, "%v", err)
		return
	}
	info, _ := json.Marshal(state.NodeInfo{Raft: req.Raft, Admin: adminBase(req.Admin), Reader: req.Reader})
	if err := a.store.Apply(r.Context(), &state.Command{Version: state.CommandVersion, Op: state.OpSetConfig, By: tokenBy,
		Key: state.NodePrefix + req.NodeID, Value: string(info)}); err != nil {
		a.writeNotLeader(w, err.Error())
		return
	}
	a.audit.Record(audit.Event{Kind: "cluster.join", Actor: tokenBy, Slot: audit.NoSlot,
		Detail: fmt.Sprintf("node %s raft %s admin %s with token %s", req.NodeID, req.Raft, req.Admin, req.TokenID)})
	a.log.Info("node joined: certificate issued", "node", req.NodeID, "raft", req.Raft, "token_by", tokenBy)
	writeJSON(w, http.StatusOK, JoinResponse{NodeCertPEM: string(certPEM), Shared: *shared, LeaderID: a.id, LeaderAdmin: a.AdminURL()})
}

// handleVoter adds a joined node as a voter, at its registered address.
func (a *Appliance) handleVoter(w http.ResponseWriter, r *http.Request, node string) {
	if !a.store.IsLeader() {
		a.writeNotLeader(w, "add voter")
		return
	}
	info := a.registry()[node]
	before, _ := a.store.Members()
	if err := a.store.AddVoter(r.Context(), node, info.Raft); err != nil {
		a.writeNotLeader(w, err.Error())
		return
	}
	if len(before) <= 1 {
		// From a cluster of one to several: LAN timeouts (see store.go).
		if err := a.store.SetTimeouts(lanHeartbeat, lanElection); err != nil {
			a.log.Warn("raft timeouts not changed", "err", err)
		}
	}
	a.audit.Record(audit.Event{Kind: "cluster.voter", Actor: node, Slot: audit.NoSlot, Detail: "node " + node + " raft " + info.Raft})
	writeJSON(w, http.StatusOK, VoterResponse{Index: a.store.Raft().LastIndex()})
}

// readIndex is the answer of /v1/cluster/read-index.
type readIndex struct {
	Index uint64 `json:"index"`
}

// handleReadIndex answers a follower's read index (raft's ReadIndex): this
// leader's commit index, taken before it confirms with a quorum that it
// still leads. A follower that has applied up to it has every write that
// was acknowledged before it asked.
func (a *Appliance) handleReadIndex(w http.ResponseWriter, r *http.Request, _ string) {
	rf := a.store.Raft()
	idx := rf.CommitIndex()
	if !a.store.IsLeader() || rf.VerifyLeader().Error() != nil {
		a.writeNotLeader(w, "read index")
		return
	}
	writeJSON(w, http.StatusOK, readIndex{Index: idx})
}

// catchUp waits until this appliance has applied every write the leader
// had committed when asked (the read index), or ctx ends. The reader
// directory calls it before it calls a reader unknown: a reader added a
// moment ago on the leader may not have reached this follower yet.
//
// Concurrent callers share fetches (sharedReadIndex), so that a burst of
// unknown readers (a removed reader's certificate retried, many readers
// registered at once) costs the leader one round at a time.
func (a *Appliance) catchUp(ctx context.Context) error {
	target := a.store.Raft().CommitIndex() // a leader's own
	if !a.store.IsLeader() {
		var err error
		if target, err = a.readIndexes.get(ctx, func(ctx context.Context) (uint64, error) {
			return readIndexOf(ctx, a.nodeHTTP, a.store)
		}); err != nil {
			return err
		}
	}
	return waitApplied(ctx, a.store, target)
}

// sharedReadIndex fetches read indexes one at a time and shares each
// with the callers that were already waiting when it began: its index
// covers every write acknowledged before their calls.
type sharedReadIndex struct {
	mu    sync.Mutex // held while fetching: callers queue behind one fetch
	index uint64
	began time.Time // when the last successful fetch began
}

func (r *sharedReadIndex) get(ctx context.Context, fetch func(context.Context) (uint64, error)) (uint64, error) {
	start := time.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.began.IsZero() && !r.began.Before(start) {
		return r.index, nil
	}
	began := time.Now()
	idx, err := fetch(ctx)
	if err != nil {
		return 0, err
	}
	r.index, r.began = idx, began
	return idx, nil
}

// readIndexOf asks the leader of s, at its admin address in the node
// registry, for its read index.
func readIndexOf(ctx context.Context, c *http.Client, s *raftstore.Store) (uint64, error) {
	id, _ := s.Leader()
	if id == "" || id == s.ID() {
		return 0, errors.New("no other leader to ask for a read index")
	}
	v, ok := s.Config(state.NodePrefix + id)
	info, err := state.ParseNodeInfo(v)
	if !ok || err != nil || info.Admin == "" {
		return 0, fmt.Errorf("leader %s: no admin address in the registry", id)
	}
	var ans readIndex
	if err := getJSON(ctx, c, info.Admin+"/v1/cluster/read-index", &ans); err != nil {
		return 0, fmt.Errorf("read index from leader %s: %w", id, err)
	}
	return ans.Index, nil
}

// waitApplied waits until s has applied index, or ctx ends.
func waitApplied(ctx context.Context, s *raftstore.Store, index uint64) error {
	t := time.NewTicker(2 * time.Millisecond)
	defer t.Stop()
	for s.AppliedIndex() < index {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}

// handleApply applies a node's own write (nodeStore on the node).
func (a *Appliance) handleApply(w http.ResponseWriter, r *http.Request, node string) {
	var body struct {
		Cmd []byte `json:"cmd"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10)).Decode(&body); err != nil {
		writeErr(w, http.StatusBadRequest, "bad request: %v", err)
		return
	}
	cmd, err := state.Decode(body.Cmd)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, applyAnswer{Error: err.Error(), Kind: "invalid"})
		return
	}
	if err := nodeMayApply(node, cmd); err != nil {
		writeErr(w, http.StatusForbidden, "node %s: %v", node, err)
		return
	}
	if !a.store.IsLeader() {
		a.writeNotLeader(w, "apply")
		return
	}
	res, err := a.store.Exec(r.Context(), cmd)
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, applyAnswer{Result: &res})
	case errors.Is(err, raftstore.ErrNotLeader):
		a.writeNotLeader(w, "apply")
	case errors.Is(err, state.ErrUnknownReader):
		writeJSON(w, http.StatusOK, applyAnswer{Error: err.Error(), Kind: "unknown_reader"})
	case errors.Is(err, state.ErrInvalidCommand):
		writeJSON(w, http.StatusOK, applyAnswer{Error: err.Error(), Kind: "invalid"})
	default:
		writeErr(w, http.StatusInternalServerError, "%v", err)
	}
}

// nodeMayApply: a node writes only its own inventory and registry entry
// and the reader authentication counters its dispatcher keeps.
func nodeMayApply(node string, c *state.Command) error {
	switch c.Op {
	case state.OpPutSlot, state.OpDeleteSlot:
		if c.Slot.Node == node {
			return nil
		}
	case state.OpSetConfig, state.OpDeleteConfig:
		if c.Key == state.NodePrefix+node {
			return nil
		}
	case state.OpRecordAuthFailure, state.OpResetAuthFailures:
		return nil
	}
	return fmt.Errorf("may not apply %s here", c.Op)
}

type applyAnswer struct {
	Result *state.Result `json:"result,omitempty"`
	Error  string        `json:"error,omitempty"`
	Kind   string        `json:"kind,omitempty"`
}

// nodeStore is the state store as this node's own components use it:
// reads local, writes on the leader — applied here when this node leads,
// else sent to the leader's /v1/cluster/apply with the node certificate.
type nodeStore struct {
	*raftstore.Store
	a *Appliance
}

func (n nodeStore) Apply(ctx context.Context, cmd *state.Command) error {
	_, err := n.Exec(ctx, cmd)
	return err
}

func (n nodeStore) Exec(ctx context.Context, cmd *state.Command) (state.Result, error) {
	res, err := n.Store.Exec(ctx, cmd)
	if !errors.Is(err, raftstore.ErrNotLeader) {
		return res, err
	}
	c, err := state.Prepare(ctx, cmd, time.Now)
	if err != nil {
		return state.Result{}, err
	}
	b, err := c.Encode()
	if err != nil {
		return state.Result{}, err
	}
	id, base := n.a.leaderAdmin()
	if base == "" || id == n.a.id {
		return state.Result{}, &raftstore.NotLeaderError{LeaderID: id}
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	var ans applyAnswer
	if err := postJSON(ctx, n.a.nodeHTTP, base+"/v1/cluster/apply", map[string][]byte{"cmd": b}, &ans); err != nil {
		return state.Result{}, fmt.Errorf("leader %s: %w", id, err)
	}
	switch ans.Kind {
	case "":
		if ans.Result == nil {
			return state.Result{}, errors.New("leader: empty answer")
		}
		return *ans.Result, nil
	case "unknown_reader":
		return state.Result{}, fmt.Errorf("%w (leader %s: %s)", state.ErrUnknownReader, id, ans.Error)
	default:
		return state.Result{}, fmt.Errorf("%w (leader %s: %s)", state.ErrInvalidCommand, id, ans.Error)
	}
}

// Cluster operations (admin.Cluster).
type clusterOps struct{ a *Appliance }

var _ admin.Cluster = clusterOps{}

func (c clusterOps) Members(ctx context.Context) ([]admin.Member, error) {
	a := c.a
	ms, err := a.store.Members()
	if err != nil {
		return nil, err
	}
	reg := a.registry()
	up, total := map[string]int{}, map[string]int{}
	for _, s := range a.store.Slots() {
		total[s.Node]++
		if s.State == "Enabled" {
			up[s.Node]++
		}
	}
	out := make([]admin.Member, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		info := reg[m.ID]
		role := "follower"
		switch {
		case m.Leader:
			role = "leader"
		case !m.Voter:
			role = "non-voter"
		}
		out[i] = admin.Member{ID: m.ID, Raft: m.Addr, Admin: info.Admin, Reader: info.Reader, Role: role,
			SlotsUp: up[m.ID], Slots: total[m.ID], Local: m.IsLocal}
		if m.IsLocal {
			fillStatus(&out[i], a.store.Status())
			continue
		}
		if info.Admin == "" {
			out[i].LastContact, out[i].Error = "unreachable", "not in the registry"
			continue
		}
		wg.Add(1)
		go func(mb *admin.Member) { // owned here: waited for below
			defer wg.Done()
			ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
			defer cancel()
			var st raftstore.Status
			if err := getJSON(ctx, a.nodeHTTP, mb.Admin+"/v1/cluster/self", &st); err != nil {
				mb.LastContact, mb.Error = "unreachable", err.Error()
				return
			}
			fillStatus(mb, st)
		}(&out[i])
	}
	wg.Wait()
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out, nil
}

func fillStatus(m *admin.Member, st raftstore.Status) {
	m.State, m.AppliedIndex, m.Checked = st.State, st.AppliedIndex, time.Now().UTC()
	switch {
	case st.State == "Leader":
		m.LastContact = "-"
	case st.LastContact < 0:
		m.LastContact = "never"
	default:
		m.LastContact = st.LastContact.Round(time.Millisecond).String()
	}
}

func (c clusterOps) IssueToken(ctx context.Context, ttl time.Duration, by string) (string, time.Time, error) {
	t, s, err := newToken(c.a.pki.CAHash())
	if err != nil {
		return "", time.Time{}, err
	}
	h := secretHash(t.secret)
	exp := time.Now().Add(ttl).UTC().Truncate(time.Second)
	v, _ := json.Marshal(state.JoinToken{Hash: fmt.Sprintf("%x", h[:]), Expires: exp, By: by})
	if err := c.a.store.Apply(ctx, &state.Command{Version: state.CommandVersion, Op: state.OpSetConfig, By: by,
		Key: state.JoinTokenPrefix + t.id, Value: string(v)}); err != nil {
		return "", time.Time{}, err
	}
	return s, exp, nil
}

func (c clusterOps) Remove(ctx context.Context, id, by string) error {
	a := c.a
	ms, err := a.store.Members()
	if err != nil {
		return err
	}
	found := false
	for _, m := range ms {
		found = found || m.ID == id
	}
	if !found && !a.isNode(id) {
		return &admin.Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("node %s is not a member of this cluster", id)}
	}
	if found && len(ms) == 1 {
		return &admin.Error{Status: http.StatusConflict, Msg: fmt.Sprintf("node %s is the last member: a cluster cannot remove its last node", id)}
	}
	// Registry and inventory first: a removed node's certificate is no
	// longer accepted on the node endpoints or for forwarding.
	for _, s := range a.store.Slots() {
		if s.Node == id {
			if err := a.store.Apply(ctx, &state.Command{Version: state.CommandVersion, Op: state.OpDeleteSlot, By: by,
				Slot: &state.Slot{Node: s.Node, Name: s.Name}}); err != nil {
				return err
			}
		}
	}
	if a.isNode(id) {
		if err := a.store.Apply(ctx, &state.Command{Version: state.CommandVersion, Op: state.OpDeleteConfig, By: by, Key: state.NodePrefix + id}); err != nil {
			return err
		}
	}
	if found {
		return a.store.RemoveServer(ctx, id)
	}
	return nil
}

func (c clusterOps) TransferLeader(ctx context.Context, id string) (string, error) {
	a := c.a
	addr := ""
	if id != "" {
		ms, err := a.store.Members()
		if err != nil {
			return "", err
		}
		for _, m := range ms {
			if m.ID == id {
				addr = m.Addr
				if !m.Voter {
					return "", &admin.Error{Status: http.StatusBadRequest, Msg: fmt.Sprintf("node %s is not a voter", id)}
				}
			}
		}
		if addr == "" {
			return "", &admin.Error{Status: http.StatusNotFound, Msg: fmt.Sprintf("node %s is not a member of this cluster", id)}
		}
		if id == a.id {
			return id, nil // already the leader
		}
	}
	if err := a.store.TransferLeadership(id, addr); err != nil {
		return "", err
	}
	leader, _ := a.store.Leader()
	return leader, nil
}

func (c clusterOps) SaveSnapshot(w io.Writer) error { return c.a.store.Snapshot(w) }

var _ admin.Digester = clusterOps{}

// StateDigest implements admin.Digester.
func (c clusterOps) StateDigest() (admin.Digest, error) {
	idx := c.a.store.AppliedIndex()
	d, err := c.a.store.Digest()
	if err != nil {
		return admin.Digest{}, err
	}
	return admin.Digest{Node: c.a.id, AppliedIndex: idx, SHA256: hex.EncodeToString(d[:])}, nil
}

func (c clusterOps) RestoreSnapshot(ctx context.Context, r io.Reader) error {
	if err := c.a.store.Restore(r); err != nil {
		return err
	}
	c.a.inv.trigger() // the restored inventory and registry are old: republish
	return nil
}

func x509Opts(p *pki.PKI) x509.VerifyOptions {
	return x509.VerifyOptions{Roots: p.Pool(), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
}
