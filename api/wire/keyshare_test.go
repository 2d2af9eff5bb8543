package wire

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/samrack/samrack/api/suite"
)

// The node key of the PROTOCOL.md §12.7 example: the P-256 key of RFC 6979
// A.2.5.
const (
	exNodePriv   = "c9afa9d845ba75166b5c215767b1d6934e50c3db36e89b127b8a622b120f6721"
	exNodePublic = "0460fed4ba255a9d31c961eb74c6356d68c049b8923b61fa6ce669622e60f29fb6" +
		"7903fe1008b8bc99a41ae9e95628bc64f2f1b20c2d7e9f5177a3c294d4462299"
)

func exNodeKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), mustHex(t, exNodePriv))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRFC6979Signer: the deterministic signatures of the test vector are
// RFC 6979's, checked against its own example (A.2.5, P-256, SHA-256,
// message "sample"), so the vector below does not rest on our code alone.
func TestRFC6979Signer(t *testing.T) {
	k := exNodeKey(t)
	pub, _ := k.PublicKey.Bytes()
	if !bytes.Equal(pub, mustHex(t, exNodePublic)) {
		t.Fatalf("public key %x, want RFC 6979 A.2.5's", pub)
	}
	d := sha256.Sum256([]byte("sample"))
	sig, err := k.Sign(nil, d[:], crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	// r = EFD48B2A…3716, s = F7CB1C94…CDA8 (RFC 6979 A.2.5, SHA-256), DER.
	want := "3046022100efd48b2aacb6a8fd1140dd9cd45e81d69d2c877b56aaf991c34d0ea84eaf3716" +
		"022100f7cb1c942d657c41d436c7a1b6e29f65f3e900dbb9aff4064dc4ab2f843acda8"
	if !bytes.Equal(sig, mustHex(t, want)) {
		t.Fatalf("RFC 6979 signature of \"sample\" = %x, want %s", sig, want)
	}
}

// TestKeyShareSignatureExample is PROTOCOL.md §12.7: the signed content of
// the §12.3/§12.4 handshake, its signature and its verification.
func TestKeyShareSignatureExample(t *testing.T) {
	var sid [16]byte
	copy(sid[:], mustHex(t, exSessionID))
	alice, bob := mustHex(t, exAlicePublic), mustHex(t, exBobPublic)
	tr := Transcript("R-0001", alice, sid, suite.X25519, bob)
	content := KeyShareSignedContent(suite.SigECDSAP256SHA256, []KeyShare{{Suite: suite.X25519, Public: alice}}, tr)
	want := "73616d7261636b206b6579207368617265207369676e61747572652076310001" + // label, 00, alg 1
		"01" + "0220" + exAlicePublic + // 1 share: X25519, 32 bytes
		"06522d30303031" + "20" + exAlicePublic + exSessionID + "02" + "20" + exBobPublic // transcript
	if !bytes.Equal(content, mustHex(t, want)) {
		t.Fatalf("signed content\n got %x\nwant %s", content, want)
	}
	if d := sha256.Sum256(content); !bytes.Equal(d[:], mustHex(t, "f26d1d1c161532c3b88bf57a72bd3c75ff0a376259e4c679f15db323a2709a63")) {
		t.Fatalf("SHA-256(content) = %x", d)
	}
	sig, err := suite.SignKeyShare(exNodeKey(t), suite.SigECDSAP256SHA256, content, nil)
	if err != nil {
		t.Fatal(err)
	}
	wantSig := "3044022010f93eac48d383947317c6332b7a9e8ebf039a393e6fa41c7f04b1f6e4a2df8d" +
		"02205f0cf80eb854eca89834fddaa9529859a380899422d8619175961f505176e9a0"
	if !bytes.Equal(sig, mustHex(t, wantSig)) {
		t.Fatalf("signature %x, want %s", sig, wantSig)
	}
	// The document shows these figures: it must say what the code does.
	doc, err := os.ReadFile("../PROTOCOL.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, fig := range []string{"f26d1d1c161532c3b88bf57a72bd3c75ff0a376259e4c679f15db323a2709a63",
		wantSig[8 : 8+64], wantSig[len(wantSig)-64:], "73616d7261636b206b6579207368617265207369676e6174757265207631"} {
		if !strings.Contains(string(doc), fig) {
			t.Errorf("PROTOCOL.md §12.7 lacks %s", fig)
		}
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), mustHex(t, exNodePublic))
	if err != nil {
		t.Fatal(err)
	}
	d := sha256.Sum256(content)
	if !ecdsa.VerifyASN1(pub, d[:], sig) {
		t.Fatal("the example signature does not verify")
	}
	// A front end that swaps the SAM side's key share: the last byte of
	// the content is the last byte of that key.
	content[len(content)-1] ^= 1
	if d := sha256.Sum256(content); ecdsa.VerifyASN1(pub, d[:], sig) {
		t.Fatal("the signature verifies over an altered key share")
	}
}

// TestKeyShareSignedContentShares: every offered share is in the content,
// so a share dropped on the way changes it.
func TestKeyShareSignedContentShares(t *testing.T) {
	tr := []byte("transcript")
	both := []KeyShare{{Suite: suite.GM, Public: fill(65, 4)}, {Suite: suite.X25519, Public: fill(32, 2)}}
	a := KeyShareSignedContent(suite.SigECDSAP256SHA256, both, tr)
	b := KeyShareSignedContent(suite.SigECDSAP256SHA256, both[1:], tr)
	if bytes.Equal(a, b) {
		t.Fatal("dropping a key share does not change the signed content")
	}
	if c := KeyShareSignedContent(2, both, tr); bytes.Equal(a, c) {
		t.Fatal("the algorithm is not in the signed content")
	}
}

func TestKeyShareSignatureBounds(t *testing.T) {
	ok := &KeyShareSignature{Alg: suite.SigECDSAP256SHA256, Chain: [][]byte{{0x30}}, Signature: []byte{1}}
	for _, tc := range []struct {
		name string
		m    *KeyShareSignature
		want error
	}{
		{"no certificate", &KeyShareSignature{Alg: 1, Signature: []byte{1}}, ErrMalformed},
		{"four certificates", &KeyShareSignature{Alg: 1, Chain: [][]byte{{1}, {2}, {3}, {4}}, Signature: []byte{1}}, ErrTooLarge},
		{"empty certificate", &KeyShareSignature{Alg: 1, Chain: [][]byte{{}}, Signature: []byte{1}}, ErrMalformed},
		{"huge certificate", &KeyShareSignature{Alg: 1, Chain: [][]byte{fill(MaxCertificate+1, 1)}, Signature: []byte{1}}, ErrTooLarge},
		{"no signature", &KeyShareSignature{Alg: 1, Chain: [][]byte{{1}}}, ErrMalformed},
		{"huge signature", &KeyShareSignature{Alg: 1, Chain: [][]byte{{1}}, Signature: fill(MaxSignature+1, 1)}, ErrTooLarge},
	} {
		if _, err := Marshal(tc.m); !errors.Is(err, tc.want) {
			t.Errorf("%s: Marshal: %v, want %v", tc.name, err, tc.want)
		}
	}
	// The decoder holds the same bounds: build the bad payloads by hand.
	for _, tc := range []struct {
		name    string
		payload []byte
		want    error
	}{
		{"no certificate", []byte{1, 0, 0, 1, 1}, ErrMalformed},
		{"four certificates", []byte{1, 4, 0, 1, 1, 0, 1, 2, 0, 1, 3, 0, 1, 4, 0, 1, 1}, ErrTooLarge},
		{"empty certificate", []byte{1, 1, 0, 0, 0, 1, 1}, ErrMalformed},
		{"certificate past the end", []byte{1, 1, 0, 9, 1}, ErrMalformed},
		{"huge certificate", []byte{1, 1, 0x10, 0x01}, ErrTooLarge},
		{"no signature", []byte{1, 1, 0, 1, 1, 0, 0}, ErrMalformed},
		{"huge signature", []byte{1, 1, 0, 1, 1, 0x01, 0x01}, ErrTooLarge},
		{"trailing byte", []byte{1, 1, 0, 1, 1, 0, 1, 1, 0}, ErrMalformed},
	} {
		if _, err := Unmarshal(frameOf(TypeKeyShareSignature, tc.payload)); !errors.Is(err, tc.want) {
			t.Errorf("%s: Unmarshal: %v, want %v", tc.name, err, tc.want)
		}
	}
	b, err := Marshal(ok)
	if err != nil {
		t.Fatal(err)
	}
	// 03 | len 8 | alg 01 | 1 cert | 00 01 30 | 00 01 01
	if want := mustHex(t, "535201000000000d"+"03000000080101000130000101"); !bytes.Equal(b, want) {
		t.Fatalf("Marshal = %x, want %x", b, want)
	}
}
