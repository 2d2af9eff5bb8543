// Package pki is the installation's CA: one local ECDSA P-256 CA is the
// root of every identity the product has — the appliance's server
// certificate, the bootstrap admin certificate, operator certificates
// (OrganizationalUnit "operator", issued by `samctl operator add`) and
// reader certificates (OrganizationalUnit "reader", what `samctl reader
// add` puts in a reader's credential bundle); appliance node certificates
// of a cluster will come from it too. The TLS policy is TLS 1.3 with client
// certificates verified against this CA.
//
// Files in the directory (each 0600, the directory 0700; a key file that
// others can read is refused):
//
//	ca.pem ca-key.pem          the CA, 10 years; ca-key.pem signs every identity: guard it
//	server.pem server-key.pem  the appliance, reissued when hosts change or expiry nears
//	admin.pem admin-key.pem    the bootstrap admin identity (operator "samrack-admin", role admin)
//
// Operator and reader keys are not kept: they go into the credentials
// file written for their holder.
package pki

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"
)

// Errors.
var (
	// ErrInsecureFile reports a key file readable by group or others.
	ErrInsecureFile = errors.New("pki: key file readable by others")
	// ErrIncomplete reports a directory with some CA files but not all.
	ErrIncomplete = errors.New("pki: incomplete CA directory")
	// ErrNoClientCert reports a connection without a verified client certificate.
	ErrNoClientCert = errors.New("pki: no verified client certificate")
	// ErrNotReader reports a verified client certificate that is not a reader's.
	ErrNotReader = errors.New("pki: not a reader certificate")
	// ErrBadSerial reports an unusable reader serial.
	ErrBadSerial = errors.New("pki: bad reader serial")
)

// Names and lifetimes.
const (
	ServerName   = "samrack"  // DNS name always in the server certificate; readers' default ServerName
	ReaderOU     = "reader"   // OrganizationalUnit of reader certificates
	AdminOU      = "admin"    // OrganizationalUnit of the bootstrap admin certificate
	OperatorOU   = "operator" // OrganizationalUnit of operator certificates
	AdminCN      = "samrack-admin"
	caLifetime   = 10 * 365 * 24 * time.Hour
	leafLifetime = 3 * 365 * 24 * time.Hour
	renewBefore  = 30 * 24 * time.Hour
	organization = "samrack dev CA"
)

const (
	caFile, caKeyFile         = "ca.pem", "ca-key.pem"
	serverFile, serverKeyFile = "server.pem", "server-key.pem"
	adminFile, adminKeyFile   = "admin.pem", "admin-key.pem"
)

// PKI is a loaded CA with the appliance's certificates. It is immutable and
// safe for concurrent use.
type PKI struct {
	dir    string
	ca     *x509.Certificate
	caKey  crypto.Signer
	caPEM  []byte
	server tls.Certificate
	admin  tls.Certificate
	now    func() time.Time
}

// LoadOrCreate loads the PKI in dir, creating the CA and certificates the
// first time. The server certificate names hosts (DNS names or IP
// addresses) and always localhost, 127.0.0.1, ::1 and "samrack"; it is
// reissued by the same CA when it lacks a requested host or nears expiry.
func LoadOrCreate(dir string, hosts []string) (*PKI, error) {
	p := &PKI{dir: dir, now: time.Now}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("pki: %w", err)
	}
	_, errCert := os.Stat(filepath.Join(dir, caFile))
	_, errKey := os.Stat(filepath.Join(dir, caKeyFile))
	switch {
	case errors.Is(errCert, fs.ErrNotExist) && errors.Is(errKey, fs.ErrNotExist):
		if err := p.createCA(); err != nil {
			return nil, err
		}
	case errCert == nil && errKey == nil:
		if err := p.loadCA(); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%w: %s needs both %s and %s", ErrIncomplete, dir, caFile, caKeyFile)
	}

	dns, ips := splitHosts(append([]string{"localhost", "127.0.0.1", "::1", ServerName}, hosts...))
	var err error
	p.server, err = p.loadOrIssue(serverFile, serverKeyFile, func(c *x509.Certificate) bool {
		for _, d := range dns {
			if !slices.Contains(c.DNSNames, d) {
				return false
			}
		}
		for _, ip := range ips {
			if !slices.ContainsFunc(c.IPAddresses, ip.Equal) {
				return false
			}
		}
		return true
	}, func() *x509.Certificate {
		return &x509.Certificate{
			Subject:     pkix.Name{CommonName: ServerName, Organization: []string{organization}},
			DNSNames:    dns,
			IPAddresses: ips,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}
	})
	if err != nil {
		return nil, err
	}
	p.admin, err = p.loadOrIssue(adminFile, adminKeyFile, func(*x509.Certificate) bool { return true }, func() *x509.Certificate {
		return &x509.Certificate{
			Subject:     pkix.Name{CommonName: AdminCN, OrganizationalUnit: []string{AdminOU}, Organization: []string{organization}},
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		}
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

func splitHosts(hosts []string) (dns []string, ips []net.IP) {
	for _, h := range hosts {
		if h == "" {
			continue
		}
		if ip := net.ParseIP(h); ip != nil {
			if !slices.ContainsFunc(ips, ip.Equal) {
				ips = append(ips, ip)
			}
		} else if !slices.Contains(dns, h) {
			dns = append(dns, h)
		}
	}
	return dns, ips
}

func (p *PKI) createCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	now := p.now()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: "samrack dev CA", Organization: []string{organization}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(caLifetime),
		IsCA:                  true,
		BasicConstraintsValid: true,
		MaxPathLenZero:        true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return fmt.Errorf("pki: create CA: %w", err)
	}
	certPEM, keyPEM, err := encode(der, key)
	if err != nil {
		return err
	}
	// Key first: a crash between the two leaves ErrIncomplete, not a CA
	// certificate without its key being silently replaced.
	if err := writeFile(filepath.Join(p.dir, caKeyFile), keyPEM); err != nil {
		return err
	}
	if err := writeFile(filepath.Join(p.dir, caFile), certPEM); err != nil {
		return err
	}
	return p.loadCA()
}

func (p *PKI) loadCA() error {
	pair, err := loadPair(filepath.Join(p.dir, caFile), filepath.Join(p.dir, caKeyFile))
	if err != nil {
		return err
	}
	p.ca = pair.Leaf
	if !p.ca.IsCA {
		return fmt.Errorf("pki: %s is not a CA certificate", caFile)
	}
	p.caKey = pair.PrivateKey.(crypto.Signer)
	p.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.ca.Raw})
	return nil
}

// loadOrIssue loads a leaf pair, or issues (and saves) a new one when it is
// missing, not from this CA, not ok, or near expiry.
func (p *PKI) loadOrIssue(certName, keyName string, ok func(*x509.Certificate) bool, tmpl func() *x509.Certificate) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(p.dir, certName), filepath.Join(p.dir, keyName)
	pair, err := loadPair(certPath, keyPath)
	switch {
	case err == nil:
		if pair.Leaf.CheckSignatureFrom(p.ca) == nil && ok(pair.Leaf) && p.now().Add(renewBefore).Before(pair.Leaf.NotAfter) {
			return pair, nil
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return tls.Certificate{}, err
	}
	certPEM, keyPEM, err := p.issue(tmpl())
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFile(keyPath, keyPEM); err != nil {
		return tls.Certificate{}, err
	}
	if err := writeFile(certPath, certPEM); err != nil {
		return tls.Certificate{}, err
	}
	return loadPair(certPath, keyPath)
}

// issue signs a new leaf with a fresh P-256 key.
func (p *PKI) issue(tmpl *x509.Certificate) (certPEM, keyPEM []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	now := p.now()
	tmpl.SerialNumber = randSerial()
	tmpl.NotBefore = now.Add(-time.Hour)
	tmpl.NotAfter = now.Add(leafLifetime)
	if tmpl.NotAfter.After(p.ca.NotAfter) {
		tmpl.NotAfter = p.ca.NotAfter
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, key.Public(), p.caKey)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: issue %q: %w", tmpl.Subject.CommonName, err)
	}
	return encode(der, key)
}

// IssueReader issues a reader's client certificate: CommonName = serial,
// OrganizationalUnit "reader", ExtKeyUsageClientAuth. The key is not kept.
func (p *PKI) IssueReader(serial string) (certPEM, keyPEM []byte, err error) {
	if serial == "" || len(serial) > 32 {
		return nil, nil, fmt.Errorf("%w: %q must be 1–32 characters", ErrBadSerial, serial)
	}
	for i := 0; i < len(serial); i++ {
		if serial[i] <= ' ' || serial[i] > '~' {
			return nil, nil, fmt.Errorf("%w: %q: printable ASCII without spaces only", ErrBadSerial, serial)
		}
	}
	return p.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: serial, OrganizationalUnit: []string{ReaderOU}, Organization: []string{organization}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// IssueOperator issues an operator's client certificate: CommonName = the
// operator name, OrganizationalUnit "operator", ExtKeyUsageClientAuth. The
// key is not kept; the role is not in the certificate (it lives in the
// state, so it can change without reissuing).
func (p *PKI) IssueOperator(name string) (certPEM, keyPEM []byte, err error) {
	if name == "" || len(name) > 64 {
		return nil, nil, fmt.Errorf("pki: operator name %q must be 1–64 characters", name)
	}
	return p.issue(&x509.Certificate{
		Subject:     pkix.Name{CommonName: name, OrganizationalUnit: []string{OperatorOU}, Organization: []string{organization}},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
}

// Admin returns the bootstrap admin certificate and its key in PEM form
// (what the appliance writes into its admin credentials file).
func (p *PKI) Admin() (cert *x509.Certificate, certPEM, keyPEM []byte, err error) {
	certPEM, err = os.ReadFile(filepath.Join(p.dir, adminFile))
	if err == nil {
		keyPEM, err = os.ReadFile(filepath.Join(p.dir, adminKeyFile))
	}
	if err != nil {
		return nil, nil, nil, fmt.Errorf("pki: %w", err)
	}
	return p.admin.Leaf, certPEM, keyPEM, nil
}

// Server returns the appliance's server certificate and key.
func (p *PKI) Server() tls.Certificate { return p.server }

// CAPEM returns the CA certificate in PEM form (for reader bundles and samctl).
func (p *PKI) CAPEM() []byte { return slices.Clone(p.caPEM) }

// Pool returns a pool holding the CA.
func (p *PKI) Pool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.ca)
	return pool
}

// ServerTLS returns the appliance's server configuration: TLS 1.3 only,
// client certificates required and verified against the CA. Each call
// returns a new Config.
func (p *PKI) ServerTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{p.server},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    p.Pool(),
	}
}

// AdminTLS returns a client configuration with the admin certificate, for
// samctl on the appliance itself.
func (p *PKI) AdminTLS() *tls.Config {
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{p.admin},
		RootCAs:      p.Pool(),
		ServerName:   ServerName,
	}
}

// ReaderSerialFromConn returns the reader serial of a connection: the
// CommonName of the verified client certificate, which must be a reader
// certificate (OrganizationalUnit "reader", client auth).
func ReaderSerialFromConn(cs tls.ConnectionState) (string, error) {
	if len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return "", ErrNoClientCert
	}
	leaf := cs.VerifiedChains[0][0]
	if !slices.Contains(leaf.Subject.OrganizationalUnit, ReaderOU) ||
		!slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) || leaf.Subject.CommonName == "" {
		return "", fmt.Errorf("%w: %q", ErrNotReader, leaf.Subject.CommonName)
	}
	return leaf.Subject.CommonName, nil
}

func randSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n.Add(n, big.NewInt(1))
}

func encode(der []byte, key *ecdsa.PrivateKey) (certPEM, keyPEM []byte, err error) {
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k}), nil
}

// loadPair loads a certificate and its key, refusing a key file that
// others can read.
func loadPair(certPath, keyPath string) (tls.Certificate, error) {
	fi, err := os.Stat(keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return tls.Certificate{}, fmt.Errorf("%w: %s is %v (want 0600)", ErrInsecureFile, keyPath, fi.Mode().Perm())
	}
	pair, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return tls.Certificate{}, fmt.Errorf("pki: %w", err)
	}
	if _, ok := pair.PrivateKey.(crypto.Signer); !ok || pair.Leaf == nil {
		return tls.Certificate{}, fmt.Errorf("pki: %s: unusable key", keyPath)
	}
	return pair, nil
}

// writeFile writes data with mode 0600 atomically (temp file, rename).
func writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("pki: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	return nil
}
