package appliance

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/samrack/samrack/api/admin"
	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/appliance/pki"
	"github.com/samrack/samrack/cluster/state"
)

// Audit retention defaults. At the README's load — the embedded default
// rack of 8 SAMs at 100 ms per read, run flat out: 80 reads/s — the log
// grows by one read.ok event of about 230 bytes per read: 80 × 230 B ×
// 86 400 s ≈ 1.6 GB a day, 11.1 GB a week. 16 GiB (17.2 GB) therefore
// keeps 10.8 days, and the age limit of 90 days only bites on quieter
// appliances. A 64-SAM rack flat out (640 reads/s) needs
// --audit-max-size 100GiB for a week.
const (
	DefaultAuditMaxSize = 16 << 30
	DefaultAuditMaxAge  = 90 * 24 * time.Hour
	auditFileMax        = 256 << 20
)

// auditRetention turns a total size and an age into the audit log's
// per-file size and number of rotated files: files of at most 256 MiB, at
// least 4 of them.
func auditRetention(total int64, age time.Duration) (fileBytes int64, keep int, maxAge time.Duration) {
	if total <= 0 {
		total = DefaultAuditMaxSize
	}
	switch {
	case age == 0:
		age = DefaultAuditMaxAge
	case age < 0:
		age = 0
	}
	fileBytes = min(int64(auditFileMax), max(total/4, 64<<10))
	keep = max(int(total/fileBytes)-1, 1)
	return fileBytes, keep, age
}

// adminTLS is the admin API's TLS configuration: the appliance's server
// certificate, TLS 1.3, and a client certificate requested but verified by
// the admin server itself (so that a missing or foreign one gets a clear
// HTTP answer instead of a failed handshake; nothing but /healthz answers
// without one).
// The chain sent includes the CA, so that a joining appliance can check it
// against its token's pin.
func (a *Appliance) adminTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{a.pki.ServerChain()},
		ClientAuth:   tls.RequestClientCert,
		NextProtos:   []string{"http/1.1"},
	}
}

func (a *Appliance) listenAdmin(ln net.Listener) net.Listener {
	l := tls.NewListener(ln, a.adminTLS())
	host, _, _ := net.SplitHostPort(l.Addr().String())
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		a.log.Warn("the admin API listens beyond loopback (HTTPS, operator certificates only)", "admin", l.Addr().String())
	}
	return l
}

// BootstrapAdmin is the operator name of the bootstrap admin identity:
// the CommonName of pki's admin certificate.
const BootstrapAdmin = pki.AdminCN

// bootstrapAdmin makes sure the bootstrap admin certificate has its
// operator identity (role admin the first time; a reissued certificate
// rebinds the name to the new serial, keeping the role; a revoked identity
// stays revoked) and writes the admin credentials file.
func (a *Appliance) bootstrapAdmin() error {
	cert, certPEM, keyPEM, err := a.pki.Admin()
	if err != nil {
		return fmt.Errorf("appliance: %w", err)
	}
	serial, fp := admin.CertSerial(cert), admin.Fingerprint(cert)
	old, exists := a.store.Operator(BootstrapAdmin)
	switch {
	case exists && old.Revoked:
		a.log.Warn("the bootstrap admin identity is revoked; its credentials file no longer works", "operator", BootstrapAdmin)
	case exists && old.CertSerial == serial:
	default:
		role := state.RoleAdmin
		if exists {
			role = old.Role
		}
		cmd := &state.Command{Version: state.CommandVersion, Op: state.OpPutOperator, By: "samrackd",
			Operator: &state.Operator{Name: BootstrapAdmin, Role: role, CertSerial: serial, Fingerprint: fp, CreatedBy: "samrackd"}}
		if err := a.store.Apply(context.Background(), cmd); err != nil {
			return fmt.Errorf("appliance: bootstrap admin identity: %w", err)
		}
		a.audit.Record(audit.Event{Kind: "operator.add", Actor: "samrackd", Slot: audit.NoSlot,
			Detail: "bootstrap operator " + BootstrapAdmin + " role " + role.String()})
	}
	c := &admin.Credentials{URL: a.AdminURL(), ServerName: pki.ServerName, Operator: BootstrapAdmin, Role: state.RoleAdmin.String(),
		CertPEM: string(certPEM), KeyPEM: string(keyPEM), CAPEM: string(a.pki.CAPEM())}
	if err := c.Save(a.CredentialsPath()); err != nil {
		return fmt.Errorf("appliance: admin credentials: %w", err)
	}
	a.audit.Record(audit.Event{Kind: "config.start", Actor: "samrackd", Slot: audit.NoSlot,
		Detail: fmt.Sprintf("readers %s admin %s simulated %v slots %d", a.ReaderAddr(), a.AdminURL(), a.sim != nil, len(a.rack.Slots()))})
	return nil
}

func (a *Appliance) adminServer() *admin.Server {
	leaf := a.pki.Server().Leaf
	var hosts []string
	hosts = append(hosts, leaf.DNSNames...)
	for _, ip := range leaf.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	return &admin.Server{
		State: a.store, Operators: a.store, Rack: a.rack, Readers: a, Logger: a.log,
		ClientCAs: a.pki.Pool(),
		Hosts:     hosts,
		Audit:     a.audit.Query,
		Record:    a.audit.Record,
		HashCard:  a.hasher.Card,
		Counters:  a.counters,
		Cluster:   clusterOps{a},
		IsNode:    a.isNode,
	}
}

// AddOperator issues an operator certificate and records the identity. It
// implements admin.Provisioner.
func (a *Appliance) AddOperator(ctx context.Context, name string, role state.Role, by string) (*admin.Credentials, error) {
	if err := state.CheckOperatorName(name); err != nil {
		return nil, err
	}
	if strings.EqualFold(name, BootstrapAdmin) {
		return nil, fmt.Errorf("%w: %q is the bootstrap admin's name", state.ErrInvalidCommand, name)
	}
	certPEM, keyPEM, err := a.pki.IssueOperator(name)
	if err != nil {
		return nil, err
	}
	block, _ := pem.Decode(certPEM)
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, err
	}
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpPutOperator, By: by,
		Operator: &state.Operator{Name: name, Role: role, CertSerial: admin.CertSerial(cert), Fingerprint: admin.Fingerprint(cert), CreatedBy: by}}
	if err := a.store.Apply(ctx, cmd); err != nil {
		return nil, err
	}
	return &admin.Credentials{URL: a.AdminURL(), ServerName: pki.ServerName, Operator: name, Role: role.String(),
		CertPEM: string(certPEM), KeyPEM: string(keyPEM), CAPEM: string(a.pki.CAPEM())}, nil
}

var _ admin.Provisioner = (*Appliance)(nil)
