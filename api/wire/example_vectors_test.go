package wire

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"testing"
	"time"

	"github.com/samrack/samrack/api/suite"
)

// The worked examples of api/PROTOCOL.md. If one of these changes, the
// document (and every reader's firmware) is wrong: change neither lightly.

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

const (
	exReaderKey   = "00112233445566778899aabbccddeeff"
	exNonce       = "000102030405060708090a0b"
	exAlicePriv   = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a" // RFC 7748 §6.1
	exAlicePublic = "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a"
	exBobPriv     = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
	exBobPublic   = "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
	exSessionID   = "000102030405060708090a0b0c0d0e0f"
)

func exPreSession() *PreSession {
	return &PreSession{
		CardSerial: [8]byte{0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88},
		Prefetch: []Exchange{
			// REQB → ATQB: 50, PUPI d103860c, APP 00000000, PROTO 008181 (drivers/idcard)
			{Cmd: []byte{0x05, 0x00, 0x00}, Resp: []byte{0x50, 0xD1, 0x03, 0x86, 0x0C, 0x00, 0x00, 0x00, 0x00, 0x00, 0x81, 0x81}},
		},
	}
}

func TestWorkedExamples(t *testing.T) {
	var sid [16]byte
	copy(sid[:], mustHex(t, exSessionID))

	pre, err := MarshalPreSession(exPreSession())
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := suite.SealWithReaderKey(suite.CipherAES, mustHex(t, exReaderKey), "R-0001", pre, bytes.NewReader(mustHex(t, exNonce)))
	if err != nil {
		t.Fatal(err)
	}

	// Key schedule, recomputed from the standard primitives.
	alice, _ := ecdh.X25519().NewPrivateKey(mustHex(t, exAlicePriv))
	bob, _ := ecdh.X25519().NewPublicKey(mustHex(t, exBobPublic))
	secret, _ := alice.ECDH(bob)
	tr := Transcript("R-0001", mustHex(t, exAlicePublic), sid, suite.X25519, mustHex(t, exBobPublic))
	th := sha256.Sum256(tr)
	okm, _ := hkdf.Key(sha256.New, secret, nil, suite.KeyScheduleLabel+string(th[:]), 56)
	seal := func(key, iv []byte, seq byte, pt []byte) []byte {
		b, _ := aes.NewCipher(key)
		g, _ := cipher.NewGCM(b)
		n := bytes.Clone(iv)
		n[11] ^= seq
		return g.Seal(nil, n, pt, nil)
	}
	emptyList := []byte{0x00}                                   // EncodeCardFrames(nil)
	s2r0 := seal(okm[16:32], okm[44:56], 0, []byte{0, 0, 0, 0}) // find: the 4-byte management information
	r2s0 := seal(okm[0:16], okm[32:44], 0, emptyList)

	frames := []struct {
		name string
		msgs []Message
		want string
	}{
		{"ping", []Message{&Ping{Nonce: 1}}, exPing},
		{"busy", []Message{&Error{Code: Busy, RetryAfter: 50 * time.Millisecond, Message: "no idle SAM"}}, exBusy},
		{"frame 1", []Message{
			&Open{ReaderSerial: "R-0001", KeyShares: []KeyShare{{Suite: suite.X25519, Public: mustHex(t, exAlicePublic)}}, Sealed: sealed},
			&FindRequest{}, &SelectRequest{}, &ReadRequest{},
		}, exFrame1},
		{"accept", []Message{
			&Accept{SessionID: sid, Suite: suite.X25519, Public: mustHex(t, exBobPublic)},
			&FindResponse{Done: true, SW3: 0x9F, Sealed: s2r0},
		}, exAccept},
	}
	for _, f := range frames {
		b, err := Marshal(f.msgs...)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(b); got != f.want {
			t.Errorf("%s =\n%s\nwant\n%s", f.name, got, f.want)
		}
	}
	for name, c := range map[string]struct {
		got  []byte
		want string
	}{
		"pre-session":        {pre, exPre},
		"sealed pre-session": {sealed, exSealed},
		"transcript":         {tr, exTranscript},
		"shared secret":      {secret, exSecret},
		"okm":                {okm, exOKM},
		"s2r record 0":       {s2r0, exS2R0},
		"r2s record 0":       {r2s0, exR2S0},
	} {
		if got := hex.EncodeToString(c.got); got != c.want {
			t.Errorf("%s = %s, want %s", name, got, c.want)
		}
	}
}

const (
	exPing       = "535201000000000d40000000080000000000000001"
	exBusy       = "53520100000000187f00000013012d00000032000b6e6f2069646c652053414d"
	exFrame1     = "535201000000007a010000006506522d303030310102208520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a0038000102030405060708090a0b3af70480fbf1f8e89e382a9a108d41e15dce8ecc78b1ee8d8f5e5bcf2c0fa020ad588c6fd749de24d02ad8160010000000002000000000300000000100"
	exAccept     = "53520100000000540200000032000102030405060708090a0b0c0d0e0f0220de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f1100000018019f001467a1c79a9eac72df045a7891f1bbcc15e5825295"
	exPre        = "1122334455667788010003050000000c50d103860c00000000008181"
	exSealed     = "000102030405060708090a0b3af70480fbf1f8e89e382a9a108d41e15dce8ecc78b1ee8d8f5e5bcf2c0fa020ad588c6fd749de24d02ad816"
	exTranscript = "06522d30303031208520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a000102030405060708090a0b0c0d0e0f0220de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f"
	exSecret     = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"
	exOKM        = "a03080c59c0f844125c3df4f881ca8ce671aeb52bb3dffb09ab9ad5aa70f50b0f9a2924de1c93e5b9125155a7e9663f9205e03c1f147feb3"
	exS2R0       = "67a1c79a9eac72df045a7891f1bbcc15e5825295"
	exR2S0       = "c505bfd52be422de49475a520e149e4d93"
)
