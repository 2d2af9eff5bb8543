package host

import (
	"crypto"
	"crypto/tls"
	"fmt"
	"slices"

	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
)

// certSigner is a Signer made of a TLS certificate and its key.
type certSigner struct {
	crypto.Signer
	chain [][]byte
}

// Chain implements Signer.
func (s *certSigner) Chain() [][]byte { return s.chain }

var _ Signer = (*certSigner)(nil)

// CertSigner makes a Signer of a certificate and its key: for now the
// appliance's server certificate (appliance/pki), later its cluster node
// certificate; both are issued by the installation CA, which readers hold.
// The key must be one a key share signature scheme exists for (ECDSA
// P-256). The chain goes to readers as it is: it should not hold the CA.
func CertSigner(c tls.Certificate) (Signer, error) {
	k, ok := c.PrivateKey.(crypto.Signer)
	if !ok || len(c.Certificate) == 0 {
		return nil, fmt.Errorf("host: node certificate without a signing key")
	}
	if _, err := suite.SigAlgFor(k.Public()); err != nil {
		return nil, fmt.Errorf("host: node key: %w", err)
	}
	if len(c.Certificate) > wire.MaxCertChain {
		return nil, fmt.Errorf("host: node certificate chain of %d certificates > %d", len(c.Certificate), wire.MaxCertChain)
	}
	return &certSigner{Signer: k, chain: slices.Clone(c.Certificate)}, nil
}
