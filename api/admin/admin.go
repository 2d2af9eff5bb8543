// Package admin is the appliance's admin API, HTTPS with client
// certificates only (see auth.go for the security model): the rack's slots
// and the hardware team's operations on them, the card and reader
// blacklists, the reader registry (adding a reader issues its credential
// bundle), operator identities and their roles, the terminal→SAM table,
// counters and the audit trail. Every change is audited with the name of
// the identity that made it. samctl is its client (Client in this package).
//
// Every response is JSON. Errors are {"error": "…"} with a 4xx/5xx status;
// handlers return errors instead of writing them by hand.
package admin

import (
	"context"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/cluster/raftstore"
	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/rack"
)

// Rack is what the admin API needs of the rack.
type Rack interface {
	Slots() []rack.SlotInfo
	Stats() rack.Stats
	Drain(ctx context.Context, slot int) error
	Enable(slot int) error
	PowerOff(slot int) error
	PowerOn(slot int) error
	PowerCycle(slot int) error
	Locate(slot int, on bool) error
	ClearQuarantine(slot int) error
}

// Provisioner registers readers and operator identities and issues their
// credentials; by is the name of the operator asking.
type Provisioner interface {
	AddReaderBy(ctx context.Context, serial, cipher, note, by string) (*credentials.Bundle, error)
	// AddOperator issues an operator certificate and records the identity
	// (state.OpPutOperator); the Credentials' URL is the appliance's own
	// view of its admin address (samctl replaces it with the one it used).
	AddOperator(ctx context.Context, name string, role state.Role, by string) (*Credentials, error)
}

// Server serves the admin API. State, Rack, Readers and ClientCAs are
// required.
type Server struct {
	State     state.Store
	Operators state.OperatorReads // identities; default State, which must then implement it
	Rack      Rack
	Readers   Provisioner
	ClientCAs *x509.CertPool // the installation CA: operator certificates must chain to it
	// Hosts are the names and IP addresses clients may put in the Host
	// header (the server certificate's); loopback is always accepted.
	Hosts     []string
	Audit     func(q audit.Query) ([]audit.Event, error) // the audit trail, newest first
	Record    func(audit.Event)                          // records an audit event
	HashCard  func(serial [8]byte) string                // keyed hash of a card serial for audit events
	Counters  func() map[string]any                      // dispatcher and audit counters
	Logger    *slog.Logger
	Cluster   Cluster              // the raft cluster (cluster.go); nil: no cluster endpoints
	IsNode    func(id string) bool // whether a node certificate's ID is a node of this cluster (forwarded requests)
	MaxImport int64                // bytes of one card list import request (default 64 MiB; samctl sends parts)
	// ImportInFlight is how many chunks of an import are proposed and not
	// yet applied at a time (default DefaultImportInFlight).
	ImportInFlight int
	Now            func() time.Time // certificate validity; default time.Now

	hostNames []string
	hostIPs   []net.IP

	deniedMu      sync.Mutex // guards the three below: the admin.denied rate limit
	deniedWindow  time.Time
	deniedN       int
	deniedDropped int
}

func (s *Server) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Server) operators() state.OperatorReads {
	if s.Operators != nil {
		return s.Operators
	}
	if o, ok := s.State.(state.OperatorReads); ok {
		return o
	}
	return noOperators{}
}

type noOperators struct{}

func (noOperators) Operator(string) (state.Operator, bool) { return state.Operator{}, false }
func (noOperators) Operators() []state.Operator            { return nil }

func (s *Server) cardHash(serial [8]byte) string {
	if s.HashCard == nil {
		return ""
	}
	return s.HashCard(serial)
}

// record adds an audit event for a change made by the request's caller.
func (s *Server) record(r *http.Request, e audit.Event) {
	if s.Record == nil {
		return
	}
	e.Actor = s.actor(r)
	if e.Slot == 0 && !strings.HasPrefix(e.Kind, "slot.") {
		e.Slot = audit.NoSlot
	}
	s.Record(e)
}

// Error is an error with an HTTP status, safe to show the caller; Err, if
// set, is its cause (for errors.Is and errors.As, never shown).
type Error struct {
	Status int
	Msg    string
	Err    error
}

func (e *Error) Error() string { return e.Msg }

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

func errorf(status int, format string, a ...any) error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, a...)}
}

type handler func(w http.ResponseWriter, r *http.Request) error

// route is one endpoint: the role it needs (0: none, /healthz only) and the
// content type of its body if not JSON.
type route struct {
	pattern  string
	role     state.Role
	bodyType string
	fn       handler
}

// Routes lists the endpoints with the role each needs, for documentation
// and tests: "METHOD /path" → role (0 for none).
func (s *Server) Routes() map[string]state.Role {
	m := map[string]state.Role{}
	for _, rt := range s.routes() {
		m[rt.pattern] = rt.role
	}
	return m
}

func (s *Server) routes() []route {
	const v, o, a = state.RoleViewer, state.RoleOperator, state.RoleAdmin
	return append([]route{
		{"GET /healthz", 0, "", s.healthz},
		{"GET /v1/health", v, "", s.health},
		{"GET /v1/whoami", v, "", s.whoami},
		{"GET /v1/slots", v, "", s.slots},
		{"POST /v1/slots/{id}/{action}", o, "", s.slotAction},
		{"GET /v1/blacklist/cards", v, "", s.listCards},
		{"POST /v1/blacklist/cards", o, "", s.addCards},
		{"POST /v1/blacklist/cards/import", o, CardListType, s.importCards},
		{"DELETE /v1/blacklist/cards/{serial}", o, "", s.removeCard},
		{"GET /v1/blacklist/readers", v, "", s.listReaderBlacklist},
		{"POST /v1/blacklist/readers", o, "", s.addReaderBlacklist},
		{"DELETE /v1/blacklist/readers/{serial}", o, "", s.removeReaderBlacklist},
		{"GET /v1/readers", v, "", s.listReaders},
		{"POST /v1/readers", a, "", s.addReader},
		{"DELETE /v1/readers/{serial}", a, "", s.deleteReader},
		{"POST /v1/readers/{serial}/status", a, "", s.readerStatus},
		{"PUT /v1/readers/{serial}/affinity", a, "", s.setAffinity},
		{"GET /v1/operators", v, "", s.listOperators},
		{"POST /v1/operators", a, "", s.addOperator},
		{"POST /v1/operators/{name}/role", a, "", s.setOperatorRole},
		{"DELETE /v1/operators/{name}", a, "", s.revokeOperator},
		{"GET /v1/stats", v, "", s.stats},
		{"GET /v1/audit", v, "", s.audit},
	}, s.clusterRoutes()...)
}

// Handler returns the API's http.Handler. Serve it over TLS with
// tls.RequestClientCert (the Server verifies the certificate itself, to
// answer a missing or foreign one with a clear 401 rather than a failed
// handshake).
func (s *Server) Handler() http.Handler {
	s.hostNames, s.hostIPs = nil, nil
	for _, h := range s.Hosts {
		if ip := net.ParseIP(h); ip != nil {
			s.hostIPs = append(s.hostIPs, ip)
		} else {
			s.hostNames = append(s.hostNames, strings.TrimSuffix(strings.ToLower(h), "."))
		}
	}
	mux := http.NewServeMux()
	for _, rt := range s.routes() {
		mux.Handle(rt.pattern, s.wrap(func(w http.ResponseWriter, r *http.Request) error {
			r, err := s.guard(rt, w, r)
			if err != nil {
				return err
			}
			return rt.fn(w, r)
		}))
	}
	// Anything else: still Host- and Origin-checked, then 404/405.
	mux.Handle("/", s.wrap(func(w http.ResponseWriter, r *http.Request) error {
		if err := s.checkHost(r); err != nil {
			return err
		}
		return errorf(http.StatusNotFound, "no such endpoint: %s %s", r.Method, r.URL.Path)
	}))
	return mux
}

func (s *Server) wrap(fn handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		if err == nil {
			return
		}
		status, msg := http.StatusInternalServerError, "internal error"
		var he *Error
		var mbe *http.MaxBytesError
		switch {
		case errors.As(err, &he):
			status, msg = he.Status, he.Msg
		case errors.As(err, &mbe):
			status, msg = http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", mbe.Limit)
		case errors.Is(err, state.ErrInvalidCommand), errors.Is(err, rack.ErrUnknownSlot), errors.Is(err, rack.ErrNotAllowed):
			status, msg = http.StatusBadRequest, err.Error()
		case errors.Is(err, state.ErrUnknownReader), errors.Is(err, state.ErrUnknownOperator):
			status, msg = http.StatusNotFound, err.Error()
		case errors.Is(err, state.ErrOperatorRevoked):
			status, msg = http.StatusConflict, err.Error()
		case errors.Is(err, raftstore.ErrNotLeader):
			status, msg = http.StatusServiceUnavailable, err.Error()+" (retry: leadership moved)"
		case errors.Is(err, raftstore.ErrOutcomeUnknown):
			// Not retried by the client: the write may have been applied.
			status, msg = http.StatusServiceUnavailable, err.Error()+" (check the state before retrying)"
		default:
			if s.Logger != nil {
				s.Logger.Error("admin request failed", "method", r.Method, "path", r.URL.Path, "err", err)
			}
		}
		writeJSON(w, status, map[string]string{"error": msg})
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// readJSON decodes one JSON value, refusing unknown fields (a "by" field
// among them: the actor comes from the certificate) and trailing data.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil && dec.More() {
		err = errors.New("trailing data after the JSON value")
	}
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return err
		}
		return errorf(http.StatusBadRequest, "bad request body: %v", err)
	}
	return nil
}

// Health is the answer of /healthz and /v1/health.
type Health struct {
	Status string      `json:"status"`           // "ok" or "degraded"
	Reason string      `json:"reason,omitempty"` // why degraded, one line
	Rack   *rack.Stats `json:"rack,omitempty"`   // /v1/health only
}

func (s *Server) healthOf() Health {
	st := s.Rack.Stats()
	var reasons []string
	if st.Idle+st.Busy == 0 {
		reasons = append(reasons, "no SAM in service")
	}
	if st.Quarantined > 0 {
		reasons = append(reasons, fmt.Sprintf("%d slot(s) quarantined", st.Quarantined))
	}
	if len(reasons) == 0 {
		return Health{Status: "ok", Rack: &st}
	}
	return Health{Status: "degraded", Reason: strings.Join(reasons, "; "), Rack: &st}
}

// healthz is for monitoring without credentials: 200 ok or 503 degraded,
// with the reason and nothing else.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) error {
	h := s.healthOf()
	h.Rack = nil
	status := http.StatusOK
	if h.Status != "ok" {
		status = http.StatusServiceUnavailable
	}
	return writeJSON(w, status, h)
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	return writeJSON(w, http.StatusOK, s.healthOf())
}

func (s *Server) whoami(w http.ResponseWriter, r *http.Request) error {
	id, _ := IdentityOf(r.Context())
	return writeJSON(w, http.StatusOK, map[string]string{"operator": id.Name, "role": id.Role.String()})
}

// Slot is the JSON form of a slot.
type Slot struct {
	ID               int       `json:"id"`
	Driver           string    `json:"driver"`
	Device           string    `json:"device"`
	State            string    `json:"state"`
	Health           string    `json:"health"`
	SAMID            string    `json:"sam_id,omitempty"`
	Activity         string    `json:"activity,omitempty"`
	Busy             bool      `json:"busy"`
	Powered          bool      `json:"powered"`
	Locate           bool      `json:"locate"`
	Fault            bool      `json:"fault"`
	Reads            uint64    `json:"reads"`
	Errors           uint64    `json:"errors"`
	ErrorRate        float64   `json:"error_rate"`
	LastCheckLatency float64   `json:"last_check_ms"`
	LastError        string    `json:"last_error,omitempty"`
	Since            time.Time `json:"since"`
}

func slotJSON(i rack.SlotInfo) Slot {
	s := Slot{ID: i.ID, Driver: i.Driver, Device: i.Device, State: i.State.String(), Health: i.Health.String(),
		Activity: i.Activity, Busy: i.Busy, Powered: i.Powered, Locate: i.Locate, Fault: i.Fault,
		Reads: i.Reads, Errors: i.Errors, ErrorRate: i.ErrorRate, LastCheckLatency: float64(i.LastCheckLatency) / 1e6,
		LastError: i.LastError, Since: i.Since}
	if !i.SAMID.IsZero() {
		s.SAMID = i.SAMID.String()
	}
	return s
}

func (s *Server) slots(w http.ResponseWriter, r *http.Request) error {
	infos := s.Rack.Slots()
	out := make([]Slot, 0, len(infos))
	for _, i := range infos {
		out = append(out, slotJSON(i))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) slotAction(w http.ResponseWriter, r *http.Request) error {
	id, err := strconv.Atoi(r.PathValue("id"))
	if err != nil {
		return errorf(http.StatusBadRequest, "slot %q: want a number", r.PathValue("id"))
	}
	switch a := r.PathValue("action"); a {
	case "drain":
		ctx, cancel := context.WithTimeout(r.Context(), 60*time.Second)
		defer cancel()
		err = s.Rack.Drain(ctx, id)
	case "enable":
		err = s.Rack.Enable(id)
	case "power-off":
		err = s.Rack.PowerOff(id)
	case "power-on":
		err = s.Rack.PowerOn(id)
	case "power-cycle":
		err = s.Rack.PowerCycle(id)
	case "locate-on", "locate-off":
		err = s.Rack.Locate(id, a == "locate-on")
	case "clear-quarantine":
		err = s.Rack.ClearQuarantine(id)
	default:
		return errorf(http.StatusNotFound, "unknown slot action %q (drain, enable, power-off, power-on, power-cycle, locate-on, locate-off, clear-quarantine)", a)
	}
	if err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "slot." + r.PathValue("action"), Slot: id})
	for _, i := range s.Rack.Slots() {
		if i.ID == id {
			return writeJSON(w, http.StatusOK, slotJSON(i))
		}
	}
	return writeJSON(w, http.StatusOK, map[string]string{})
}

// Card is the JSON form of a blacklisted card.
type Card struct {
	Serial  string    `json:"serial"`
	Reason  string    `json:"reason,omitempty"`
	AddedAt time.Time `json:"added_at"`
	AddedBy string    `json:"added_by,omitempty"`
}

// CardList is a page of the card blacklist.
type CardList struct {
	Count int    `json:"count"` // all entries
	Cards []Card `json:"cards"`
	Next  string `json:"next,omitempty"` // pass as ?after= for the next page
}

func parseSerial(s string) ([8]byte, error) {
	var b [8]byte
	if len(s) != 16 {
		return b, errorf(http.StatusBadRequest, "card serial %q: want 16 hex digits", s)
	}
	if _, err := hex.Decode(b[:], []byte(s)); err != nil {
		return b, errorf(http.StatusBadRequest, "card serial %q: want 16 hex digits", s)
	}
	return b, nil
}

func (s *Server) listCards(w http.ResponseWriter, r *http.Request) error {
	var after [8]byte
	if a := r.URL.Query().Get("after"); a != "" {
		var err error
		if after, err = parseSerial(a); err != nil {
			return err
		}
	}
	limit := 1000
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > 100000 {
			return errorf(http.StatusBadRequest, "limit must be 1..100000")
		}
		limit = n
	}
	entries := s.State.Cards(after, limit)
	out := CardList{Count: s.State.CardCount(), Cards: make([]Card, 0, len(entries))}
	for _, e := range entries {
		out.Cards = append(out.Cards, Card{Serial: hex.EncodeToString(e.Serial[:]), Reason: e.Reason, AddedAt: e.AddedAt, AddedBy: e.AddedBy})
	}
	if len(entries) == limit {
		out.Next = out.Cards[len(out.Cards)-1].Serial
	}
	return writeJSON(w, http.StatusOK, out)
}

// AddCards is the body of POST /v1/blacklist/cards.
type AddCards struct {
	Cards  []string `json:"cards"`
	Reason string   `json:"reason"`
}

func (s *Server) addCards(w http.ResponseWriter, r *http.Request) error {
	var req AddCards
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if len(req.Cards) == 0 {
		return errorf(http.StatusBadRequest, "no cards")
	}
	if req.Reason == "" {
		req.Reason = "blacklisted"
	}
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpAddCards, Reason: req.Reason, By: s.actor(r)}
	for _, c := range req.Cards {
		serial, err := parseSerial(c)
		if err != nil {
			return err
		}
		cmd.Cards = append(cmd.Cards, serial)
	}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "blacklist.card.add", Count: len(cmd.Cards), Detail: "reason: " + req.Reason})
	return writeJSON(w, http.StatusOK, map[string]int{"added": len(cmd.Cards), "count": s.State.CardCount()})
}

func (s *Server) removeCard(w http.ResponseWriter, r *http.Request) error {
	serial, err := parseSerial(r.PathValue("serial"))
	if err != nil {
		return err
	}
	if _, ok := s.State.CardBlacklisted(serial); !ok {
		return errorf(http.StatusNotFound, "card %s is not on the blacklist", r.PathValue("serial"))
	}
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpRemoveCards, Cards: []state.CardSerial{serial}, By: s.actor(r)}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "blacklist.card.remove", Count: 1, Card: s.cardHash(serial)})
	return writeJSON(w, http.StatusOK, map[string]int{"removed": 1, "count": s.State.CardCount()})
}

// ReaderBlacklistEntry is the body of POST /v1/blacklist/readers.
type ReaderBlacklistEntry struct {
	Serial string `json:"serial"`
	Reason string `json:"reason"`
}

func (s *Server) listReaderBlacklist(w http.ResponseWriter, r *http.Request) error {
	type lister interface{ ReaderBlacklist() map[string]string }
	out := []ReaderBlacklistEntry{}
	if l, ok := s.State.(lister); ok {
		for serial, reason := range l.ReaderBlacklist() {
			out = append(out, ReaderBlacklistEntry{Serial: serial, Reason: reason})
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) addReaderBlacklist(w http.ResponseWriter, r *http.Request) error {
	var req ReaderBlacklistEntry
	if err := readJSON(r, &req); err != nil {
		return err
	}
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpAddReaderBlacklist, Serial: req.Serial, Reason: req.Reason, By: s.actor(r)}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "blacklist.reader.add", Reader: req.Serial, Count: 1, Detail: "reason: " + req.Reason})
	return writeJSON(w, http.StatusOK, req)
}

func (s *Server) removeReaderBlacklist(w http.ResponseWriter, r *http.Request) error {
	if !s.State.ReaderBlacklisted(r.PathValue("serial")) {
		return errorf(http.StatusNotFound, "reader %s is not on the reader blacklist", r.PathValue("serial"))
	}
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpRemoveReaderBlacklist, Serial: r.PathValue("serial"), By: s.actor(r)}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "blacklist.reader.remove", Reader: cmd.Serial, Count: 1})
	return writeJSON(w, http.StatusOK, map[string]string{"removed": cmd.Serial})
}

// ReaderInfo is the JSON form of a registered reader: never its key.
type ReaderInfo struct {
	Serial     string    `json:"serial"`
	Cipher     string    `json:"cipher"`
	Status     string    `json:"status"`
	CreatedAt  time.Time `json:"created_at"`
	FailedAuth int       `json:"failed_auth"`
	Note       string    `json:"note,omitempty"`
	SAMs       []string  `json:"sams,omitempty"` // terminal→SAM table
}

func (s *Server) readerInfo(rd state.Reader) ReaderInfo {
	ri := ReaderInfo{Serial: rd.Serial, Cipher: rd.Cipher, Status: rd.Status.String(), CreatedAt: rd.CreatedAt, FailedAuth: rd.FailedAuth, Note: rd.Note}
	for _, id := range s.State.Affinity(rd.Serial) {
		ri.SAMs = append(ri.SAMs, id.String())
	}
	return ri
}

func (s *Server) listReaders(w http.ResponseWriter, r *http.Request) error {
	readers := s.State.Readers()
	out := make([]ReaderInfo, 0, len(readers))
	for _, rd := range readers {
		out = append(out, s.readerInfo(rd))
	}
	return writeJSON(w, http.StatusOK, out)
}

// AddReader is the body of POST /v1/readers; the answer is the reader's
// credentials.Bundle, which holds its key: it is shown once, store it.
type AddReader struct {
	Serial string `json:"serial"`
	Cipher string `json:"cipher,omitempty"` // sm4 (default) or aes
	Note   string `json:"note,omitempty"`
}

func (s *Server) addReader(w http.ResponseWriter, r *http.Request) error {
	var req AddReader
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if req.Cipher == "" {
		req.Cipher = credentials.CipherSM4
	}
	if err := state.CheckReaderSerial(req.Serial); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	if _, exists := s.State.Reader(req.Serial); exists {
		return errorf(http.StatusConflict, "reader %s is already registered (delete it first to re-issue)", req.Serial)
	}
	b, err := s.Readers.AddReaderBy(r.Context(), req.Serial, req.Cipher, req.Note, s.actor(r))
	if err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "reader.add", Reader: req.Serial, Detail: "cipher " + req.Cipher})
	return writeJSON(w, http.StatusCreated, b)
}

func (s *Server) deleteReader(w http.ResponseWriter, r *http.Request) error {
	serial := r.PathValue("serial")
	if _, ok := s.State.Reader(serial); !ok {
		return errorf(http.StatusNotFound, "reader %s is not registered", serial)
	}
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpDeleteReader, Serial: serial, By: s.actor(r)}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "reader.remove", Reader: serial})
	return writeJSON(w, http.StatusOK, map[string]string{"deleted": serial})
}

// ReaderStatus is the body of POST /v1/readers/{serial}/status.
type ReaderStatus struct {
	Status string `json:"status"` // active, suspended, blacklisted
}

func (s *Server) readerStatus(w http.ResponseWriter, r *http.Request) error {
	var req ReaderStatus
	if err := readJSON(r, &req); err != nil {
		return err
	}
	var st state.ReaderStatus
	if err := st.UnmarshalText([]byte(req.Status)); err != nil || st == 0 {
		return errorf(http.StatusBadRequest, "status %q: want active, suspended or blacklisted", req.Status)
	}
	serial := r.PathValue("serial")
	before, _ := s.State.Reader(serial)
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpSetReaderStatus, Serial: serial, Status: st, By: s.actor(r)}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "reader.status", Reader: serial, Detail: before.Status.String() + " -> " + st.String()})
	rd, _ := s.State.Reader(serial)
	return writeJSON(w, http.StatusOK, s.readerInfo(rd))
}

// Affinity is the body of PUT /v1/readers/{serial}/affinity.
type Affinity struct {
	SAMs []string `json:"sams"` // SAM IDs; empty clears the entry
}

func (s *Server) setAffinity(w http.ResponseWriter, r *http.Request) error {
	var req Affinity
	if err := readJSON(r, &req); err != nil {
		return err
	}
	serial := r.PathValue("serial")
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpClearAffinity, Serial: serial, By: s.actor(r)}
	if len(req.SAMs) > 0 {
		cmd.Op = state.OpSetAffinity
		for _, s := range req.SAMs {
			id, err := ga467.ParseSAMID(strings.TrimSpace(s))
			if err != nil {
				return errorf(http.StatusBadRequest, "%v", err)
			}
			cmd.SAMs = append(cmd.SAMs, id)
		}
	}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "reader.affinity", Reader: serial, Count: len(cmd.SAMs)})
	rd, ok := s.State.Reader(serial)
	if !ok {
		return writeJSON(w, http.StatusOK, map[string]any{"serial": serial, "sams": req.SAMs})
	}
	return writeJSON(w, http.StatusOK, s.readerInfo(rd))
}

func (s *Server) stats(w http.ResponseWriter, r *http.Request) error {
	out := map[string]any{"rack": s.Rack.Stats(), "cards_blacklisted": s.State.CardCount(), "readers": len(s.State.Readers())}
	if s.Counters != nil {
		for k, v := range s.Counters() {
			out[k] = v
		}
	}
	return writeJSON(w, http.StatusOK, out)
}

// audit answers GET /v1/audit?kind=&actor=&since=&until=&n= (times in
// RFC 3339), newest first.
func (s *Server) audit(w http.ResponseWriter, r *http.Request) error {
	q := audit.Query{N: 50}
	p := r.URL.Query()
	for k := range p {
		switch k {
		case "n", "kind", "actor", "since", "until":
		default:
			return errorf(http.StatusBadRequest, "unknown parameter %q (n, kind, actor, since, until)", k)
		}
	}
	if v := p.Get("n"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > audit.MaxQuery {
			return errorf(http.StatusBadRequest, "n must be 1..%d", audit.MaxQuery)
		}
		q.N = n
	}
	q.Kind, q.Actor = p.Get("kind"), p.Get("actor")
	for _, t := range []struct {
		name string
		dst  *time.Time
	}{{"since", &q.Since}, {"until", &q.Until}} {
		if v := p.Get(t.name); v != "" {
			tm, err := time.Parse(time.RFC3339Nano, v)
			if err != nil {
				return errorf(http.StatusBadRequest, "%s %q: want an RFC 3339 time such as 2026-01-02T15:04:05Z", t.name, v)
			}
			*t.dst = tm
		}
	}
	if s.Audit == nil {
		return writeJSON(w, http.StatusOK, []audit.Event{})
	}
	evs, err := s.Audit(q)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, evs)
}
