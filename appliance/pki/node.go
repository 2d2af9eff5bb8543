package pki

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/samrack/samrack/cluster/raftstore"
)

// Node certificates. A node (an appliance in the raft cluster) proves
// itself with a certificate of the installation CA carrying the URI SAN
// samrack:node:<id> (raftstore.NodeURI) and both serverAuth and clientAuth:
// raft peers, forwarded admin requests and the node-only endpoints check
// it. The node's key is made on the node and never leaves it: the CA signs
// a certificate request (IssueNode).
//
//	node.pem node-key.pem  this appliance's node identity
const (
	nodeFile, nodeKeyFile = "node.pem", "node-key.pem"
	NodeOU                = "node"
)

// ErrBadCSR reports an unusable certificate request.
var ErrBadCSR = errors.New("pki: bad certificate request")

// NewNodeKey makes a node key and a certificate request for node id (DER),
// to be signed by IssueNode here or on the leader.
func NewNodeKey(id string) (*ecdsa.PrivateKey, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{
		Subject: pkix.Name{CommonName: id, OrganizationalUnit: []string{NodeOU}},
		URIs:    []*url.URL{raftstore.NodeURI(id)},
	}, key)
	if err != nil {
		return nil, nil, fmt.Errorf("pki: %w", err)
	}
	return key, csr, nil
}

// IssueNode signs a node certificate for id from a certificate request
// (DER): the request must be self-signed correctly and name exactly that
// node; the certificate gets the node URI SAN, CommonName id, OU "node"
// and serverAuth+clientAuth, whatever else the request asks for.
func (p *PKI) IssueNode(id string, csrDER []byte) (certPEM []byte, err error) {
	csr, err := checkNodeCSR(id, csrDER)
	if err != nil {
		return nil, err
	}
	now := p.now()
	tmpl := &x509.Certificate{
		SerialNumber:          randSerial(),
		Subject:               pkix.Name{CommonName: id, OrganizationalUnit: []string{NodeOU}, Organization: []string{organization}},
		URIs:                  []*url.URL{raftstore.NodeURI(id)},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(leafLifetime),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}
	if tmpl.NotAfter.After(p.ca.NotAfter) {
		tmpl.NotAfter = p.ca.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, csr.PublicKey, p.caKey)
	if err != nil {
		return nil, fmt.Errorf("pki: issue node %q: %w", id, err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// CheckNodeCSR checks a node's certificate request as IssueNode does.
func CheckNodeCSR(id string, csrDER []byte) error {
	_, err := checkNodeCSR(id, csrDER)
	return err
}

func checkNodeCSR(id string, csrDER []byte) (*x509.CertificateRequest, error) {
	if err := checkNodeID(id); err != nil {
		return nil, err
	}
	csr, err := x509.ParseCertificateRequest(csrDER)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCSR, err)
	}
	if err := csr.CheckSignature(); err != nil {
		return nil, fmt.Errorf("%w: signature: %v", ErrBadCSR, err)
	}
	if len(csr.URIs) != 1 || csr.URIs[0].String() != raftstore.NodeURI(id).String() {
		return nil, fmt.Errorf("%w: it must name node %s (URI %s) and nothing else", ErrBadCSR, id, raftstore.NodeURI(id))
	}
	if _, ok := csr.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, fmt.Errorf("%w: want an ECDSA key", ErrBadCSR)
	}
	return csr, nil
}

func checkNodeID(id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("pki: node ID %q must be 1–64 characters", id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return fmt.Errorf("pki: node ID %q: letters, digits, '-', '_' and '.' only", id)
		}
	}
	return nil
}

// Node loads this appliance's node certificate for id, issuing it with
// the local CA (from a local key and request) when it is missing, for
// another node, from another CA or near expiry.
func (p *PKI) Node(id string) (tls.Certificate, error) {
	certPath, keyPath := filepath.Join(p.dir, nodeFile), filepath.Join(p.dir, nodeKeyFile)
	pair, err := loadPair(certPath, keyPath)
	switch {
	case err == nil:
		if got, ok := raftstore.NodeID(pair.Leaf); ok && got == id && pair.Leaf.CheckSignatureFrom(p.ca) == nil &&
			p.now().Add(renewBefore).Before(pair.Leaf.NotAfter) {
			return pair, nil
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return tls.Certificate{}, err
	}
	key, csr, err := NewNodeKey(id)
	if err != nil {
		return tls.Certificate{}, err
	}
	certPEM, err := p.IssueNode(id, csr)
	if err != nil {
		return tls.Certificate{}, err
	}
	if err := SaveNode(p.dir, key, certPEM); err != nil {
		return tls.Certificate{}, err
	}
	return loadPair(certPath, keyPath)
}

// SaveNode writes a node key and its certificate into dir.
func SaveNode(dir string, key *ecdsa.PrivateKey, certPEM []byte) error {
	k, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	if err := writeFile(filepath.Join(dir, nodeKeyFile), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: k})); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, nodeFile), certPEM)
}

// CAHash is the pin of the CA: "sha256:" and the hex SHA-256 of its
// SubjectPublicKeyInfo (as kubeadm's discovery-token-ca-cert-hash).
func CAHash(ca *x509.Certificate) string {
	h := sha256.Sum256(ca.RawSubjectPublicKeyInfo)
	return "sha256:" + hex.EncodeToString(h[:])
}

// CAHash is the pin of this installation's CA.
func (p *PKI) CAHash() string { return CAHash(p.ca) }

// CA returns the CA certificate.
func (p *PKI) CA() *x509.Certificate { return p.ca }

// VerifyPinned checks a server's chain as sent (leaf first, the CA last)
// against a CA pin: the last certificate must be a CA with that hash and
// the leaf must chain to it for serverAuth. It returns the CA.
func VerifyPinned(rawCerts [][]byte, pin string) (*x509.Certificate, error) {
	if len(rawCerts) < 2 {
		return nil, errors.New("pki: the server did not send its CA (is it a samrack appliance?)")
	}
	ca, err := x509.ParseCertificate(rawCerts[len(rawCerts)-1])
	if err != nil {
		return nil, fmt.Errorf("pki: server CA: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(CAHash(ca)), []byte(strings.ToLower(pin))) != 1 || !ca.IsCA {
		return nil, fmt.Errorf("pki: the server's CA %s is not the one the token names (%s): wrong appliance or a man in the middle", CAHash(ca), pin)
	}
	leaf, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return nil, fmt.Errorf("pki: server certificate: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
		return nil, fmt.Errorf("pki: server certificate: %w", err)
	}
	return ca, nil
}

// Shared is what a joining appliance receives besides its node
// certificate, over the join channel (TLS pinned to the CA, authorised by
// a single-use token): the CA with its key, so that any node can sign the
// next join and issue identities after the first node is gone, and the
// bootstrap admin identity, which is one identity cluster-wide.
type Shared struct {
	CAPEM       string `json:"ca_pem"`
	CAKeyPEM    string `json:"ca_key_pem"`
	AdminPEM    string `json:"admin_pem"`
	AdminKeyPEM string `json:"admin_key_pem"`
}

// Share returns the files a joining node installs.
func (p *PKI) Share() (*Shared, error) {
	var s Shared
	for _, f := range []struct {
		name string
		dst  *string
	}{{caFile, &s.CAPEM}, {caKeyFile, &s.CAKeyPEM}, {adminFile, &s.AdminPEM}, {adminKeyFile, &s.AdminKeyPEM}} {
		b, err := os.ReadFile(filepath.Join(p.dir, f.name))
		if err != nil {
			return nil, fmt.Errorf("pki: %w", err)
		}
		*f.dst = string(b)
	}
	return &s, nil
}

// Install writes what Share returned into dir (a new node's pki
// directory), after checking that the CA is the pinned one and the admin
// certificate is its. Existing CA files are refused: a node joins once.
func Install(dir string, s *Shared, pin string) error {
	caPair, err := tls.X509KeyPair([]byte(s.CAPEM), []byte(s.CAKeyPEM))
	if err != nil {
		return fmt.Errorf("pki: shared CA: %w", err)
	}
	if !caPair.Leaf.IsCA || CAHash(caPair.Leaf) != strings.ToLower(pin) {
		return fmt.Errorf("pki: the CA received is not the pinned one")
	}
	adm, err := tls.X509KeyPair([]byte(s.AdminPEM), []byte(s.AdminKeyPEM))
	if err != nil {
		return fmt.Errorf("pki: shared admin identity: %w", err)
	}
	if adm.Leaf.CheckSignatureFrom(caPair.Leaf) != nil {
		return fmt.Errorf("pki: the admin certificate received is not from the CA")
	}
	if _, err := os.Stat(filepath.Join(dir, caFile)); err == nil {
		return fmt.Errorf("pki: %s already holds a CA: this data directory belongs to an installation already", dir)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("pki: %w", err)
	}
	for _, f := range []struct{ name, data string }{{caKeyFile, s.CAKeyPEM}, {caFile, s.CAPEM}, {adminKeyFile, s.AdminKeyPEM}, {adminFile, s.AdminPEM}} {
		if err := writeFile(filepath.Join(dir, f.name), []byte(f.data)); err != nil {
			return err
		}
	}
	return nil
}

// ServerChain returns the server certificate with the CA appended: what
// the admin API sends, so that a joining node can check the CA against
// its token's pin before it sends anything.
func (p *PKI) ServerChain() tls.Certificate {
	c := p.server
	c.Certificate = append(append([][]byte{}, c.Certificate...), p.ca.Raw)
	return c
}
