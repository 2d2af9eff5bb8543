package suite

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"time"
)

// The signed key share (api/PROTOCOL.md §8.1). The SAM side of a session —
// the session host, on the appliance of the SAM it leased — signs its
// ephemeral key share and the handshake it belongs to with its appliance's
// node key, whose certificate chains to the installation CA. A reader that
// holds that CA (ca_pem in its bundle) verifies the signature, so an
// appliance in the middle (the front end that holds the reader's TLS
// connection and relays the session's records) cannot substitute its own key
// share and read or alter the card data.

// SigAlg names a signature scheme of a signed key share (one byte on the
// wire).
type SigAlg uint8

// The signature schemes.
const (
	// SigECDSAP256SHA256 is ECDSA over NIST P-256 with SHA-256, the
	// signature an ASN.1 DER Ecdsa-Sig-Value (as TLS 1.3's
	// ecdsa_secp256r1_sha256): the installation CA (appliance/pki) is
	// ECDSA P-256 and issues P-256 node certificates.
	SigECDSAP256SHA256 SigAlg = 1
	// SigSM2SM3 (2) is reserved for SM2 with SM3 (GB/T 32918.2, default
	// user ID) once the CA issues SM2 certificates; not implemented.
)

// MaxSignature bounds a key-share signature (a P-256 DER signature is at
// most 72 bytes; room for larger schemes).
const MaxSignature = 256

// KeyShareSignatureLabel starts the signed content of every key-share
// signature; it keeps the signature apart from any other use of the node
// key (a TLS 1.3 CertificateVerify starts with 64 spaces).
const KeyShareSignatureLabel = "samrack key share signature v1"

// Named errors of key-share signatures.
var (
	// ErrSignature reports a key-share signature that does not verify: a
	// key share, transcript or signature altered on the way.
	ErrSignature = errors.New("suite: key share signature does not verify")
	// ErrSignerCertificate reports a signer certificate chain that does
	// not chain to the CA, is not valid now, or is not a server/node
	// certificate.
	ErrSignerCertificate = errors.New("suite: key share signer certificate not trusted")
	// ErrSigAlg reports a signature scheme this build does not implement,
	// or one that does not match the certificate's key.
	ErrSigAlg = errors.New("suite: unsupported key share signature scheme")
)

// String returns the scheme's name.
func (a SigAlg) String() string {
	switch a {
	case SigECDSAP256SHA256:
		return "ecdsa-p256-sha256"
	case 2:
		return "sm2-sm3"
	}
	return fmt.Sprintf("sigalg(%d)", uint8(a))
}

// SigAlgFor returns the scheme a node key signs with.
func SigAlgFor(pub crypto.PublicKey) (SigAlg, error) {
	if k, ok := pub.(*ecdsa.PublicKey); ok && k.Curve == elliptic.P256() {
		return SigECDSAP256SHA256, nil
	}
	return 0, fmt.Errorf("%w: node key %T", ErrSigAlg, pub)
}

// SignKeyShare signs content (wire.KeyShareSignedContent) with key under
// alg. A nil rand makes the deterministic signature of RFC 6979 (test
// vectors); otherwise the signature is randomised.
func SignKeyShare(key crypto.Signer, alg SigAlg, content []byte, rand io.Reader) ([]byte, error) {
	if a, err := SigAlgFor(key.Public()); err != nil || a != alg {
		return nil, fmt.Errorf("%w: %v with a %T key", ErrSigAlg, alg, key.Public())
	}
	d := sha256.Sum256(content)
	sig, err := key.Sign(rand, d[:], crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("suite: sign key share: %w", err)
	}
	return sig, nil
}

// VerifyKeyShare checks a key-share signature: chain (DER certificates, the
// signer's first, then any intermediates) must chain to roots, be valid at
// now and allow server authentication (appliance and node certificates do;
// reader and operator certificates, client-only, do not), and sig must be
// the signature of content under alg by the first certificate's key. It
// returns the signer's certificate.
func VerifyKeyShare(roots *x509.CertPool, chain [][]byte, alg SigAlg, content, sig []byte, now time.Time) (*x509.Certificate, error) {
	cert, _, err := VerifyKeyShareChain(roots, chain, now)
	if err != nil {
		return nil, err
	}
	if err := VerifyKeyShareSignature(cert, alg, content, sig); err != nil {
		return nil, err
	}
	return cert, nil
}

// VerifyKeyShareChain is the certificate half of VerifyKeyShare. It also
// returns when the verified chain stops being valid (the earliest NotAfter
// in it), so that a reader may keep the result until then.
func VerifyKeyShareChain(roots *x509.CertPool, chain [][]byte, now time.Time) (*x509.Certificate, time.Time, error) {
	if len(chain) == 0 {
		return nil, time.Time{}, fmt.Errorf("%w: no certificate", ErrSignerCertificate)
	}
	certs := make([]*x509.Certificate, len(chain))
	for i, der := range chain {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, time.Time{}, fmt.Errorf("%w: certificate %d: %v", ErrSignerCertificate, i, err)
		}
		certs[i] = c
	}
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		inter.AddCert(c)
	}
	chains, err := certs[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: now,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
	if err != nil {
		return nil, time.Time{}, fmt.Errorf("%w: %v", ErrSignerCertificate, err)
	}
	until := certs[0].NotAfter
	for _, c := range chains[0] {
		if c.NotAfter.Before(until) {
			until = c.NotAfter
		}
	}
	return certs[0], until, nil
}

// VerifyKeyShareSignature is the signature half of VerifyKeyShare: sig
// must be the signature of content under alg by cert's key.
func VerifyKeyShareSignature(cert *x509.Certificate, alg SigAlg, content, sig []byte) error {
	switch alg {
	case SigECDSAP256SHA256:
		pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || pub.Curve != elliptic.P256() {
			return fmt.Errorf("%w: %v with a %T key", ErrSigAlg, alg, cert.PublicKey)
		}
		d := sha256.Sum256(content)
		if !ecdsa.VerifyASN1(pub, d[:], sig) {
			return fmt.Errorf("%w (signer %q)", ErrSignature, cert.Subject.CommonName)
		}
		return nil
	}
	return fmt.Errorf("%w: %v", ErrSigAlg, alg)
}
