package admin

import (
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/samrack/samrack/api/credentials"
)

// Credentials is an operator's admin credentials file: where the admin API
// is, the CA that signs the appliance's certificate, and the operator's
// client certificate and key. The appliance writes one for its bootstrap
// admin identity (CredentialsFile in its data directory, mode 0600);
// `samctl operator add` writes one for each new operator. The JSON form is
// the file format.
type Credentials struct {
	URL        string `json:"url"`         // https://host:port of the admin API
	ServerName string `json:"server_name"` // name in the appliance certificate
	Operator   string `json:"operator"`    // the certificate's CommonName
	Role       string `json:"role,omitempty"`
	CertPEM    string `json:"cert_pem"`
	KeyPEM     string `json:"key_pem"`
	CAPEM      string `json:"ca_pem"`
}

// CredentialsFile is the name of the bootstrap admin credentials file in
// the appliance's data directory.
const CredentialsFile = "admin.json"

// ErrCredentials reports an unusable credentials file.
var ErrCredentials = errors.New("admin: bad credentials")

// TLSConfig is the client TLS 1.3 configuration of the credentials.
func (c *Credentials) TLSConfig() (*tls.Config, error) {
	cfg, err := credentials.ClientTLS(c.CertPEM, c.KeyPEM, c.CAPEM, c.ServerName)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCredentials, err)
	}
	return cfg, nil
}

// LoadCredentials reads and checks a credentials file.
func LoadCredentials(path string) (*Credentials, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var c Credentials
	if err := json.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCredentials, path, err)
	}
	if c.URL == "" {
		return nil, fmt.Errorf("%w: %s: no url", ErrCredentials, path)
	}
	if _, err := c.TLSConfig(); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return &c, nil
}

// Save writes the credentials with owner-only permissions, atomically.
func (c *Credentials) Save(path string) error {
	data, err := json.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name()) // no-op after the rename
	if err := f.Chmod(0o600); err != nil {
		f.Close()
		return err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// FindCredentials returns the path of the admin credentials to use: file if
// given; else CredentialsFile in dataDir if given; else in each of
// defaultDirs in turn. The error lists where it looked.
func FindCredentials(file, dataDir string, defaultDirs ...string) (string, error) {
	if file != "" {
		return file, nil
	}
	dirs := defaultDirs
	if dataDir != "" {
		dirs = []string{dataDir}
	}
	var tried []string
	for _, d := range dirs {
		p := filepath.Join(d, CredentialsFile)
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
		if errors.Is(err, fs.ErrPermission) {
			return "", fmt.Errorf("%s: permission denied (the admin credentials are root-only: run samctl as root on the appliance, or use --creds with an operator credentials file)", p)
		}
		tried = append(tried, p)
	}
	return "", fmt.Errorf("no admin credentials found (looked for %v): on the appliance run samctl as root, or pass --data DIR (the daemon's --data), --creds FILE or --profile NAME", tried)
}

// CertSerial is the form of a certificate serial stored with an operator
// identity: lowercase hex of its bytes.
func CertSerial(c *x509.Certificate) string { return hex.EncodeToString(c.SerialNumber.Bytes()) }

// Fingerprint is the lowercase hex SHA-256 of a certificate.
func Fingerprint(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}
