// Package credentials is the reader credential bundle: what `samctl reader
// add` writes and what a reader (samreader, or a reader maker's firmware
// through the Go SDK) loads to reach the appliance. It holds the reader's
// serial, its symmetric key (card serials are sealed under it), its TLS
// client certificate and key, and the CA that signs the appliance's
// certificate.
package credentials

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
)

// Ciphers for the reader key.
const (
	CipherSM4 = "sm4" // SM4-GCM (GM deployments)
	CipherAES = "aes" // AES-128-GCM
)

// Bundle is a reader's credentials. The JSON form is the file format.
type Bundle struct {
	Server       string `json:"server"`        // host:port of the appliance (or VIP); the first of Servers when both are set
	ServerName   string `json:"server_name"`   // name in the appliance certificate
	ReaderSerial string `json:"reader_serial"` // also the certificate's CommonName
	Cipher       string `json:"cipher"`        // CipherSM4 or CipherAES
	KeyHex       string `json:"key"`           // 16-byte reader key, hex
	CertPEM      string `json:"cert_pem"`      // reader client certificate
	KeyPEM       string `json:"key_pem"`       // its private key
	CAPEM        string `json:"ca_pem"`        // CA of the appliance certificates

	// Servers lists, in order, the addresses a reader tries: the
	// cluster's virtual IP first, then each appliance's own reader
	// address (api/PROTOCOL.md §2). Readers that predate it use Server.
	Servers []string `json:"servers,omitempty"`
}

// MaxServers bounds the addresses of a bundle.
const MaxServers = 16

// Addresses are the addresses to try, in order: Servers, or Server alone
// in a bundle without Servers.
func (b *Bundle) Addresses() []string {
	if len(b.Servers) > 0 {
		return b.Servers
	}
	return []string{b.Server}
}

// checkAddr accepts host:port with a host of 1–253 bytes and a port of
// 1–65535.
func checkAddr(a string) error {
	if len(a) > 261 {
		return fmt.Errorf("%w: server address of %d bytes", ErrBundle, len(a))
	}
	host, port, err := net.SplitHostPort(a)
	if err != nil {
		return fmt.Errorf("%w: server %q: want host:port", ErrBundle, a)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("%w: server %q: port must be 1–65535", ErrBundle, a)
	}
	if host == "" {
		return fmt.Errorf("%w: server %q: no host", ErrBundle, a)
	}
	return nil
}

// ErrBundle reports an unusable bundle.
var ErrBundle = errors.New("credentials: bad bundle")

// Key returns the 16-byte reader key.
func (b *Bundle) Key() ([]byte, error) {
	k, err := hex.DecodeString(b.KeyHex)
	if err != nil || len(k) != 16 {
		return nil, fmt.Errorf("%w: reader key must be 32 hex digits", ErrBundle)
	}
	return k, nil
}

// Validate checks every field is present and well-formed.
func (b *Bundle) Validate() error {
	switch {
	case b.Server == "" && len(b.Servers) == 0:
		return fmt.Errorf("%w: no server", ErrBundle)
	case len(b.Servers) > MaxServers:
		return fmt.Errorf("%w: %d servers, at most %d", ErrBundle, len(b.Servers), MaxServers)
	case b.ReaderSerial == "" || len(b.ReaderSerial) > 32:
		return fmt.Errorf("%w: reader serial must be 1–32 characters", ErrBundle)
	case b.Cipher != CipherSM4 && b.Cipher != CipherAES:
		return fmt.Errorf("%w: cipher %q (want sm4 or aes)", ErrBundle, b.Cipher)
	}
	for _, a := range b.Addresses() {
		if err := checkAddr(a); err != nil {
			return err
		}
	}
	if b.Server != "" {
		if err := checkAddr(b.Server); err != nil {
			return err
		}
	}
	if _, err := b.Key(); err != nil {
		return err
	}
	_, err := b.TLSConfig()
	return err
}

// TLSConfig is the client TLS 1.3 configuration of the bundle.
func (b *Bundle) TLSConfig() (*tls.Config, error) {
	cfg, err := ClientTLS(b.CertPEM, b.KeyPEM, b.CAPEM, b.ServerName)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBundle, err)
	}
	return cfg, nil
}

// ClientTLS is the client TLS 1.3 configuration of a client certificate
// and key and the installation CA, all PEM; the server's certificate must
// be for serverName ("samrack" if empty).
func ClientTLS(certPEM, keyPEM, caPEM, serverName string) (*tls.Config, error) {
	cert, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		return nil, fmt.Errorf("client certificate: %v", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(caPEM)) {
		return nil, errors.New("no CA certificate")
	}
	if serverName == "" {
		serverName = "samrack"
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS13,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   serverName,
	}, nil
}

// Load reads a bundle file and validates it.
func Load(path string) (*Bundle, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var b Bundle
	if err := json.Unmarshal(data, &b); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrBundle, path, err)
	}
	if err := b.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &b, nil
}

// Save writes the bundle with owner-only permissions.
func (b *Bundle) Save(path string) error {
	data, err := json.MarshalIndent(b, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o600)
}
