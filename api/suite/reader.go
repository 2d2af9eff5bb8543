package suite

import (
	"crypto/cipher"
	"fmt"
	"io"
)

// Reader-key sealing protects the pre-session data a reader sends in its
// Open message (the card serial and prefetched card exchanges) under the
// reader's 16-byte symmetric key, before any session key exists.
//
//	sealed = nonce (12 random bytes) || GCM(key, nonce, plaintext, AAD) (ciphertext || 16-byte tag)
//	AAD    = "samrack reader v1" || readerSerial
const (
	// ReaderLabel starts the associated data of reader-key sealing.
	ReaderLabel = "samrack reader v1"
	// ReaderOverhead is what SealWithReaderKey adds: nonce and tag.
	ReaderOverhead = IVSize + Overhead
	// MaxReaderSealed bounds a reader-key sealed blob (the wire's Open.Sealed).
	MaxReaderSealed = 4096
	// MaxReaderPlaintext bounds what SealWithReaderKey accepts.
	MaxReaderPlaintext = MaxReaderSealed - ReaderOverhead
	// MaxReaderSerial bounds the reader serial (the credentials bound).
	MaxReaderSerial = 32
)

// Reader-key cipher names, the values of credentials.Bundle.Cipher.
const (
	CipherSM4 = "sm4" // SM4-GCM
	CipherAES = "aes" // AES-128-GCM
)

func readerAEAD(cipherName string, key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("%w: key of %d bytes, want %d", ErrKey, len(key), KeySize)
	}
	var (
		a   cipher.AEAD
		err error
	)
	switch cipherName {
	case CipherSM4:
		a, err = newSM4GCM(key)
	case CipherAES:
		a, err = newAESGCM(key)
	default:
		return nil, fmt.Errorf("%w: cipher %q (want %q or %q)", ErrKey, cipherName, CipherSM4, CipherAES)
	}
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrKey, err)
	}
	return a, nil
}

func readerAAD(readerSerial string) []byte {
	return append([]byte(ReaderLabel), readerSerial...)
}

// SealWithReaderKey seals plaintext (at most MaxReaderPlaintext bytes) under
// the reader key with cipher CipherSM4 or CipherAES, bound to readerSerial.
// A nil rand means crypto/rand.Reader.
func SealWithReaderKey(cipherName string, key []byte, readerSerial string, plaintext []byte, rand io.Reader) ([]byte, error) {
	a, err := readerAEAD(cipherName, key)
	if err != nil {
		return nil, err
	}
	if len(readerSerial) > MaxReaderSerial {
		return nil, fmt.Errorf("%w: reader serial of %d bytes", ErrKey, len(readerSerial))
	}
	if len(plaintext) > MaxReaderPlaintext {
		return nil, fmt.Errorf("%w: %d bytes > %d", ErrTooLarge, len(plaintext), MaxReaderPlaintext)
	}
	if rand == nil {
		rand = cryptoRand
	}
	out := make([]byte, IVSize, IVSize+len(plaintext)+Overhead)
	if _, err := io.ReadFull(rand, out); err != nil {
		return nil, fmt.Errorf("suite: reader-key nonce: %w", err)
	}
	return a.Seal(out, out[:IVSize], plaintext, readerAAD(readerSerial)), nil
}

// OpenWithReaderKey opens what SealWithReaderKey sealed. Every failure that
// depends on sealed (size, tag, wrong key or serial) wraps ErrAuth; an
// unusable key or cipher name wraps ErrKey. The plaintext is freshly allocated.
func OpenWithReaderKey(cipherName string, key []byte, readerSerial string, sealed []byte) ([]byte, error) {
	a, err := readerAEAD(cipherName, key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < ReaderOverhead || len(sealed) > MaxReaderSealed {
		return nil, fmt.Errorf("%w: reader-key blob of %d bytes", ErrAuth, len(sealed))
	}
	pt, err := a.Open(nil, sealed[:IVSize], sealed[IVSize:], readerAAD(readerSerial))
	if err != nil {
		return nil, fmt.Errorf("%w: reader-key blob", ErrAuth)
	}
	return pt, nil
}
