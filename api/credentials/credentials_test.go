package credentials

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"slices"
	"strings"
	"testing"
	"time"
)

// bundle returns a valid bundle with a self-signed certificate.
func bundle(t testing.TB) *Bundle {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "R1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	return &Bundle{Server: "192.0.2.10:7467", ServerName: "samrack", ReaderSerial: "R1", Cipher: CipherSM4,
		KeyHex: strings.Repeat("ab", 16), CertPEM: cert, CAPEM: cert,
		KeyPEM: string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}))}
}

func TestAddresses(t *testing.T) {
	b := bundle(t)
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := b.Addresses(); !slices.Equal(got, []string{"192.0.2.10:7467"}) {
		t.Fatalf("a bundle without servers: %v", got)
	}
	b.Servers = []string{"192.0.2.10:7467", "192.0.2.11:7467", "[2001:db8::7]:7467", "samrack.example:7467"}
	if err := b.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := b.Addresses(); !slices.Equal(got, b.Servers) {
		t.Fatalf("addresses %v, want the servers", got)
	}
	only := *b
	only.Server = ""
	if err := only.Validate(); err != nil {
		t.Fatalf("servers without server: %v", err)
	}
	for name, mod := range map[string]func(b *Bundle){
		"no address":     func(b *Bundle) { b.Server, b.Servers = "", nil },
		"no port":        func(b *Bundle) { b.Servers = []string{"192.0.2.10"} },
		"port 0":         func(b *Bundle) { b.Servers = []string{"192.0.2.10:0"} },
		"port too large": func(b *Bundle) { b.Servers = []string{"192.0.2.10:65536"} },
		"named port":     func(b *Bundle) { b.Servers = []string{"192.0.2.10:samrack"} },
		"no host":        func(b *Bundle) { b.Servers = []string{":7467"} },
		"bad server":     func(b *Bundle) { b.Server = "192.0.2.10" },
		"too long":       func(b *Bundle) { b.Servers = []string{strings.Repeat("a", 300) + ":7467"} },
		"too many": func(b *Bundle) {
			b.Servers = nil
			for range MaxServers + 1 {
				b.Servers = append(b.Servers, "192.0.2.10:7467")
			}
		},
	} {
		bad := *b
		mod(&bad)
		if err := bad.Validate(); !errors.Is(err, ErrBundle) {
			t.Errorf("%s: %v, want ErrBundle", name, err)
		}
	}
}

func FuzzBundle(f *testing.F) {
	b := bundle(f)
	b.Servers = []string{"192.0.2.10:7467", "192.0.2.11:7467"}
	good, _ := json.Marshal(b)
	f.Add(good)
	f.Add([]byte(`{"server":"x:1","servers":["a:1",":2","[::1]:3"]}`))
	f.Add([]byte(`{"servers":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var b Bundle
		if json.Unmarshal(data, &b) != nil {
			return
		}
		if b.Validate() == nil {
			if len(b.Addresses()) == 0 || len(b.Addresses()) > MaxServers {
				t.Fatalf("valid bundle with %d addresses", len(b.Addresses()))
			}
		}
	})
}
