package appliance

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/api/credentials"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/appliance/dispatch"
	"github.com/samrack/samrack/appliance/dispatch/host"
	"github.com/samrack/samrack/appliance/pki"
	"github.com/samrack/samrack/cluster/raftstore"
	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/cluster/vip"
	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/sim"
	"github.com/samrack/samrack/rack"
)

// Config of one appliance. The zero value (plus DataDir) is the embedded
// default: a simulated rack of 8 SAMs, embedded storage, a dev CA.
type Config struct {
	DataDir string // raft/ (replicated state), pki/, audit.key, audit.log, admin.json
	Listen  string // reader TLS address; default ":7467"
	// Admin is the admin API's HTTPS address (client certificates only);
	// default "127.0.0.1:7480". Beyond loopback it is logged at warn.
	Admin string
	// Advertise is the reader address written into credential bundles;
	// default the listen address, with 127.0.0.1 for an unspecified host.
	Advertise string
	Hosts     []string // extra names/IPs for the server certificate

	// Raft is the raft listener (mutual TLS 1.3 with node certificates);
	// default "127.0.0.1:0" (samrackd's default is ":7468"). RaftAdvertise
	// is the address other nodes dial (default Raft, with 127.0.0.1 for
	// an unspecified host); it must stay the same across restarts.
	Raft          string
	RaftAdvertise string
	// Link is the listener of cluster/link, over which appliances place
	// sessions on each other's SAMs (mutual TLS 1.3, node certificates);
	// default "127.0.0.1:0" (samrackd's default is ":7469"). LinkAdvertise
	// is the address peers dial, written into the node registry (default
	// Link, on the host of the raft advertise address for an unspecified
	// host, so that one --raft-advertise serves all three).
	Link          string
	LinkAdvertise string
	// Join, with Token, makes a new appliance join the cluster of the
	// appliance whose admin API is at Join (host:port). Without Join, a
	// data directory without raft state bootstraps a cluster of one.
	Join  string
	Token string

	// VIP, with VIPInterface, is the cluster's virtual IP with its prefix
	// length (192.0.2.10/24) and the interface that carries it (eth0): it
	// follows the raft leader (vip.go) and comes first in credential
	// bundles. Empty: no VIP.
	VIP          string
	VIPInterface string

	// The simulated rack (used when Rack is nil).
	SimSAMs   int            // default 8
	SimTiming *sim.SAMTiming // default sim.DefaultSAMTiming

	// Rack, if set, replaces the simulated rack (with RackOptions).
	Rack        *rack.Config
	RackOptions rack.Options

	// AuthFailureThreshold suspends a reader after this many failed
	// authentications in a row (default 5).
	AuthFailureThreshold int
	// Dispatch tunes the dispatcher (timeouts, queue wait); its
	// Directory, Pool, Audit and HashCard are filled in here.
	Dispatch dispatch.Config
	// SessionIdleTimeout gives back the SAM lease of a session whose
	// front end — this appliance's dispatcher, or a peer's over the
	// link — has sent nothing for this long. It is what frees a lease the
	// link lost track of (a Place whose reply never reached the peer).
	// Default 30 s, or twice Dispatch.ReaderTimeout if that is more; it
	// must exceed Dispatch.ReaderTimeout (default 5 s), which a front end
	// may spend waiting for its reader between two turns.
	SessionIdleTimeout time.Duration
	// AuditStderr copies audit events to stderr as JSON lines.
	AuditStderr bool
	// AuditMaxSize bounds the audit log files together (default
	// DefaultAuditMaxSize); AuditMaxAge deletes rotated files whose newest
	// event is older (default DefaultAuditMaxAge; negative: no age limit).
	AuditMaxSize int64
	AuditMaxAge  time.Duration
	Logger       *slog.Logger
}

// Appliance is a wired appliance. New opens its storage and listeners; Run
// serves until its context ends.
type Appliance struct {
	cfg     Config
	log     *slog.Logger
	store   *raftstore.Store
	pki     *pki.PKI
	audit   *audit.Log
	hasher  *audit.Hasher
	rack    *rack.Rack
	sim     *SimRack
	disp    *dispatch.Server
	readers net.Listener
	admin   net.Listener

	id          string         // raft node ID
	raw         []net.Listener // TCP listeners: readers, admin, raft
	nodeHTTP    *http.Client   // node-to-node HTTPS with the node certificate
	nodes       nodeStore      // the store for this node's own writes (forwarded to the leader)
	joins       *joinLimiter   // failed joins by source
	inv         *inventory     // inventory publisher's trigger
	joinResp    *JoinResponse  // the join answer, for the voter step
	vip         *vip.Manager   // nil without Config.VIP
	vipCfg      *vip.Config
	place       *placement      // link.go: placement across the cluster
	readIndexes sharedReadIndex // the leader's read index, for catchUp
	linkAdv     string          // the link address peers dial
	advHost     string          // the raft advertise address's host: the default host of the others
}

// New opens everything an appliance needs; on error nothing stays open.
func New(cfg Config) (a *Appliance, err error) {
	if cfg.DataDir == "" {
		return nil, errors.New("appliance: no data directory")
	}
	if cfg.Listen == "" {
		cfg.Listen = fmt.Sprintf(":%d", wire.DefaultPort)
	}
	if cfg.Admin == "" {
		cfg.Admin = "127.0.0.1:7480"
	}
	if cfg.Raft == "" {
		cfg.Raft = "127.0.0.1:0"
	}
	if cfg.Link == "" {
		cfg.Link = "127.0.0.1:0"
	}
	if cfg.SimSAMs == 0 {
		cfg.SimSAMs = 8
	}
	if cfg.SimTiming == nil {
		t := sim.DefaultSAMTiming
		cfg.SimTiming = &t
	}
	if cfg.AuthFailureThreshold <= 0 {
		cfg.AuthFailureThreshold = 5
	}
	readerTimeout := cfg.Dispatch.ReaderTimeout
	if readerTimeout <= 0 {
		readerTimeout = dispatch.DefaultReaderTimeout
	}
	switch {
	case cfg.SessionIdleTimeout == 0:
		cfg.SessionIdleTimeout = max(30*time.Second, 2*readerTimeout)
	case cfg.SessionIdleTimeout <= readerTimeout:
		return nil, fmt.Errorf("appliance: session idle timeout %v: it must exceed the reader timeout (%v)", cfg.SessionIdleTimeout, readerTimeout)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	app := &Appliance{cfg: cfg, log: cfg.Logger}
	a = app
	defer func() {
		if err != nil {
			app.close() // a is nil here: the error returns set it
		}
	}()
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, err
	}
	if cfg.Join != "" && cfg.Token == "" {
		return nil, errors.New("appliance: --join needs --token (samctl cluster token on a member prints one)")
	}
	raftDir := filepath.Join(cfg.DataDir, "raft")
	if a.id, err = raftstore.LoadOrCreateNodeID(raftDir); err != nil {
		return nil, err
	}
	a.joins, a.inv = &joinLimiter{fail: map[string][]time.Time{}}, newInventory()
	for _, addr := range []string{cfg.Listen, cfg.Admin, cfg.Raft, cfg.Link} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return nil, fmt.Errorf("appliance: listen %s: %w", addr, err)
		}
		a.raw = append(a.raw, ln)
	}
	a.readers, a.admin = a.raw[0], a.raw[1]
	raftAdv := cfg.RaftAdvertise
	if raftAdv == "" {
		raftAdv = loopbackIfUnspecified(a.raw[2].Addr().String())
	}
	// The link and reader addresses peers and readers dial: given, or the
	// listener's, on the raft advertise address's host when the listener's
	// host is unspecified (":7469"): the host other appliances already
	// reach this one at.
	a.advHost, _, _ = net.SplitHostPort(raftAdv)
	a.linkAdv = cfg.LinkAdvertise
	if a.linkAdv == "" {
		a.linkAdv = onHostIfUnspecified(a.raw[3].Addr().String(), a.advHost)
	}
	joining := cfg.Join != "" && !hasRaftState(raftDir)
	if joining {
		if err := a.joinPhase1(raftAdv); err != nil {
			return nil, err
		}
	}
	if a.pki, err = pki.LoadOrCreate(filepath.Join(cfg.DataDir, "pki"), a.ownHosts()); err != nil {
		return nil, fmt.Errorf("appliance: pki: %w", err)
	}
	nodeCert, err := a.pki.Node(a.id)
	if err != nil {
		return nil, fmt.Errorf("appliance: node certificate: %w", err)
	}
	a.nodeHTTP = nodeClient(nodeCert, a.pki.Pool())
	advAddr, err := net.ResolveTCPAddr("tcp", raftAdv)
	if err != nil {
		return nil, fmt.Errorf("appliance: raft advertise address %q: %w", raftAdv, err)
	}
	trans, err := raftstore.NewTLSTransport(a.raw[2], &tls.Config{Certificates: []tls.Certificate{nodeCert}, RootCAs: a.pki.Pool()}, advAddr,
		hclog.New(&hclog.LoggerOptions{Name: "raft-net", Level: hclog.Error, Output: os.Stderr}))
	if err != nil {
		return nil, fmt.Errorf("appliance: raft transport: %w", err)
	}
	readIndex := func(ctx context.Context, s *raftstore.Store) (uint64, error) { return readIndexOf(ctx, a.nodeHTTP, s) }
	if a.store, err = openStore(cfg.DataDir, a.id, trans, cfg.Join == "", a.log, readIndex); err != nil {
		trans.Close()
		return nil, fmt.Errorf("appliance: storage: %w", err)
	}
	a.nodes = nodeStore{Store: a.store, a: a}
	if err := a.setupVIP(); err != nil {
		return nil, err
	}
	if ms, _ := a.store.Members(); len(ms) == 0 {
		if cfg.Join == "" {
			return nil, errors.New("appliance: this node is in no cluster: start it with --join ADDR --token T")
		}
		if err := a.joinPhase2(); err != nil {
			return nil, err
		}
	}
	key, err := audit.LoadOrCreateKey(filepath.Join(cfg.DataDir, "audit.key"))
	if err != nil {
		return nil, fmt.Errorf("appliance: audit key: %w", err)
	}
	a.hasher = audit.NewHasher(key)
	acfg := audit.Config{File: filepath.Join(cfg.DataDir, "audit.log")}
	if cfg.AuditStderr {
		acfg.W = os.Stderr
	}
	acfg.MaxBytes, acfg.Keep, acfg.MaxAge = auditRetention(cfg.AuditMaxSize, cfg.AuditMaxAge)
	if a.audit, err = audit.New(acfg); err != nil {
		return nil, fmt.Errorf("appliance: audit log: %w", err)
	}
	rcfg, ropts := cfg.Rack, cfg.RackOptions
	if rcfg == nil {
		var c rack.Config
		a.sim, c, ropts = newSimRack(simSeedBase(a.id), cfg.SimSAMs, *cfg.SimTiming, samhost.Timeouts{})
		rcfg = &c
	}
	ropts.OnEvent = a.rackEvent
	if a.rack, err = rack.New(*rcfg, ropts); err != nil {
		return nil, fmt.Errorf("appliance: rack: %w", err)
	}
	dcfg := cfg.Dispatch
	dcfg.Directory = &directory{st: a.nodes, threshold: cfg.AuthFailureThreshold, audit: a.audit, catchUp: a.catchUp}
	dcfg.Pool = pool{a.rack}
	dcfg.Audit = a.audit.Record
	dcfg.HashCard = a.hasher.Card
	dcfg.Logger = cfg.Logger
	// The session host signs its key shares with the appliance's node
	// certificate (the CA's, serverAuth, URI samrack:node:ID): a reader
	// verifying it learns which appliance's SAM served it.
	if dcfg.Signer, err = host.CertSigner(nodeCert); err != nil {
		return nil, fmt.Errorf("appliance: node key: %w", err)
	}
	// The session host: this appliance's SAMs (host.Local), served to the
	// peers over the link, and the dispatcher's placements spread over it
	// and the peers' (link.go).
	if err := a.setupLink(host.Config{Pool: dcfg.Pool, Blacklist: dcfg.Directory, Signer: dcfg.Signer,
		Audit: a.audit.Record, HashCard: dcfg.HashCard, Logger: cfg.Logger, QueueWait: dcfg.QueueWait,
		MaxAttempts: dcfg.MaxAttempts, IdleTimeout: cfg.SessionIdleTimeout}, nodeCert); err != nil {
		return nil, fmt.Errorf("appliance: link: %w", err)
	}
	dcfg.Host = clusterHost{a}
	a.disp = dispatch.New(dcfg)
	a.readers = tls.NewListener(a.raw[0], readerTLS(a.pki.ServerTLS()))
	a.admin = a.listenAdmin(a.raw[1])
	if err := a.bootstrapAdmin(); err != nil {
		return nil, err
	}
	return a, nil
}

// readerTLS is the readers' TLS policy: readers that offer ALPN
// samrack-signed-key-share have it selected (and get signed key shares,
// PROTOCOL.md §8.1); any other reader — none, or other protocols — goes on
// without ALPN, as before it existed, rather than failing the handshake.
func readerTLS(base *tls.Config) *tls.Config {
	signed := base.Clone()
	signed.NextProtos = []string{wire.ALPNSignedKeyShare}
	base.GetConfigForClient = func(h *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(h.SupportedProtos, wire.ALPNSignedKeyShare) {
			return signed, nil
		}
		return nil, nil
	}
	return base
}

func (a *Appliance) close() {
	a.closeLink() // before the audit log: sessions ending audit
	for _, c := range []interface{ Close() error }{a.audit, a.store} {
		if c != nil && !isNilCloser(c) {
			c.Close()
		}
	}
	for _, ln := range a.raw {
		ln.Close() // the raft one is closed by the store's transport already
	}
	if a.nodeHTTP != nil {
		a.nodeHTTP.CloseIdleConnections()
	}
}

// ownHosts are the names and addresses the appliance's certificate
// carries beside loopback, and so the Host values its admin API accepts:
// --host, and the hosts this appliance is reached at — its admin listener's
// own address, the raft advertise host, --advertise's and the VIP's — so
// that the README's `--admin 10.0.0.1:7480` works for samctl without a
// --host that repeats it.
func (a *Appliance) ownHosts() []string {
	hosts := slices.Clone(a.cfg.Hosts)
	add := func(hostport string) {
		h, _, err := net.SplitHostPort(hostport)
		if err != nil {
			h = hostport
		}
		if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
			return
		}
		if !slices.Contains(hosts, h) {
			hosts = append(hosts, h)
		}
	}
	add(a.admin.Addr().String())
	add(a.advHost)
	if a.cfg.Advertise != "" {
		add(a.cfg.Advertise)
	}
	if p, err := netip.ParsePrefix(a.cfg.VIP); err == nil {
		add(p.Addr().String())
	}
	return hosts
}

// onHostIfUnspecified is addr with its host replaced by host when addr's
// host is unspecified (and by 127.0.0.1 when host is too).
func onHostIfUnspecified(addr, host string) string {
	h, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(h); h == "" || ip != nil && ip.IsUnspecified() {
		return loopbackIfUnspecified(net.JoinHostPort(host, port))
	}
	return addr
}

func loopbackIfUnspecified(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if ip := net.ParseIP(host); host == "" || ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func isNilCloser(c any) bool {
	switch v := c.(type) {
	case net.Listener:
		return v == nil
	case *audit.Log:
		return v == nil
	case *raftstore.Store:
		return v == nil
	}
	return false
}

// NodeID is the appliance's raft node ID, also its node certificate's
// CommonName (the signer readers see on a signed key share).
func (a *Appliance) NodeID() string { return a.id }

// ReaderAddr is the address the reader listener is bound to.
func (a *Appliance) ReaderAddr() string { return a.readers.Addr().String() }

// AdminURL is the base URL of the admin API (https; an unspecified listen
// host becomes the raft advertise address's host, else 127.0.0.1).
func (a *Appliance) AdminURL() string {
	return "https://" + onHostIfUnspecified(a.admin.Addr().String(), a.advHost)
}

// CredentialsPath is the bootstrap admin credentials file (root-only).
func (a *Appliance) CredentialsPath() string {
	return filepath.Join(a.cfg.DataDir, admin.CredentialsFile)
}

// Rack is the appliance's rack.
func (a *Appliance) Rack() *rack.Rack { return a.rack }

// Sim is the simulated rack, or nil when real hardware is configured.
func (a *Appliance) Sim() *SimRack { return a.sim }

// Store is the appliance's state store.
func (a *Appliance) Store() state.Store { return a.store }

// Audit is the appliance's audit log.
func (a *Appliance) Audit() *audit.Log { return a.audit }

// Dispatcher is the reader-facing server.
func (a *Appliance) Dispatcher() *dispatch.Server { return a.disp }

// Run serves until ctx is done, then stops every part and closes the
// storage. It returns the first error that stopped a part.
func (a *Appliance) Run(ctx context.Context) error {
	defer a.close()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var wg sync.WaitGroup
	errc := make(chan error, 4)
	run := func(name string, f func(context.Context) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(ctx); err != nil && ctx.Err() == nil {
				errc <- fmt.Errorf("%s: %w", name, err)
				cancel(err)
			}
		}()
	}
	if err := a.startVIP(ctx); err != nil { // removes a stale VIP first
		return err
	}
	run("rack", a.rack.Run)
	run("dispatcher", func(ctx context.Context) error { return a.disp.Serve(ctx, a.readers) })
	run("admin", a.serveAdmin)
	run("inventory", a.runInventory)
	run("link", a.runLink)
	a.log.Info("samrack appliance up", "node", a.id, "raft", a.store.LocalAddr(), "link", a.linkAdv, "readers", a.ReaderAddr(), "admin", a.AdminURL(),
		"slots", len(a.rack.Slots()), "simulated", a.sim != nil, "data", a.cfg.DataDir)
	<-ctx.Done()
	a.stopVIP() // VIP removed, then leadership transferred, while raft still runs
	wg.Wait()
	a.log.Info("samrack appliance stopped")
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}

func (a *Appliance) serveAdmin(ctx context.Context) error {
	srv := &http.Server{
		Handler:           a.adminHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       5 * time.Minute,
		WriteTimeout:      5 * time.Minute,
		IdleTimeout:       time.Minute,
	}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	defer stop()
	if err := srv.Serve(a.admin); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (a *Appliance) counters() map[string]any {
	st := a.disp.Stats()
	return map[string]any{"dispatcher": st, "audit": a.audit.Counts(), "placement": a.placementStats()}
}

// AddReader registers a reader with a fresh key and issues its credential
// bundle, on behalf of the appliance itself (tests, tools).
func (a *Appliance) AddReader(ctx context.Context, serial, cipher, note string) (*credentials.Bundle, error) {
	return a.AddReaderBy(ctx, serial, cipher, note, "samrackd")
}

// AddReaderBy is AddReader on behalf of the operator identity by. It
// implements admin.Provisioner.
func (a *Appliance) AddReaderBy(ctx context.Context, serial, cipher, note, by string) (*credentials.Bundle, error) {
	key := make([]byte, state.ReaderKeyLen)
	if _, err := rand.Read(key); err != nil {
		return nil, err
	}
	certPEM, keyPEM, err := a.pki.IssueReader(serial)
	if err != nil {
		return nil, err
	}
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpPutReader, By: by,
		Reader: &state.Reader{Serial: serial, Cipher: cipher, Key: key, Status: state.ReaderActive, Note: note}}
	if err := a.store.Apply(ctx, cmd); err != nil {
		return nil, err
	}
	addrs := a.readerAddrs() // vip.go: the VIP first, then every appliance
	b := &credentials.Bundle{Server: addrs[0], Servers: addrs, ServerName: pki.ServerName, ReaderSerial: serial, Cipher: cipher,
		KeyHex: hex.EncodeToString(key), CertPEM: string(certPEM), KeyPEM: string(keyPEM), CAPEM: string(a.pki.CAPEM())}
	return b, nil
}

func (a *Appliance) advertise() string {
	if a.cfg.Advertise != "" {
		return a.cfg.Advertise
	}
	return onHostIfUnspecified(a.ReaderAddr(), a.advHost)
}

func (a *Appliance) rackEvent(e rack.Event) {
	if a.inv != nil {
		a.inv.trigger()
	}
	ev := audit.Event{Time: e.Time, Kind: "slot." + e.Kind.String(), Slot: e.Slot, Detail: e.String()}
	if !e.SAMID.IsZero() {
		ev.SAMID = e.SAMID.String()
	}
	a.audit.Record(ev)
	// The hardware team reads the journal too: say what happened to a slot.
	switch {
	case e.Kind == rack.EventQuarantined, e.Kind == rack.EventRecoveryFailed, e.Kind == rack.EventWatcherFailed,
		e.Kind == rack.EventRecoveryStarted, e.Kind == rack.EventUnknownDevice:
		a.log.Warn("rack", "event", e.String())
	case e.Kind == rack.EventState && (e.To == rack.StateAbsent || e.To == rack.StateUnavailableOffline):
		a.log.Warn("rack", "event", e.String(), "err", e.Err)
	default:
		a.log.Info("rack", "event", e.String())
	}
}

// directory adapts the state store to what the dispatcher needs.
type directory struct {
	st        state.Store
	threshold int
	audit     *audit.Log
	catchUp   func(context.Context) error // dispatch.CatchUpper
}

// CatchUp implements dispatch.CatchUpper.
func (d *directory) CatchUp(ctx context.Context) error { return d.catchUp(ctx) }

func (d *directory) Reader(serial string) (dispatch.Reader, bool) {
	r, ok := d.st.Reader(serial)
	if !ok {
		return dispatch.Reader{}, false
	}
	st := dispatch.ReaderActive
	switch r.Status {
	case state.ReaderSuspended:
		st = dispatch.ReaderSuspended
	case state.ReaderBlacklisted:
		st = dispatch.ReaderBlacklisted
	}
	return dispatch.Reader{Serial: r.Serial, Cipher: r.Cipher, Key: r.Key, Status: st}, true
}

func (d *directory) ReaderBlacklisted(serial string) bool { return d.st.ReaderBlacklisted(serial) }

func (d *directory) CardBlacklisted(serial sam.Serial) bool {
	_, ok := d.st.CardBlacklisted(serial)
	return ok
}

func (d *directory) PreferredSAMs(reader string) []ga467.SAMID { return d.st.Affinity(reader) }

func (d *directory) AuthFailed(ctx context.Context, reader string) {
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpRecordAuthFailure, Serial: reader, Threshold: d.threshold, By: "appliance"}
	res, err := d.st.Exec(ctx, cmd)
	if err != nil {
		return
	}
	if res.Suspended { // decided by the FSM when it applied the command, on every replica alike
		d.audit.Record(audit.Event{Kind: audit.KindReaderSuspended, Reader: reader, Slot: audit.NoSlot,
			Detail: fmt.Sprintf("%d failed authentications in a row", res.Reader.FailedAuth)})
	}
}

// AuthSucceeded implements dispatch.AuthSucceeder: a reader that
// authenticates ends its run of failures (the common case, none, costs a
// read of the local state and no write).
func (d *directory) AuthSucceeded(ctx context.Context, reader string) {
	if r, ok := d.st.Reader(reader); !ok || r.FailedAuth == 0 {
		return
	}
	d.st.Apply(ctx, &state.Command{Version: state.CommandVersion, Op: state.OpResetAuthFailures, Serial: reader, By: "appliance"})
}

var _ dispatch.AuthSucceeder = (*directory)(nil)

// pool adapts the rack to the dispatcher's Pool.
type pool struct{ r *rack.Rack }

func (p pool) Lease(ctx context.Context, prefer []ga467.SAMID) (dispatch.Lease, error) {
	l, err := p.r.Lease(ctx, prefer)
	if err != nil {
		var be *rack.BusyError
		if errors.As(err, &be) {
			return nil, &dispatch.BusyError{RetryAfter: be.RetryAfter}
		}
		return nil, err
	}
	return l, nil
}
