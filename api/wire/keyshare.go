package wire

import "github.com/samrack/samrack/api/suite"

// ALPNSignedKeyShare is the TLS application protocol (ALPN) a reader offers
// to ask for signed key shares (api/PROTOCOL.md §2, §8.1). On a connection
// that negotiated it, every Accept is followed, in the same frame, by a
// KeyShareSignature; on any other connection the appliance never sends one,
// so readers built before it see nothing new.
const ALPNSignedKeyShare = "samrack-signed-key-share"

// Bounds of KeyShareSignature.
const (
	// MaxCertChain bounds the certificates of a KeyShareSignature (the
	// signer's, then intermediates; the CA itself is not sent).
	MaxCertChain = 3
	// MaxCertificate bounds one DER certificate.
	MaxCertificate = 4096
	// MaxSignature bounds the signature.
	MaxSignature = suite.MaxSignature
)

// KeyShareSignature (0x03, appliance → reader) follows Accept on a
// connection that negotiated ALPNSignedKeyShare: the session host's
// signature, by its node key, of KeyShareSignedContent, and the
// certificate chain of that key.
type KeyShareSignature struct {
	Alg       suite.SigAlg
	Chain     [][]byte // 1..MaxCertChain DER certificates, each 1..MaxCertificate bytes, signer first
	Signature []byte   // 1..MaxSignature bytes
}

// Type implements Message.
func (*KeyShareSignature) Type() Type { return TypeKeyShareSignature }

// KeyShareSignedContent is what a session host signs and a reader verifies:
//
//	"samrack key share signature v1" || 0x00     (suite.KeyShareSignatureLabel)
//	alg u8                                       (KeyShareSignature.Alg)
//	share count u8                               every key share of the Open, in the Open's order:
//	  suite u8 || len u8 || public key
//	transcript                                   (Transcript, §8: reader serial, the chosen
//	                                             share's public key, session ID, suite,
//	                                             SAM-side public key)
//
// The reader's fresh ephemeral key makes a signature good for one Open only
// (no replay); the reader serial and session ID tie it to one reader and one
// session (no splice); all offered shares, as the host received them, show a
// removed or altered share (no suite downgrade). Inputs come from decoded
// messages and are within the wire bounds; longer inputs are cut to them.
func KeyShareSignedContent(alg suite.SigAlg, shares []KeyShare, transcript []byte) []byte {
	shares = shares[:min(len(shares), MaxKeyShares)]
	n := len(suite.KeyShareSignatureLabel) + 3 + len(transcript)
	for _, ks := range shares {
		n += 2 + len(ks.Public)
	}
	b := make([]byte, 0, n)
	b = append(b, suite.KeyShareSignatureLabel...)
	b = append(b, 0, byte(alg), byte(len(shares)))
	for _, ks := range shares {
		pub := ks.Public[:min(len(ks.Public), MaxPublic)]
		b = append(b, byte(ks.Suite), byte(len(pub)))
		b = append(b, pub...)
	}
	return append(b, transcript...)
}
