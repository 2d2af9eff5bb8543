package admin_test

// Table tests of the admin API over real TLS (httptest with the appliance's
// own CA code): every endpoint × every kind of caller, then the bad input
// of the issue — wrong Host, foreign Origin, wrong content type, oversized
// or non-JSON body, a spoofed "by" — each refused with its status and a
// clear message, and nothing changed.

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/appliance/pki"
	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/rack"
)

// fakeRack records the slot actions it is asked for.
type fakeRack struct {
	mu      sync.Mutex
	actions []string
	stats   rack.Stats
}

func (f *fakeRack) do(a string, slot int) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if slot != 1 {
		return rack.ErrUnknownSlot
	}
	f.actions = append(f.actions, fmt.Sprintf("%s %d", a, slot))
	return nil
}
func (f *fakeRack) Slots() []rack.SlotInfo { return []rack.SlotInfo{{ID: 1, Driver: "sim"}} }
func (f *fakeRack) Stats() rack.Stats {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.stats
}
func (f *fakeRack) Drain(_ context.Context, s int) error { return f.do("drain", s) }
func (f *fakeRack) Enable(s int) error                   { return f.do("enable", s) }
func (f *fakeRack) PowerOff(s int) error                 { return f.do("power-off", s) }
func (f *fakeRack) PowerOn(s int) error                  { return f.do("power-on", s) }
func (f *fakeRack) PowerCycle(s int) error               { return f.do("power-cycle", s) }
func (f *fakeRack) Locate(s int, on bool) error          { return f.do(fmt.Sprintf("locate-%v", on), s) }
func (f *fakeRack) ClearQuarantine(s int) error          { return f.do("clear-quarantine", s) }
func (f *fakeRack) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.actions)
}

// provisioner issues through the real PKI into the Memory store.
type provisioner struct {
	p  *pki.PKI
	st *state.Memory
}

func (p provisioner) AddReaderBy(ctx context.Context, serial, cipher, note, by string) (*credentials.Bundle, error) {
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpPutReader, By: by,
		Reader: &state.Reader{Serial: serial, Cipher: cipher, Key: make([]byte, 16), Note: note}}
	if err := p.st.Apply(ctx, cmd); err != nil {
		return nil, err
	}
	return &credentials.Bundle{ReaderSerial: serial, Cipher: cipher}, nil
}

func (p provisioner) AddOperator(ctx context.Context, name string, role state.Role, by string) (*admin.Credentials, error) {
	certPEM, keyPEM, err := p.p.IssueOperator(name)
	if err != nil {
		return nil, err
	}
	pair, _ := tls.X509KeyPair(certPEM, keyPEM)
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpPutOperator, By: by, Operator: &state.Operator{
		Name: name, Role: role, CertSerial: admin.CertSerial(pair.Leaf), Fingerprint: admin.Fingerprint(pair.Leaf)}}
	if err := p.st.Apply(ctx, cmd); err != nil {
		return nil, err
	}
	return &admin.Credentials{Operator: name, CertPEM: string(certPEM), KeyPEM: string(keyPEM)}, nil
}

// world is the CA, a foreign CA and a certificate for every kind of caller.
type world struct {
	ca, foreign *pki.PKI
	certs       map[string]tls.Certificate // caller → certificate
	ops         []state.Operator           // identities to preload
}

var (
	worldOnce sync.Once
	theWorld  world
)

// callers, in the order of the table.
var callers = []string{"none", "foreign-ca", "reader", "revoked", "replaced", "unknown", "viewer", "operator", "admin"}

func getWorld(t *testing.T) world {
	worldOnce.Do(func() {
		dir := t.TempDir()
		ca, err := pki.LoadOrCreate(filepath.Join(dir, "ca"), nil)
		if err != nil {
			t.Fatal(err)
		}
		foreign, err := pki.LoadOrCreate(filepath.Join(dir, "foreign"), nil)
		if err != nil {
			t.Fatal(err)
		}
		w := world{ca: ca, foreign: foreign, certs: map[string]tls.Certificate{}}
		pair := func(c, k []byte, err error) tls.Certificate {
			if err != nil {
				t.Fatal(err)
			}
			p, err := tls.X509KeyPair(c, k)
			if err != nil {
				t.Fatal(err)
			}
			return p
		}
		w.certs["foreign-ca"] = pair(foreign.IssueOperator("admin"))
		w.certs["reader"] = pair(ca.IssueReader("admin"))
		for _, c := range []struct {
			name string
			role state.Role
		}{{"viewer", state.RoleViewer}, {"operator", state.RoleOperator}, {"admin", state.RoleAdmin}, {"revoked", state.RoleAdmin}, {"replaced", state.RoleAdmin}, {"victim", state.RoleViewer}} {
			p := pair(ca.IssueOperator(c.name))
			w.certs[c.name] = p
			w.ops = append(w.ops, state.Operator{Name: c.name, Role: c.role, CertSerial: admin.CertSerial(p.Leaf), Fingerprint: admin.Fingerprint(p.Leaf)})
		}
		w.certs["unknown"] = pair(ca.IssueOperator("nobody"))
		// "replaced": the state holds a newer certificate's serial.
		newer := pair(ca.IssueOperator("replaced"))
		for i := range w.ops {
			if w.ops[i].Name == "replaced" {
				w.ops[i].CertSerial = admin.CertSerial(newer.Leaf)
			}
		}
		theWorld = w
	})
	return theWorld
}

const (
	card1   = "0102030405060708"
	reader1 = "R1"
)

// env is one admin server over TLS on fresh state.
type env struct {
	t      *testing.T
	w      world
	st     *state.Memory
	rack   *fakeRack
	srv    *httptest.Server
	mu     sync.Mutex
	events []audit.Event
	clock  time.Time // the server's clock; mu guards it
}

func (e *env) now() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.clock
}

func (e *env) advance(d time.Duration) {
	e.mu.Lock()
	e.clock = e.clock.Add(d)
	e.mu.Unlock()
}

func newEnv(t *testing.T) *env {
	w := getWorld(t)
	e := &env{t: t, w: w, st: state.NewMemory(), rack: &fakeRack{stats: rack.Stats{Total: 2, Enabled: 2, Idle: 2}}, clock: time.Now()}
	ctx := context.Background()
	apply := func(c *state.Command) {
		c.Version = state.CommandVersion
		if err := e.st.Apply(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, o := range w.ops {
		apply(&state.Command{Op: state.OpPutOperator, By: "test", Operator: &o})
	}
	apply(&state.Command{Op: state.OpRevokeOperator, By: "test", Operator: &state.Operator{Name: "revoked"}})
	apply(&state.Command{Op: state.OpAddCards, Reason: "stolen", By: "test", Cards: []state.CardSerial{{1, 2, 3, 4, 5, 6, 7, 8}}})
	apply(&state.Command{Op: state.OpPutReader, By: "test", Reader: &state.Reader{Serial: reader1, Cipher: "sm4", Key: make([]byte, 16)}})
	apply(&state.Command{Op: state.OpAddReaderBlacklist, By: "test", Serial: reader1, Reason: "lost"})
	s := &admin.Server{
		State: e.st, Rack: e.rack, Readers: provisioner{w.ca, e.st}, ClientCAs: w.ca.Pool(),
		Hosts:    []string{"samrack", "rack1.example", "192.0.2.7"},
		Now:      e.now,
		Record:   func(ev audit.Event) { e.mu.Lock(); e.events = append(e.events, ev); e.mu.Unlock() },
		HashCard: func(s [8]byte) string { return strings.Repeat("ab", 16) },
		Cluster:  &fakeCluster{},
		IsNode:   func(id string) bool { return id == "node-2" },
		Audit: func(q audit.Query) ([]audit.Event, error) {
			e.mu.Lock()
			defer e.mu.Unlock()
			var out []audit.Event
			for _, ev := range slices.Backward(e.events) {
				if q.Match(ev) {
					out = append(out, ev)
				}
			}
			return out, nil
		},
	}
	e.srv = httptest.NewUnstartedServer(s.Handler())
	e.srv.TLS = &tls.Config{MinVersion: tls.VersionTLS13, Certificates: []tls.Certificate{w.ca.Server()}, ClientAuth: tls.RequestClientCert}
	e.srv.StartTLS()
	t.Cleanup(e.srv.Close)
	return e
}

// client returns an HTTPS client presenting the caller's certificate.
func (e *env) client(caller string) *http.Client {
	cfg := &tls.Config{MinVersion: tls.VersionTLS13, RootCAs: e.w.ca.Pool(), ServerName: pki.ServerName}
	if c, ok := e.w.certs[caller]; ok {
		cfg.Certificates = []tls.Certificate{c}
	}
	tr := &http.Transport{TLSClientConfig: cfg}
	e.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// snapshot is everything a request could change.
func (e *env) snapshot() string {
	var b bytes.Buffer
	if err := e.st.Snapshot(&b); err != nil {
		e.t.Fatal(err)
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	changes := 0
	for _, ev := range e.events {
		if ev.Kind != "admin.denied" {
			changes++
		}
	}
	return fmt.Sprintf("%x/%d/%d", b.Bytes(), changes, e.rack.count())
}

func (e *env) lastEvent() audit.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(e.events) == 0 {
		return audit.Event{}
	}
	return e.events[len(e.events)-1]
}

type request struct {
	method, path, ctype, body string
	header                    map[string]string
	host                      string
}

func (e *env) do(c *http.Client, r request) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(r.method, e.srv.URL+r.path, strings.NewReader(r.body))
	if err != nil {
		e.t.Fatal(err)
	}
	if r.ctype != "" {
		req.Header.Set("Content-Type", r.ctype)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	if r.host != "" {
		req.Host = r.host
	}
	resp, err := c.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var msg struct{ Error string }
	json.Unmarshal(data, &msg)
	if resp.StatusCode >= 300 && msg.Error == "" {
		e.t.Fatalf("%s %s: %d without an error message: %s", r.method, r.path, resp.StatusCode, data)
	}
	return resp.StatusCode, msg.Error
}

// endpoint is a concrete request for each route, and its status on success.
type endpoint struct {
	req    request
	ok     int
	change string // audit kind of the change, "" for reads
}

func endpoints() map[string]endpoint {
	j := admin.JSONType
	return map[string]endpoint{
		"GET /healthz":                          {request{method: "GET", path: "/healthz"}, 200, ""},
		"GET /v1/health":                        {request{method: "GET", path: "/v1/health"}, 200, ""},
		"GET /v1/whoami":                        {request{method: "GET", path: "/v1/whoami"}, 200, ""},
		"GET /v1/slots":                         {request{method: "GET", path: "/v1/slots"}, 200, ""},
		"POST /v1/slots/{id}/{action}":          {request{method: "POST", path: "/v1/slots/1/power-off", ctype: j}, 200, "slot.power-off"},
		"GET /v1/blacklist/cards":               {request{method: "GET", path: "/v1/blacklist/cards"}, 200, ""},
		"POST /v1/blacklist/cards":              {request{method: "POST", path: "/v1/blacklist/cards", ctype: j, body: `{"cards":["1111111111111111"],"reason":"stolen"}`}, 200, "blacklist.card.add"},
		"POST /v1/blacklist/cards/import":       {request{method: "POST", path: "/v1/blacklist/cards/import", ctype: admin.CardListType, body: "2222222222222222,lost\n3333333333333333\n"}, 200, "blacklist.card.import"},
		"DELETE /v1/blacklist/cards/{serial}":   {request{method: "DELETE", path: "/v1/blacklist/cards/" + card1, ctype: j}, 200, "blacklist.card.remove"},
		"GET /v1/blacklist/readers":             {request{method: "GET", path: "/v1/blacklist/readers"}, 200, ""},
		"POST /v1/blacklist/readers":            {request{method: "POST", path: "/v1/blacklist/readers", ctype: j, body: `{"serial":"R9","reason":"stolen"}`}, 200, "blacklist.reader.add"},
		"DELETE /v1/blacklist/readers/{serial}": {request{method: "DELETE", path: "/v1/blacklist/readers/" + reader1, ctype: j}, 200, "blacklist.reader.remove"},
		"GET /v1/readers":                       {request{method: "GET", path: "/v1/readers"}, 200, ""},
		"POST /v1/readers":                      {request{method: "POST", path: "/v1/readers", ctype: j, body: `{"serial":"R2"}`}, 201, "reader.add"},
		"DELETE /v1/readers/{serial}":           {request{method: "DELETE", path: "/v1/readers/" + reader1, ctype: j}, 200, "reader.remove"},
		"POST /v1/readers/{serial}/status":      {request{method: "POST", path: "/v1/readers/R1/status", ctype: j, body: `{"status":"suspended"}`}, 200, "reader.status"},
		"PUT /v1/readers/{serial}/affinity":     {request{method: "PUT", path: "/v1/readers/R1/affinity", ctype: j, body: `{"sams":["05.01-20240101-0000000001-0000000007"]}`}, 200, "reader.affinity"},
		"GET /v1/operators":                     {request{method: "GET", path: "/v1/operators"}, 200, ""},
		"POST /v1/operators":                    {request{method: "POST", path: "/v1/operators", ctype: j, body: `{"name":"carol","role":"operator"}`}, 201, "operator.add"},
		"POST /v1/operators/{name}/role":        {request{method: "POST", path: "/v1/operators/victim/role", ctype: j, body: `{"role":"operator"}`}, 200, "operator.role"},
		"DELETE /v1/operators/{name}":           {request{method: "DELETE", path: "/v1/operators/victim", ctype: j}, 200, "operator.revoke"},
		"GET /v1/stats":                         {request{method: "GET", path: "/v1/stats"}, 200, ""},
		"GET /v1/audit":                         {request{method: "GET", path: "/v1/audit?kind=blacklist&n=5"}, 200, ""},
		"GET /v1/cluster/members":               {request{method: "GET", path: "/v1/cluster/members"}, 200, ""},
		"GET /v1/inventory":                     {request{method: "GET", path: "/v1/inventory"}, 200, ""},
		"POST /v1/cluster/tokens":               {request{method: "POST", path: "/v1/cluster/tokens", ctype: j, body: `{"ttl":"10m"}`}, 201, "cluster.token"},
		"DELETE /v1/cluster/members/{id}":       {request{method: "DELETE", path: "/v1/cluster/members/node-3", ctype: j}, 200, "cluster.remove"},
		"POST /v1/cluster/transfer-leader":      {request{method: "POST", path: "/v1/cluster/transfer-leader", ctype: j, body: `{}`}, 200, "cluster.transfer-leader"},
		"GET /v1/cluster/snapshot":              {request{method: "GET", path: "/v1/cluster/snapshot"}, 200, "cluster.snapshot.save"},
		"POST /v1/cluster/snapshot":             {request{method: "POST", path: "/v1/cluster/snapshot", ctype: admin.SnapshotType, body: "good"}, 200, "cluster.snapshot.restore"},
		"GET /v1/cluster/digest":                {request{method: "GET", path: "/v1/cluster/digest"}, 200, ""},
	}
}

var callerRole = map[string]state.Role{"viewer": state.RoleViewer, "operator": state.RoleOperator, "admin": state.RoleAdmin}

// TestEndpointsByCaller runs every endpoint for every kind of caller: the
// ones without a valid identity get 401 (403 for a reader certificate),
// a role too low gets 403, and neither changes anything; a role high
// enough succeeds and its change is audited with its name as the actor.
func TestEndpointsByCaller(t *testing.T) {
	eps := endpoints()
	routes := (&admin.Server{}).Routes()
	for pattern := range routes {
		if _, ok := eps[pattern]; !ok {
			t.Fatalf("route %s has no case in the table", pattern)
		}
	}
	for pattern, role := range routes {
		ep := eps[pattern]
		for _, caller := range callers {
			t.Run(pattern+"/"+caller, func(t *testing.T) {
				e := newEnv(t)
				before := e.snapshot()
				status, msg := e.do(e.client(caller), ep.req)
				want := ep.ok
				if role != 0 {
					switch r, ok := callerRole[caller]; {
					case caller == "reader":
						want = http.StatusForbidden
					case !ok:
						want = http.StatusUnauthorized
					case r < role:
						want = http.StatusForbidden
					}
				}
				if status != want {
					t.Fatalf("status %d (%q), want %d", status, msg, want)
				}
				if status >= 300 {
					if after := e.snapshot(); after != before {
						t.Fatal("a refused request changed something")
					}
					if ev := e.lastEvent(); ev.Kind != "admin.denied" || !strings.Contains(ev.Detail, msg) {
						t.Fatalf("refusal not audited: %+v", ev)
					}
					return
				}
				if ep.change == "" {
					if after := e.snapshot(); after != before {
						t.Fatal("a read changed something")
					}
					return
				}
				ev := e.lastEvent()
				if ev.Kind != ep.change || ev.Actor != caller {
					t.Fatalf("audit event %+v, want kind %s by %s", ev, ep.change, caller)
				}
			})
		}
	}
}

// TestBadInput: each malformed request gets its status and message and
// changes nothing.
func TestBadInput(t *testing.T) {
	j := admin.JSONType
	addCard := request{method: "POST", path: "/v1/blacklist/cards", ctype: j, body: `{"cards":["1111111111111111"],"reason":"x"}`}
	with := func(r request, f func(*request)) request { f(&r); return r }
	tests := []struct {
		name   string
		req    request
		status int
		msg    string
	}{
		{"wrong host", with(addCard, func(r *request) { r.host = "evil.example:7480" }), 421, "is not a name of this appliance"},
		{"rebinding host on a read", request{method: "GET", path: "/v1/readers", host: "attacker.example"}, 421, "is not a name"},
		{"rebinding host on healthz", request{method: "GET", path: "/healthz", host: "attacker.example"}, 421, "is not a name"},
		{"foreign origin", with(addCard, func(r *request) { r.header = map[string]string{"Origin": "https://evil.example"} }), 403, "origin"},
		{"http origin", with(addCard, func(r *request) { r.header = map[string]string{"Origin": "http://127.0.0.1"} }), 403, "origin"},
		{"null origin", with(addCard, func(r *request) { r.header = map[string]string{"Origin": "null"} }), 403, "origin"},
		{"cross-site fetch", with(addCard, func(r *request) { r.header = map[string]string{"Sec-Fetch-Site": "cross-site"} }), 403, "cross-site"},
		{"text/plain body", with(addCard, func(r *request) { r.ctype = "text/plain" }), 415, "want application/json"},
		{"form body", with(addCard, func(r *request) { r.ctype = "application/x-www-form-urlencoded" }), 415, "want application/json"},
		{"no content type", with(addCard, func(r *request) { r.ctype = "" }), 415, "want application/json"},
		{"slot action as a form post", request{method: "POST", path: "/v1/slots/1/power-off", ctype: "application/x-www-form-urlencoded"}, 415, "want application/json"},
		{"import as text/plain", request{method: "POST", path: "/v1/blacklist/cards/import", ctype: "text/plain", body: "2222222222222222\n"}, 415, "want " + admin.CardListType},
		{"non-JSON body", with(addCard, func(r *request) { r.body = "cards=1111111111111111" }), 400, "bad request body"},
		{"trailing data", with(addCard, func(r *request) { r.body += `{"cards":["2222222222222222"]}` }), 400, "trailing data"},
		{"spoofed by", with(addCard, func(r *request) { r.body = `{"cards":["1111111111111111"],"reason":"x","by":"mallory"}` }), 400, `unknown field "by"`},
		{"spoofed by on import", request{method: "POST", path: "/v1/blacklist/cards/import?by=mallory", ctype: admin.CardListType, body: "2222222222222222\n"}, 400, "taken from your certificate"},
		{"oversized body", with(addCard, func(r *request) {
			r.body = `{"cards":["1111111111111111"],"reason":"` + strings.Repeat("x", admin.MaxBody) + `"}`
		}), 413, "larger than"},
		{"bad card serial", with(addCard, func(r *request) { r.body = `{"cards":["11"],"reason":"x"}` }), 400, "16 hex digits"},
		{"empty import", request{method: "POST", path: "/v1/blacklist/cards/import", ctype: admin.CardListType, body: "# nothing\n"}, 400, "no cards"},
		{"bad import first line", request{method: "POST", path: "/v1/blacklist/cards/import?first_line=0", ctype: admin.CardListType, body: "2222222222222222\n"}, 400, "first_line"},
		{"bad import reason", request{method: "POST", path: "/v1/blacklist/cards/import?reason=%01", ctype: admin.CardListType, body: "2222222222222222\n"}, 400, "reason"},
		{"unknown slot action", request{method: "POST", path: "/v1/slots/1/explode", ctype: j}, 404, "unknown slot action"},
		{"unknown slot", request{method: "POST", path: "/v1/slots/9/power-off", ctype: j}, 400, "unknown slot"},
		{"remove a card not listed", request{method: "DELETE", path: "/v1/blacklist/cards/9999999999999999", ctype: j}, 404, "not on the blacklist"},
		{"bad role", request{method: "POST", path: "/v1/operators", ctype: j, body: `{"name":"dave","role":"root"}`}, 400, "want viewer, operator or admin"},
		{"bad operator name", request{method: "POST", path: "/v1/operators", ctype: j, body: `{"name":"../x","role":"viewer"}`}, 400, "operator name"},
		{"existing operator", request{method: "POST", path: "/v1/operators", ctype: j, body: `{"name":"viewer","role":"admin"}`}, 409, "already exists"},
		{"reuse a revoked name", request{method: "POST", path: "/v1/operators", ctype: j, body: `{"name":"revoked","role":"viewer"}`}, 409, "names are not reused"},
		{"revoke unknown", request{method: "DELETE", path: "/v1/operators/zed", ctype: j}, 404, "unknown operator"},
		{"revoke twice", request{method: "DELETE", path: "/v1/operators/revoked", ctype: j}, 409, "revoked"},
		{"bad audit time", request{method: "GET", path: "/v1/audit?since=yesterday"}, 400, "RFC 3339"},
		{"unknown audit parameter", request{method: "GET", path: "/v1/audit?who=x"}, 400, "unknown parameter"},
		{"unknown endpoint", request{method: "GET", path: "/v1/secrets"}, 404, "no such endpoint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			before := e.snapshot()
			status, msg := e.do(e.client("admin"), tt.req)
			if status != tt.status || !strings.Contains(msg, tt.msg) {
				t.Fatalf("got %d %q, want %d with %q", status, msg, tt.status, tt.msg)
			}
			if e.snapshot() != before {
				t.Fatal("a refused request changed something")
			}
		})
	}
}

// Good Host and Origin values pass: the certificate's names and IPs,
// loopback, and the same origin.
func TestHostAndOriginAccepted(t *testing.T) {
	e := newEnv(t)
	c := e.client("viewer")
	for _, r := range []request{
		{method: "GET", path: "/v1/slots", host: "samrack:7480"},
		{method: "GET", path: "/v1/slots", host: "RACK1.example."},
		{method: "GET", path: "/v1/slots", host: "192.0.2.7:7480"},
		{method: "GET", path: "/v1/slots", host: "localhost"},
		{method: "GET", path: "/v1/slots", host: "[::1]:7480"},
		{method: "GET", path: "/v1/slots", host: "rack1.example:7480", header: map[string]string{"Origin": "https://rack1.example:7480", "Sec-Fetch-Site": "same-origin"}},
	} {
		if status, msg := e.do(c, r); status != 200 {
			t.Fatalf("host %s origin %q: %d %s", r.host, r.header["Origin"], status, msg)
		}
	}
}

// Plain HTTP gets a clear 401, even on loopback.
func TestPlainHTTPRefused(t *testing.T) {
	e := newEnv(t)
	plain := httptest.NewServer(e.srv.Config.Handler)
	defer plain.Close()
	resp, err := http.Post(plain.URL+"/v1/blacklist/cards", admin.JSONType, strings.NewReader(`{"cards":["1111111111111111"],"reason":"x"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 401 || !strings.Contains(string(data), "HTTPS with a client certificate") {
		t.Fatalf("%d %s", resp.StatusCode, data)
	}
}

// Revocation and role changes take effect on the very next request, on
// the same connection.
func TestRevocationAtOnce(t *testing.T) {
	e := newEnv(t)
	victim, adm := e.client("victim"), e.client("admin")
	get := request{method: "GET", path: "/v1/slots"}
	power := request{method: "POST", path: "/v1/slots/1/power-on", ctype: admin.JSONType}
	if s, m := e.do(victim, get); s != 200 {
		t.Fatalf("%d %s", s, m)
	}
	if s, _ := e.do(victim, power); s != 403 {
		t.Fatalf("viewer powered a slot: %d", s)
	}
	if s, m := e.do(adm, request{method: "POST", path: "/v1/operators/victim/role", ctype: admin.JSONType, body: `{"role":"operator"}`}); s != 200 {
		t.Fatalf("%d %s", s, m)
	}
	if s, m := e.do(victim, power); s != 200 {
		t.Fatalf("promoted operator refused: %d %s", s, m)
	}
	if s, m := e.do(adm, request{method: "DELETE", path: "/v1/operators/victim", ctype: admin.JSONType}); s != 200 {
		t.Fatalf("%d %s", s, m)
	}
	if s, m := e.do(victim, get); s != 401 || !strings.Contains(m, "revoked") {
		t.Fatalf("revoked operator: %d %s", s, m)
	}
	// The last admin cannot be revoked or demoted (revoked admins do not count).
	if s, m := e.do(adm, request{method: "DELETE", path: "/v1/operators/replaced", ctype: admin.JSONType}); s != 200 {
		t.Fatalf("%d %s", s, m)
	}
	for _, r := range []request{
		{method: "DELETE", path: "/v1/operators/admin", ctype: admin.JSONType},
		{method: "POST", path: "/v1/operators/admin/role", ctype: admin.JSONType, body: `{"role":"viewer"}`},
	} {
		if s, m := e.do(adm, r); s != 409 || !strings.Contains(m, "last admin") {
			t.Fatalf("%s %s: %d %s", r.method, r.path, s, m)
		}
	}
}

// /healthz answers without a certificate: ok, or degraded with the reason.
func TestHealthz(t *testing.T) {
	e := newEnv(t)
	c := e.client("none")
	if s, _ := e.do(c, request{method: "GET", path: "/healthz"}); s != 200 {
		t.Fatalf("healthy: %d", s)
	}
	e.rack.mu.Lock()
	e.rack.stats = rack.Stats{Total: 2, Quarantined: 1, Offline: 1}
	e.rack.mu.Unlock()
	req, _ := http.NewRequest("GET", e.srv.URL+"/healthz", nil)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var h admin.Health
	json.NewDecoder(resp.Body).Decode(&h)
	if resp.StatusCode != 503 || h.Status != "degraded" || h.Reason != "no SAM in service; 1 slot(s) quarantined" || h.Rack != nil {
		t.Fatalf("%d %+v", resp.StatusCode, h)
	}
}

// FuzzRequest sends arbitrary requests as the admin through the whole
// handler: no panic, no 5xx, an error answer always carries a message.
func FuzzRequest(f *testing.F) {
	for _, ep := range endpoints() {
		f.Add(ep.req.method, ep.req.path, ep.req.ctype, ep.req.body)
	}
	f.Add("POST", "/v1/blacklist/cards", admin.JSONType, `{"cards":[],"reason":"`+strings.Repeat("é", 300)+`"}`)
	f.Add("PUT", "/v1/readers/%00/affinity", admin.JSONType, `{"sams":["x"]}`)
	f.Add("POST", "/v1/blacklist/cards/import?reason=%0a", admin.CardListType, "0000000000000000\n")
	var e *env
	var leaf *x509.Certificate
	f.Fuzz(func(t *testing.T, method, path, ctype, body string) {
		if e == nil {
			e = newEnv(t)
			leaf = e.w.certs["admin"].Leaf
		}
		if !strings.HasPrefix(path, "/") {
			path = "/" + path
		}
		req, err := http.NewRequest(method, "https://127.0.0.1"+path, strings.NewReader(body))
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Content-Type", ctype)
		req.TLS = &tls.ConnectionState{Version: tls.VersionTLS13, PeerCertificates: []*x509.Certificate{leaf}}
		rec := httptest.NewRecorder()
		e.srv.Config.Handler.ServeHTTP(rec, req)
		if rec.Code >= 500 {
			t.Fatalf("%s %s %q: %d %s", method, path, body, rec.Code, rec.Body)
		}
		if rec.Code >= 300 && rec.Code != 301 && rec.Code != 307 && rec.Code != 308 {
			var m struct{ Error string }
			if json.Unmarshal(rec.Body.Bytes(), &m) != nil || m.Error == "" {
				t.Fatalf("%s %s: %d without a message: %q", method, path, rec.Code, rec.Body)
			}
		}
	})
}

// Refusals are audited, but at most MaxDeniedPerMinute a minute: a local
// process without credentials cannot flood the audit log; the next
// recorded refusal counts the ones left out.
func TestDeniedRateLimit(t *testing.T) {
	e := newEnv(t)
	c := e.client("none")
	denied := func() int {
		e.mu.Lock()
		defer e.mu.Unlock()
		n := 0
		for _, ev := range e.events {
			if ev.Kind == "admin.denied" {
				n++
			}
		}
		return n
	}
	for range admin.MaxDeniedPerMinute + 25 {
		if s, _ := e.do(c, request{method: "GET", path: "/v1/slots"}); s != 401 {
			t.Fatalf("status %d", s)
		}
	}
	if n := denied(); n != admin.MaxDeniedPerMinute {
		t.Fatalf("%d refusals recorded in a minute, want %d", n, admin.MaxDeniedPerMinute)
	}
	e.advance(time.Minute)
	e.do(c, request{method: "GET", path: "/v1/slots"})
	if ev := e.lastEvent(); ev.Kind != "admin.denied" || ev.Count != 25 || !strings.Contains(ev.Detail, "25 refusals not recorded") {
		t.Fatalf("after the window: %+v", ev)
	}
}
