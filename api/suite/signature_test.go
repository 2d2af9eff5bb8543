package suite

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"
)

// testCA issues certificates the way appliance/pki does: an ECDSA P-256 CA,
// server certificates with ServerAuth, reader certificates ClientAuth only.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(c)
	return &testCA{cert: c, key: key, pool: pool}
}

func (ca *testCA) issue(t *testing.T, cn string, eku x509.ExtKeyUsage) (*ecdsa.PrivateKey, []byte) {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{eku}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		t.Fatal(err)
	}
	return key, der
}

func TestVerifyKeyShare(t *testing.T) {
	ca := newTestCA(t)
	node, nodeDER := ca.issue(t, "node-1", x509.ExtKeyUsageServerAuth)
	reader, readerDER := ca.issue(t, "R-0001", x509.ExtKeyUsageClientAuth)
	other := newTestCA(t)
	stranger, strangerDER := other.issue(t, "node-x", x509.ExtKeyUsageServerAuth)
	content := []byte(KeyShareSignatureLabel + "\x00\x01 some handshake")
	sign := func(k *ecdsa.PrivateKey, c []byte) []byte {
		s, err := SignKeyShare(k, SigECDSAP256SHA256, c, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	good := sign(node, content)
	if c, err := VerifyKeyShare(ca.pool, [][]byte{nodeDER}, SigECDSAP256SHA256, content, good, time.Now()); err != nil || c.Subject.CommonName != "node-1" {
		t.Fatalf("good signature: %v, %v", c, err)
	}
	altered := append([]byte(nil), content...)
	altered[len(altered)-1] ^= 0x20
	for _, tc := range []struct {
		name    string
		chain   [][]byte
		alg     SigAlg
		content []byte
		sig     []byte
		now     time.Time
		want    error
	}{
		{"altered content", [][]byte{nodeDER}, SigECDSAP256SHA256, altered, good, time.Now(), ErrSignature},
		{"altered signature", [][]byte{nodeDER}, SigECDSAP256SHA256, content, flip(good), time.Now(), ErrSignature},
		{"another node's key", [][]byte{nodeDER}, SigECDSAP256SHA256, content, sign(stranger, content), time.Now(), ErrSignature},
		{"certificate of another CA", [][]byte{strangerDER}, SigECDSAP256SHA256, content, sign(stranger, content), time.Now(), ErrSignerCertificate},
		{"a reader's certificate", [][]byte{readerDER}, SigECDSAP256SHA256, content, sign(reader, content), time.Now(), ErrSignerCertificate},
		{"expired", [][]byte{nodeDER}, SigECDSAP256SHA256, content, good, time.Now().Add(2 * time.Hour), ErrSignerCertificate},
		{"no certificate", nil, SigECDSAP256SHA256, content, good, time.Now(), ErrSignerCertificate},
		{"garbage certificate", [][]byte{{0x30, 0x03, 1, 2, 3}}, SigECDSAP256SHA256, content, good, time.Now(), ErrSignerCertificate},
		{"unknown scheme", [][]byte{nodeDER}, 2, content, good, time.Now(), ErrSigAlg},
	} {
		if _, err := VerifyKeyShare(ca.pool, tc.chain, tc.alg, tc.content, tc.sig, tc.now); !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	if _, err := SignKeyShare(node, 2, content, nil); !errors.Is(err, ErrSigAlg) {
		t.Errorf("SignKeyShare under a scheme the key does not have: %v", err)
	}
}

func flip(b []byte) []byte {
	c := append([]byte(nil), b...)
	c[len(c)/2] ^= 1
	return c
}

// FuzzVerifyKeyShare: whatever a front end puts in a KeyShareSignature,
// verification returns an error (never a panic) unless it is a genuine
// signature.
func FuzzVerifyKeyShare(f *testing.F) {
	f.Add([]byte{0x30, 0x03, 1, 2, 3}, uint8(1), []byte{0x30, 0x06, 2, 1, 1, 2, 1, 1})
	f.Add([]byte{}, uint8(2), []byte{})
	pool := x509.NewCertPool()
	f.Fuzz(func(t *testing.T, cert []byte, alg uint8, sig []byte) {
		if _, err := VerifyKeyShare(pool, [][]byte{cert}, SigAlg(alg), []byte("content"), sig, time.Now()); err == nil {
			t.Fatal("verified without a CA")
		}
	})
}

// BenchmarkKeyShareSignature: what the signed key share costs per read, the
// session host's signature and the reader's verification (chain and
// signature).
func BenchmarkKeyShareSignature(b *testing.B) {
	t := &testing.T{}
	ca := newTestCA(t)
	node, der := ca.issue(t, "node-1", x509.ExtKeyUsageServerAuth)
	content := make([]byte, 160)
	b.Run("sign", func(b *testing.B) {
		for range b.N {
			if _, err := SignKeyShare(node, SigECDSAP256SHA256, content, rand.Reader); err != nil {
				b.Fatal(err)
			}
		}
	})
	sig, _ := SignKeyShare(node, SigECDSAP256SHA256, content, rand.Reader)
	b.Run("verify", func(b *testing.B) {
		for range b.N {
			if _, err := VerifyKeyShare(ca.pool, [][]byte{der}, SigECDSAP256SHA256, content, sig, time.Now()); err != nil {
				b.Fatal(err)
			}
		}
	})
	cert, _, err := VerifyKeyShareChain(ca.pool, [][]byte{der}, time.Now())
	if err != nil {
		b.Fatal(err)
	}
	b.Run("verify-signature-only", func(b *testing.B) { // a chain the SDK verified before
		for range b.N {
			if err := VerifyKeyShareSignature(cert, SigECDSAP256SHA256, content, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}
