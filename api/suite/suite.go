// Package suite holds the crypto suites of the reader wire protocol
// (api/PROTOCOL.md): the ephemeral key agreement between a reader terminal
// and the SAM side of the appliance, the key schedule that turns it into two
// directional AEAD keys, the sequence-numbered AEAD records that carry card
// frames end to end through any forwarding appliance, and the reader-key
// sealing of the pre-session data (the card serial and the prefetched card
// exchanges) that a reader sends before any session exists.
//
// Two suites exist:
//
//	GM      SM2-curve ephemeral ECDH, HKDF-SM3,    SM4-GCM   (GB/T 32918, 32905, 32907)
//	X25519  X25519 ephemeral ECDH,    HKDF-SHA256, AES-128-GCM (RFC 7748, 5869; NIST SP 800-38D)
//
// The reader is the initiator. Both sides call Generate, exchange public keys
// (Open / Accept messages of package wire), build the same transcript
// (wire.Transcript) and call Agree; the resulting Sessions seal in their own
// direction and open the peer's.
package suite

import (
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"

	gmecdh "github.com/emmansun/gmsm/ecdh"
	"github.com/emmansun/gmsm/sm3"
)

// ID names a suite on the wire (one byte).
type ID uint8

// The suites, in the numbering of the wire protocol.
const (
	GM     ID = 1 // SM2-curve ECDH, HKDF-SM3, SM4-GCM
	X25519 ID = 2 // X25519, HKDF-SHA256, AES-128-GCM
)

// Sizes shared by both suites.
const (
	// KeySize is the AEAD key size (SM4 and AES-128).
	KeySize = 16
	// IVSize is the per-direction static IV, and the AEAD nonce size.
	IVSize = 12
	// Overhead is what Seal adds to a plaintext: the 16-byte GCM tag.
	Overhead = 16
	// MaxPublic bounds a public key of any suite, present or future (an
	// uncompressed P-521 point is 133 bytes).
	MaxPublic = 133
)

// KeyScheduleLabel starts the HKDF info of every session key schedule.
const KeyScheduleLabel = "samrack session v1"

// Named errors of the package.
var (
	// ErrAuth reports a record or sealed blob that failed authentication:
	// tampered, replayed, reordered, truncated or under the wrong key.
	ErrAuth = errors.New("suite: message authentication failed")
	// ErrUnsupported reports a suite ID this build does not implement.
	ErrUnsupported = errors.New("suite: unsupported suite")
	// ErrPublicKey reports a peer public key that is not a valid point of
	// the suite's curve (or yields a degenerate shared secret).
	ErrPublicKey = errors.New("suite: invalid public key")
	// ErrExhausted reports a direction that has used up its sequence numbers.
	ErrExhausted = errors.New("suite: sequence numbers exhausted")
	// ErrKey reports an unusable reader key or cipher name.
	ErrKey = errors.New("suite: bad reader key")
	// ErrTooLarge reports a plaintext beyond the bound of SealWithReaderKey.
	ErrTooLarge = errors.New("suite: plaintext too large")
)

// Supported returns the suites this build implements, most preferred first.
func Supported() []ID { return []ID{GM, X25519} }

// String returns the suite's name ("GM", "X25519", or "suite(n)").
func (id ID) String() string {
	switch id {
	case GM:
		return "GM"
	case X25519:
		return "X25519"
	}
	return fmt.Sprintf("suite(%d)", uint8(id))
}

// params is what differs between suites.
type params struct {
	newHash  func() hash.Hash
	newAEAD  func(key []byte) (cipher.AEAD, error)
	generate func(rand io.Reader) (privateKey, error)
}

// privateKey is the common shape of crypto/ecdh and gmsm/ecdh private keys.
type privateKey interface {
	publicBytes() []byte
	agree(peer []byte) ([]byte, error)
}

func lookup(id ID) (*params, error) {
	switch id {
	case GM:
		return &gmParams, nil
	case X25519:
		return &x25519Params, nil
	}
	return nil, fmt.Errorf("%w: %v", ErrUnsupported, id)
}

var gmParams = params{
	newHash: sm3.New,
	newAEAD: newSM4GCM,
	generate: func(r io.Reader) (privateKey, error) {
		k, err := gmecdh.P256().GenerateKey(r)
		if err != nil {
			return nil, err
		}
		return gmKey{k}, nil
	},
}

var x25519Params = params{
	newHash: sha256.New,
	newAEAD: newAESGCM,
	generate: func(r io.Reader) (privateKey, error) {
		// Since Go 1.26 crypto/ecdh ignores r and always uses a secure
		// source; r is honoured only by the GM suite.
		k, err := ecdh.X25519().GenerateKey(r)
		if err != nil {
			return nil, err
		}
		return stdKey{k}, nil
	},
}

type gmKey struct{ k *gmecdh.PrivateKey }

func (k gmKey) publicBytes() []byte { return k.k.PublicKey().Bytes() }

func (k gmKey) agree(peer []byte) ([]byte, error) {
	pub, err := gmecdh.P256().NewPublicKey(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPublicKey, err)
	}
	s, err := k.k.ECDH(pub)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPublicKey, err)
	}
	return s, nil
}

type stdKey struct{ k *ecdh.PrivateKey }

func (k stdKey) publicBytes() []byte { return k.k.PublicKey().Bytes() }

func (k stdKey) agree(peer []byte) ([]byte, error) {
	pub, err := k.k.Curve().NewPublicKey(peer)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPublicKey, err)
	}
	s, err := k.k.ECDH(pub) // rejects low-order points (all-zero secret)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrPublicKey, err)
	}
	return s, nil
}

// Ephemeral is one side's ephemeral key pair of a suite. Use it for one
// session: Generate a fresh one per Open (reader) or per Accept (SAM side).
type Ephemeral struct {
	id  ID
	p   *params
	key privateKey
}

// Generate makes an ephemeral key pair of suite id. A nil rand means
// crypto/rand.Reader. (The X25519 suite always uses the system's secure
// source, as crypto/ecdh does since Go 1.26.)
func Generate(id ID, rand io.Reader) (*Ephemeral, error) {
	p, err := lookup(id)
	if err != nil {
		return nil, err
	}
	if rand == nil {
		rand = cryptoRand
	}
	k, err := p.generate(rand)
	if err != nil {
		return nil, fmt.Errorf("suite %v: generate: %w", id, err)
	}
	return &Ephemeral{id: id, p: p, key: k}, nil
}

var cryptoRand = rand.Reader

// Suite returns the suite of the key pair.
func (e *Ephemeral) Suite() ID { return e.id }

// Public returns the public key as it goes on the wire: 65 bytes
// (uncompressed SM2 point, 04||X||Y) for GM, 32 bytes for X25519.
func (e *Ephemeral) Public() []byte { return e.key.publicBytes() }

// Agree runs the key agreement with the peer's public key and derives the
// session keys (see the key schedule in api/PROTOCOL.md):
//
//	secret = ECDH(own private, peer public)       (x-coordinate for GM)
//	okm    = HKDF-H(secret, salt = none,
//	                info = "samrack session v1" || H(transcript), 56 bytes)
//	key_r2s = okm[0:16]   key_s2r = okm[16:32]   iv_r2s = okm[32:44]   iv_s2r = okm[44:56]
//
// where H is SM3 (GM) or SHA-256 (X25519), r2s is the reader → SAM-side
// direction and s2r the other. initiator is true on the reader, false on the
// SAM side: the initiator seals with r2s and opens s2r.
func (e *Ephemeral) Agree(peerPublic []byte, transcript []byte, initiator bool) (*Session, error) {
	if len(peerPublic) == 0 || len(peerPublic) > MaxPublic {
		return nil, fmt.Errorf("%w: %d bytes", ErrPublicKey, len(peerPublic))
	}
	secret, err := e.key.agree(peerPublic)
	if err != nil {
		return nil, fmt.Errorf("suite %v: %w", e.id, err)
	}
	return newSession(e.id, e.p, secret, transcript, initiator)
}

func newSession(id ID, p *params, secret, transcript []byte, initiator bool) (*Session, error) {
	h := p.newHash()
	h.Write(transcript)
	info := append([]byte(KeyScheduleLabel), h.Sum(nil)...)
	okm, err := hkdf.Key(p.newHash, secret, nil, string(info), 2*KeySize+2*IVSize)
	if err != nil {
		return nil, fmt.Errorf("suite %v: key schedule: %w", id, err)
	}
	kR2S, kS2R := okm[0:KeySize], okm[KeySize:2*KeySize]
	ivR2S, ivS2R := okm[2*KeySize:2*KeySize+IVSize], okm[2*KeySize+IVSize:]
	r2s, err := newDirection(p, kR2S, ivR2S)
	if err != nil {
		return nil, err
	}
	s2r, err := newDirection(p, kS2R, ivS2R)
	if err != nil {
		return nil, err
	}
	s := &Session{id: id}
	if initiator {
		s.send, s.recv = r2s, s2r
	} else {
		s.send, s.recv = s2r, r2s
	}
	return s, nil
}
