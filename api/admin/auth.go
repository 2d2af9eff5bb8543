package admin

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"mime"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/cluster/state"
)

// The admin API's security model.
//
// Authentication is the TLS client certificate, nothing else: no
// passwords, cookies or tokens. The certificate must be signed by the
// installation's CA (ClientCAs), be an operator or the bootstrap admin
// certificate (OrganizationalUnit "operator" or "admin"; reader
// certificates are refused), and its CommonName and serial must match a
// non-revoked operator identity in the state, looked up on every request —
// a revocation or a role change is effective on the next request. The
// identity's role in the state decides what it may do (viewer < operator <
// admin, see each route); the actor of every audit event and of every
// state change is that identity's name, never a field of the request.
//
// Browsers. A browser holding an operator certificate presents it
// automatically (an ambient credential, like a cookie), so the API closes
// the cross-site paths: every request's Host must be a name or address of
// the appliance's certificate or loopback (DNS rebinding); a request with
// an Origin header that is not this very origin (https://Host), or with
// Sec-Fetch-Site cross-site or same-site, is refused; and a request with a
// body must declare application/json (the card list import its own
// type, CardListType), which an HTML form cannot send and which makes a
// cross-origin script pre-flight (refused, the API answers no CORS). A
// browser UI served later from the same origin passes these checks.
//
// /healthz needs no certificate and says only ok or degraded and why.

// Content types of request bodies.
const (
	JSONType = "application/json"
	// CardListType is the body of POST /v1/blacklist/cards/import: the
	// card list text (state.ParseCardListEntries). Not text/plain, which
	// a cross-site form could send.
	CardListType = "application/vnd.samrack.card-list"
)

// MaxBody bounds a JSON request body.
const MaxBody = 1 << 20

// Identity is the authenticated caller of a request.
type Identity struct {
	Name string
	Role state.Role
}

type ctxKey struct{}

// IdentityOf returns the authenticated caller of a request handled by the
// Server.
func IdentityOf(ctx context.Context) (Identity, bool) {
	id, ok := ctx.Value(ctxKey{}).(Identity)
	return id, ok
}

func (s *Server) actor(r *http.Request) string {
	id, _ := IdentityOf(r.Context())
	return id.Name
}

// checkHost refuses a Host that is not the appliance's (DNS rebinding).
func (s *Server) checkHost(r *http.Request) error {
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip != nil {
		if ip.IsLoopback() || slices.ContainsFunc(s.hostIPs, ip.Equal) {
			return nil
		}
	} else if slices.Contains(s.hostNames, host) {
		return nil
	}
	return errorf(http.StatusMisdirectedRequest, "host %q is not a name of this appliance (its certificate names %s)", r.Host, strings.Join(s.Hosts, ", "))
}

// checkOrigin refuses cross-origin browser requests.
func checkOrigin(r *http.Request) error {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "cross-site", "same-site":
		return errorf(http.StatusForbidden, "cross-site request refused")
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return nil
	}
	if !strings.EqualFold(o, "https://"+r.Host) {
		return errorf(http.StatusForbidden, "origin %q refused: the admin API only answers its own origin", o)
	}
	return nil
}

// checkBody requires the declared content type on requests that change
// things and bounds the body.
func checkBody(w http.ResponseWriter, r *http.Request, want string) error {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return nil
	}
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if ct == "" || err != nil || mt != want {
		return errorf(http.StatusUnsupportedMediaType, "Content-Type %q: want %s", ct, want)
	}
	if want == JSONType {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
	}
	return nil
}

// identify authenticates the caller by its client certificate.
func (s *Server) identify(r *http.Request) (Identity, error) {
	if r.TLS == nil {
		return Identity{}, errorf(http.StatusUnauthorized, "the admin API needs HTTPS with a client certificate")
	}
	if len(r.TLS.PeerCertificates) == 0 {
		return Identity{}, errorf(http.StatusUnauthorized, "no client certificate: use an admin credentials file (samctl finds the appliance's own as root; else --creds FILE)")
	}
	if s.ClientCAs == nil {
		return Identity{}, errors.New("admin: no ClientCAs configured")
	}
	leaf := r.TLS.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range r.TLS.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	if fwd, err := s.forwardedLeaf(r); err != nil {
		return Identity{}, err
	} else if fwd != nil {
		leaf, inter = fwd, x509.NewCertPool()
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: s.ClientCAs, Intermediates: inter, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, CurrentTime: s.now()}); err != nil {
		return Identity{}, errorf(http.StatusUnauthorized, "client certificate %q is not valid for this appliance: %v", leaf.Subject.CommonName, err)
	}
	if !slices.ContainsFunc(leaf.Subject.OrganizationalUnit, func(ou string) bool { return ou == "operator" || ou == "admin" }) {
		return Identity{}, errorf(http.StatusForbidden, "certificate %q is not an operator certificate (a reader's cannot use the admin API)", leaf.Subject.CommonName)
	}
	name := leaf.Subject.CommonName
	op, ok := s.operators().Operator(name)
	switch {
	case !ok:
		return Identity{}, errorf(http.StatusUnauthorized, "operator %q is not known to this appliance", name)
	case op.Revoked:
		return Identity{Name: name}, errorf(http.StatusUnauthorized, "operator %q is revoked", name)
	case op.CertSerial != CertSerial(leaf):
		return Identity{Name: name}, errorf(http.StatusUnauthorized, "certificate of operator %q was replaced (serial %s is no longer valid)", name, CertSerial(leaf))
	}
	return Identity{Name: name, Role: op.Role}, nil
}

// guard runs the checks in order — Host, Origin, certificate, role, body —
// and records refusals as admin.denied audit events.
func (s *Server) guard(rt route, w http.ResponseWriter, r *http.Request) (*http.Request, error) {
	if err := s.checkHost(r); err != nil {
		return nil, s.denied(r, "", err)
	}
	if err := checkOrigin(r); err != nil {
		return nil, s.denied(r, "", err)
	}
	if rt.role == 0 {
		return r, nil // /healthz
	}
	id, err := s.identify(r)
	if err != nil {
		return nil, s.denied(r, id.Name, err)
	}
	if id.Role < rt.role {
		return nil, s.denied(r, id.Name, errorf(http.StatusForbidden, "operator %q has role %s; %s needs role %s", id.Name, id.Role, rt.pattern, rt.role))
	}
	want := JSONType
	if rt.bodyType != "" {
		want = rt.bodyType
	}
	if err := checkBody(w, r, want); err != nil {
		return nil, err
	}
	return r.WithContext(context.WithValue(r.Context(), ctxKey{}, id)), nil
}

// MaxDeniedPerMinute bounds the admin.denied events recorded per minute,
// so that a local process without credentials cannot flood the audit log
// and push operators' changes out of its retention; the refusals beyond
// are counted in the next recorded one (Event.Count).
const MaxDeniedPerMinute = 60

func (s *Server) denied(r *http.Request, actor string, err error) error {
	var he *Error
	if s.Record == nil || !errors.As(err, &he) {
		return err
	}
	now := s.now()
	s.deniedMu.Lock()
	if now.Sub(s.deniedWindow) >= time.Minute {
		s.deniedWindow, s.deniedN = now, 0
	}
	s.deniedN++
	if s.deniedN > MaxDeniedPerMinute {
		s.deniedDropped++
		s.deniedMu.Unlock()
		return err
	}
	dropped := s.deniedDropped
	s.deniedDropped = 0
	s.deniedMu.Unlock()
	detail := r.Method + " " + r.URL.Path + ": " + he.Msg
	if dropped > 0 {
		detail = fmt.Sprintf("%s (and %d refusals not recorded before it)", detail, dropped)
	}
	s.Record(audit.Event{Kind: "admin.denied", Actor: actor, Slot: audit.NoSlot, Code: he.Status, Count: dropped, Detail: detail})
	return err
}
