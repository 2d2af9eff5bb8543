// Package admin is the appliance's HTTP admin API, served on loopback: the
// rack's slots and the hardware team's operations on them, the card and
// reader blacklists, the reader registry (adding a reader issues its
// credential bundle), the terminal→SAM table, counters and recent audit
// events. samctl is its client (Client in this package).
//
// Every response is JSON. Errors are {"error": "…"} with a 4xx/5xx status;
// handlers return errors instead of writing them by hand.
package admin

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/appliance/audit"
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

// Provisioner registers readers and issues their credential bundles.
type Provisioner interface {
	AddReader(ctx context.Context, serial, cipher, note string) (*credentials.Bundle, error)
}

// Server serves the admin API.
type Server struct {
	State     state.Store
	Rack      Rack
	Readers   Provisioner
	Audit     func(n int) []audit.Event // recent events, newest last
	Counters  func() map[string]any     // dispatcher and audit counters
	Logger    *slog.Logger
	MaxImport int64 // bytes of a card list import (default 64 MiB)
}

// Error is an error with an HTTP status, safe to show the caller.
type Error struct {
	Status int
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

func errorf(status int, format string, a ...any) error {
	return &Error{Status: status, Msg: fmt.Sprintf(format, a...)}
}

type handler func(w http.ResponseWriter, r *http.Request) error

// Handler returns the API's http.Handler.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern string, fn handler) { mux.Handle(pattern, s.wrap(fn)) }
	h("GET /v1/health", s.health)
	h("GET /v1/slots", s.slots)
	h("POST /v1/slots/{id}/{action}", s.slotAction)
	h("GET /v1/blacklist/cards", s.listCards)
	h("POST /v1/blacklist/cards", s.addCards)
	h("POST /v1/blacklist/cards/import", s.importCards)
	h("DELETE /v1/blacklist/cards/{serial}", s.removeCard)
	h("GET /v1/blacklist/readers", s.listReaderBlacklist)
	h("POST /v1/blacklist/readers", s.addReaderBlacklist)
	h("DELETE /v1/blacklist/readers/{serial}", s.removeReaderBlacklist)
	h("GET /v1/readers", s.listReaders)
	h("POST /v1/readers", s.addReader)
	h("DELETE /v1/readers/{serial}", s.deleteReader)
	h("POST /v1/readers/{serial}/status", s.readerStatus)
	h("PUT /v1/readers/{serial}/affinity", s.setAffinity)
	h("GET /v1/stats", s.stats)
	h("GET /v1/audit", s.audit)
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
		switch {
		case errors.As(err, &he):
			status, msg = he.Status, he.Msg
		case errors.Is(err, state.ErrInvalidCommand), errors.Is(err, rack.ErrUnknownSlot), errors.Is(err, rack.ErrNotAllowed):
			status, msg = http.StatusBadRequest, err.Error()
		case errors.Is(err, state.ErrUnknownReader):
			status, msg = http.StatusNotFound, err.Error()
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

func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return errorf(http.StatusBadRequest, "bad request body: %v", err)
	}
	return nil
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) error {
	st := s.Rack.Stats()
	status := "ok"
	if st.Idle+st.Busy == 0 {
		status = "degraded: no SAM in service"
	}
	return writeJSON(w, http.StatusOK, map[string]any{"status": status, "rack": st})
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
	By     string   `json:"by,omitempty"`
}

func (s *Server) addCards(w http.ResponseWriter, r *http.Request) error {
	var req AddCards
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if len(req.Cards) == 0 {
		return errorf(http.StatusBadRequest, "no cards")
	}
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpAddCards, Reason: req.Reason, By: by(req.By)}
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
	return writeJSON(w, http.StatusOK, map[string]int{"added": len(cmd.Cards), "count": s.State.CardCount()})
}

func by(s string) string {
	if s == "" {
		return "operator"
	}
	return s
}

func (s *Server) importCards(w http.ResponseWriter, r *http.Request) error {
	max := s.MaxImport
	if max <= 0 {
		max = 64 << 20
	}
	entries, err := state.ParseCardListEntries(http.MaxBytesReader(w, r.Body, max))
	if err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	reason := r.URL.Query().Get("reason")
	if reason == "" {
		reason = "imported"
	}
	for _, cmd := range state.CardCommands(entries, reason, by(r.URL.Query().Get("by"))) {
		if err := s.State.Apply(r.Context(), cmd); err != nil {
			return err
		}
	}
	return writeJSON(w, http.StatusOK, map[string]int{"added": len(entries), "count": s.State.CardCount()})
}

func (s *Server) removeCard(w http.ResponseWriter, r *http.Request) error {
	serial, err := parseSerial(r.PathValue("serial"))
	if err != nil {
		return err
	}
	if _, ok := s.State.CardBlacklisted(serial); !ok {
		return errorf(http.StatusNotFound, "card %s is not on the blacklist", r.PathValue("serial"))
	}
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpRemoveCards, Cards: []state.CardSerial{serial}, By: "operator"}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
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
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpAddReaderBlacklist, Serial: req.Serial, Reason: req.Reason, By: "operator"}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, req)
}

func (s *Server) removeReaderBlacklist(w http.ResponseWriter, r *http.Request) error {
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpRemoveReaderBlacklist, Serial: r.PathValue("serial"), By: "operator"}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
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
	b, err := s.Readers.AddReader(r.Context(), req.Serial, req.Cipher, req.Note)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, b)
}

func (s *Server) deleteReader(w http.ResponseWriter, r *http.Request) error {
	serial := r.PathValue("serial")
	if _, ok := s.State.Reader(serial); !ok {
		return errorf(http.StatusNotFound, "reader %s is not registered", serial)
	}
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpDeleteReader, Serial: serial, By: "operator"}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
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
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpSetReaderStatus, Serial: serial, Status: st, By: "operator"}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
	if st == state.ReaderActive {
		reset := &state.Command{Version: state.CommandVersion, Op: state.OpResetAuthFailures, Serial: serial, By: "operator"}
		if err := s.State.Apply(r.Context(), reset); err != nil {
			return err
		}
	}
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
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpClearAffinity, Serial: serial, By: "operator"}
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

func (s *Server) audit(w http.ResponseWriter, r *http.Request) error {
	n := 50
	if q := r.URL.Query().Get("n"); q != "" {
		v, err := strconv.Atoi(q)
		if err != nil || v < 1 || v > 10000 {
			return errorf(http.StatusBadRequest, "n must be 1..10000")
		}
		n = v
	}
	if s.Audit == nil {
		return writeJSON(w, http.StatusOK, []audit.Event{})
	}
	return writeJSON(w, http.StatusOK, s.Audit(n))
}
