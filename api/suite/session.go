package suite

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"fmt"
	"math"
	"sync"

	"github.com/emmansun/gmsm/sm4"
)

// Session is the end-to-end AEAD channel between a reader and the SAM side,
// made by Ephemeral.Agree. Each direction numbers its records 0, 1, 2, …; the
// nonce of record n is the direction's IV xor n (n as a 64-bit big-endian
// integer in the last 8 of the 12 bytes, as in TLS 1.3), and there is no
// associated data. Open accepts only the next record in order, so a replayed,
// reordered, dropped or tampered record fails with ErrAuth.
//
// Seal and Open may be called from different goroutines; each direction has
// its own lock (and concurrent Seals are serialised).
type Session struct {
	id   ID
	send *direction
	recv *direction
}

// direction is one direction's key state.
type direction struct {
	aead cipher.AEAD
	iv   [IVSize]byte

	mu  sync.Mutex // mu guards seq
	seq uint64     // number of the next record; math.MaxUint64 = exhausted
}

func newDirection(p *params, key, iv []byte) (*direction, error) {
	a, err := p.newAEAD(key)
	if err != nil {
		return nil, err
	}
	d := &direction{aead: a}
	copy(d.iv[:], iv)
	return d, nil
}

// nonceLocked returns the nonce of record d.seq.
func (d *direction) nonceLocked() [IVSize]byte {
	n := d.iv
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], d.seq)
	for i := range s {
		n[IVSize-8+i] ^= s[i]
	}
	return n
}

// Suite returns the session's suite.
func (s *Session) Suite() ID { return s.id }

// Seal encrypts and authenticates plaintext as the next record of the
// session's own direction and returns the record (len(plaintext)+Overhead
// bytes, freshly allocated). It returns nil once the direction has used all
// its 2^64−1 sequence numbers; the peer's Open of a nil record fails, and a
// session that ever gets there has far outlived any read.
func (s *Session) Seal(plaintext []byte) []byte {
	d := s.send
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seq == math.MaxUint64 {
		return nil
	}
	nonce := d.nonceLocked()
	d.seq++
	return d.aead.Seal(make([]byte, 0, len(plaintext)+Overhead), nonce[:], plaintext, nil)
}

// Open authenticates and decrypts the next record of the peer's direction.
// Any failure returns an error wrapping ErrAuth (or ErrExhausted) and does not
// consume a sequence number; the protocol treats it as fatal to the session.
// The plaintext is freshly allocated.
func (s *Session) Open(sealed []byte) ([]byte, error) {
	d := s.recv
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.seq == math.MaxUint64 {
		return nil, ErrExhausted
	}
	if len(sealed) < Overhead {
		return nil, fmt.Errorf("%w: record %d: %d bytes", ErrAuth, d.seq, len(sealed))
	}
	nonce := d.nonceLocked()
	pt, err := d.aead.Open(make([]byte, 0, len(sealed)-Overhead), nonce[:], sealed, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: record %d", ErrAuth, d.seq)
	}
	d.seq++
	return pt, nil
}

func newSM4GCM(key []byte) (cipher.AEAD, error) {
	b, err := sm4.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

func newAESGCM(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize { // AES-128 only
		return nil, aes.KeySizeError(len(key))
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
