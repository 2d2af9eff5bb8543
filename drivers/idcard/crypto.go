package idcard

import (
	"crypto/cipher"
	"crypto/hmac"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
)

// DevMasterKey is the issuer master key of development: every virtual card
// and virtual SAM uses it unless told otherwise. It is public and protects
// nothing; a deployment with simulated cards that matter must set its own.
var DevMasterKey = []byte("samrack dev issuer master key v1")

// ErrMAC reports a block whose MAC does not verify.
var ErrMAC = errors.New("idcard: block MAC mismatch")

func mac(key []byte, parts ...[]byte) []byte {
	h := hmac.New(sm3.New, key)
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// CardKey derives the card key K of the card with this serial from the
// issuer master key: the first 16 bytes of HMAC-SM3(master, serial).
func CardKey(master []byte, serial [SerialLen]byte) [16]byte {
	var k [16]byte
	copy(k[:], mac(master, serial[:]))
	return k
}

// SAMProof is the SAM's proof of K: HMAC-SM3(K, 01|rc|rs|serial)[:16].
func SAMProof(k [16]byte, rc, rs [ChallengeLen]byte, serial [SerialLen]byte) [ProofLen]byte {
	var p [ProofLen]byte
	copy(p[:], mac(k[:], []byte{0x01}, rc[:], rs[:], serial[:]))
	return p
}

// CardProof is the card's proof of K: HMAC-SM3(K, 02|rs|rc|serial)[:16].
func CardProof(k [16]byte, rc, rs [ChallengeLen]byte, serial [SerialLen]byte) [ProofLen]byte {
	var p [ProofLen]byte
	copy(p[:], mac(k[:], []byte{0x02}, rs[:], rc[:], serial[:]))
	return p
}

// ProofEqual compares two proofs in constant time.
func ProofEqual(a, b []byte) bool { return subtle.ConstantTimeCompare(a, b) == 1 }

// SessionKey is the card session key S that both ends derive after mutual
// authentication: Enc keys SM4-CTR, MAC keys the block MACs.
type SessionKey struct {
	Enc, MAC [16]byte
}

// NewSessionKey derives S = HMAC-SM3(K, "samrack-idcard-v1 session"|rc|rs).
func NewSessionKey(k [16]byte, rc, rs [ChallengeLen]byte) SessionKey {
	s := mac(k[:], []byte("samrack-idcard-v1 session"), rc[:], rs[:])
	var sk SessionKey
	copy(sk.Enc[:], s[:16])
	copy(sk.MAC[:], s[16:32])
	return sk
}

func (sk *SessionKey) crypt(file byte, block int, dst, src []byte) {
	c, err := sm4.NewCipher(sk.Enc[:])
	if err != nil {
		panic(err) // 16-byte key: cannot fail
	}
	var iv [sm4.BlockSize]byte
	iv[0], iv[1] = file, byte(block)
	cipher.NewCTR(c, iv[:]).XORKeyStream(dst, src)
}

func (sk *SessionKey) blockMAC(file byte, block int, ct []byte) []byte {
	var hdr [5]byte
	hdr[0], hdr[1], hdr[2] = 0x03, file, byte(block)
	binary.BigEndian.PutUint16(hdr[3:], uint16(len(ct)))
	return mac(sk.MAC[:], hdr[:], ct)[:MACLen]
}

// Seal encrypts one block of plaintext and appends its MAC: the body of a
// READ BLOCK reply (without the status word).
func (sk *SessionKey) Seal(file byte, block int, plain []byte) []byte {
	out := make([]byte, len(plain), len(plain)+MACLen+2)
	sk.crypt(file, block, out, plain)
	return append(out, sk.blockMAC(file, block, out)...)
}

// Open checks the MAC of a sealed block (a READ BLOCK reply body) and
// returns its plaintext. The error wraps ErrMAC or ErrBadReply.
func (sk *SessionKey) Open(file byte, block int, sealed []byte) ([]byte, error) {
	if len(sealed) < MACLen {
		return nil, fmt.Errorf("%w: sealed block of %d bytes", ErrBadReply, len(sealed))
	}
	ct, tag := sealed[:len(sealed)-MACLen], sealed[len(sealed)-MACLen:]
	if !hmac.Equal(tag, sk.blockMAC(file, block, ct)) {
		return nil, fmt.Errorf("%w: file %02X block %d", ErrMAC, file, block)
	}
	plain := make([]byte, len(ct))
	sk.crypt(file, block, plain, ct)
	return plain, nil
}
