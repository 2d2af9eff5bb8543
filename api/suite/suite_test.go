package suite

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"

	gmecdh "github.com/emmansun/gmsm/ecdh"
	"github.com/emmansun/gmsm/sm3"
	"github.com/emmansun/gmsm/sm4"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// fromPrivate builds an Ephemeral from a fixed private key (known answers).
func fromPrivate(t testing.TB, id ID, priv []byte) *Ephemeral {
	t.Helper()
	p, err := lookup(id)
	if err != nil {
		t.Fatal(err)
	}
	var k privateKey
	switch id {
	case GM:
		sk, err := gmecdh.P256().NewPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		k = gmKey{sk}
	case X25519:
		sk, err := ecdh.X25519().NewPrivateKey(priv)
		if err != nil {
			t.Fatal(err)
		}
		k = stdKey{sk}
	}
	return &Ephemeral{id: id, p: p, key: k}
}

// pair makes a reader (initiator) and SAM-side session of suite id.
func pair(t testing.TB, id ID, transcript []byte) (reader, samSide *Session) {
	t.Helper()
	r, err := Generate(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	s, err := Generate(id, nil)
	if err != nil {
		t.Fatal(err)
	}
	reader, err = r.Agree(s.Public(), transcript, true)
	if err != nil {
		t.Fatal(err)
	}
	samSide, err = s.Agree(r.Public(), transcript, false)
	if err != nil {
		t.Fatal(err)
	}
	return reader, samSide
}

func TestSupported(t *testing.T) {
	got := Supported()
	if len(got) != 2 || got[0] != GM || got[1] != X25519 {
		t.Fatalf("Supported() = %v", got)
	}
	for _, c := range []struct {
		id   ID
		want string
	}{{GM, "GM"}, {X25519, "X25519"}, {0, "suite(0)"}, {9, "suite(9)"}} {
		if got := c.id.String(); got != c.want {
			t.Errorf("%d.String() = %q, want %q", c.id, got, c.want)
		}
	}
	if _, err := Generate(0, nil); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Generate(0) error = %v, want ErrUnsupported", err)
	}
}

func TestAgreeBothSides(t *testing.T) {
	for _, id := range Supported() {
		t.Run(id.String(), func(t *testing.T) {
			r, s := pair(t, id, []byte("transcript"))
			if r.Suite() != id || s.Suite() != id {
				t.Fatalf("Suite() = %v, %v", r.Suite(), s.Suite())
			}
			e, _ := Generate(id, nil)
			wantLen := map[ID]int{GM: 65, X25519: 32}[id]
			if len(e.Public()) != wantLen || len(e.Public()) > MaxPublic {
				t.Fatalf("public key of %d bytes", len(e.Public()))
			}
			for i := 0; i < 3; i++ {
				msg := []byte(fmt.Sprintf("card command %d", i))
				rec := r.Seal(msg)
				if len(rec) != len(msg)+Overhead {
					t.Fatalf("record of %d bytes", len(rec))
				}
				got, err := s.Open(rec)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("r→s %d: %q, %v", i, got, err)
				}
				rec = s.Seal(msg)
				got, err = r.Open(rec)
				if err != nil || !bytes.Equal(got, msg) {
					t.Fatalf("s→r %d: %q, %v", i, got, err)
				}
			}
			// Empty plaintexts are records too.
			got, err := s.Open(r.Seal(nil))
			if err != nil || len(got) != 0 {
				t.Fatalf("empty record: %q, %v", got, err)
			}
		})
	}
}

func TestDirectionsDiffer(t *testing.T) {
	for _, id := range Supported() {
		r, _ := pair(t, id, nil)
		// A record reflected back to its sender must not open.
		if _, err := r.Open(r.Seal([]byte("x"))); !errors.Is(err, ErrAuth) {
			t.Errorf("%v: reflected record opened: %v", id, err)
		}
	}
}

func TestTamperReplayReorder(t *testing.T) {
	for _, id := range Supported() {
		t.Run(id.String(), func(t *testing.T) {
			r, s := pair(t, id, []byte("t"))
			rec0 := r.Seal([]byte("zero"))
			rec1 := r.Seal([]byte("one"))
			rec2 := r.Seal([]byte("two"))

			// Reorder: record 1 before record 0.
			if _, err := s.Open(rec1); !errors.Is(err, ErrAuth) {
				t.Fatalf("reordered: %v", err)
			}
			// Tamper every byte position of record 0, one at a time.
			for i := range rec0 {
				bad := bytes.Clone(rec0)
				bad[i] ^= 0x01
				if _, err := s.Open(bad); !errors.Is(err, ErrAuth) {
					t.Fatalf("tampered byte %d: %v", i, err)
				}
			}
			// Truncated.
			for _, n := range []int{0, 1, Overhead - 1, len(rec0) - 1} {
				if _, err := s.Open(rec0[:n]); !errors.Is(err, ErrAuth) {
					t.Fatalf("truncated to %d: %v", n, err)
				}
			}
			// Failures consumed nothing: record 0 still opens.
			if got, err := s.Open(rec0); err != nil || string(got) != "zero" {
				t.Fatalf("rec0: %q, %v", got, err)
			}
			// Replay of record 0.
			if _, err := s.Open(rec0); !errors.Is(err, ErrAuth) {
				t.Fatalf("replayed: %v", err)
			}
			// Dropping record 1: record 2 does not open in its place.
			if _, err := s.Open(rec2); !errors.Is(err, ErrAuth) {
				t.Fatalf("after a drop: %v", err)
			}
			if got, err := s.Open(rec1); err != nil || string(got) != "one" {
				t.Fatalf("rec1: %q, %v", got, err)
			}
			if got, err := s.Open(rec2); err != nil || string(got) != "two" {
				t.Fatalf("rec2: %q, %v", got, err)
			}
		})
	}
}

func TestWrongTranscript(t *testing.T) {
	for _, id := range Supported() {
		r, _ := Generate(id, nil)
		s, _ := Generate(id, nil)
		rs, err := r.Agree(s.Public(), []byte("transcript A"), true)
		if err != nil {
			t.Fatal(err)
		}
		ss, err := s.Agree(r.Public(), []byte("transcript B"), false)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ss.Open(rs.Seal([]byte("x"))); !errors.Is(err, ErrAuth) {
			t.Errorf("%v: different transcripts agreed: %v", id, err)
		}
		// Two initiators (both think they are the reader) do not interoperate.
		ss2, _ := s.Agree(r.Public(), []byte("transcript A"), true)
		rs2, _ := r.Agree(s.Public(), []byte("transcript A"), true)
		if _, err := ss2.Open(rs2.Seal([]byte("x"))); !errors.Is(err, ErrAuth) {
			t.Errorf("%v: two initiators agreed: %v", id, err)
		}
	}
}

func TestBadPeerPublic(t *testing.T) {
	for _, id := range Supported() {
		e, _ := Generate(id, nil)
		other := X25519
		if id == X25519 {
			other = GM
		}
		o, _ := Generate(other, nil)
		gmPub, _ := Generate(GM, nil)
		offCurve := bytes.Clone(gmPub.Public())
		offCurve[64] ^= 1
		for name, pub := range map[string][]byte{
			"empty":       nil,
			"huge":        make([]byte, MaxPublic+1),
			"other suite": o.Public(),
			"zero x25519": make([]byte, 32), // low-order point for X25519
			"off curve":   offCurve,
			"infinity":    {0},
			"compressed":  append([]byte{2}, make([]byte, 32)...),
		} {
			if _, err := e.Agree(pub, nil, true); !errors.Is(err, ErrPublicKey) {
				t.Errorf("%v %s: err = %v, want ErrPublicKey", id, name, err)
			}
		}
	}
}

func TestSequenceExhaustion(t *testing.T) {
	r, s := pair(t, X25519, nil)
	r.send.seq = math.MaxUint64 - 1
	s.recv.seq = math.MaxUint64 - 1
	if _, err := s.Open(r.Seal([]byte("last"))); err != nil {
		t.Fatalf("last record: %v", err)
	}
	if rec := r.Seal([]byte("one too many")); rec != nil {
		t.Fatalf("Seal after exhaustion = %x, want nil", rec)
	}
	if _, err := s.Open(make([]byte, 32)); !errors.Is(err, ErrExhausted) {
		t.Fatalf("Open after exhaustion: %v", err)
	}
}

func TestConcurrentDirections(t *testing.T) {
	r, s := pair(t, GM, nil)
	const n = 200
	ch := make(chan []byte, n)
	var wg sync.WaitGroup
	wg.Add(3)
	go func() { // reader seals
		defer wg.Done()
		for i := 0; i < n; i++ {
			ch <- r.Seal([]byte{byte(i)})
		}
		close(ch)
	}()
	go func() { // SAM side opens
		defer wg.Done()
		i := 0
		for rec := range ch {
			if got, err := s.Open(rec); err != nil || got[0] != byte(i) {
				t.Errorf("record %d: %v, %v", i, got, err)
				return
			}
			i++
		}
	}()
	go func() { // the other direction at the same time
		defer wg.Done()
		for i := 0; i < n; i++ {
			if _, err := r.Open(s.Seal([]byte("reply"))); err != nil {
				t.Errorf("s→r %d: %v", i, err)
				return
			}
		}
	}()
	wg.Wait()
}

// TestPrimitives pins the standard vectors of the primitives the suites
// are built from.
func TestPrimitives(t *testing.T) {
	// SM3("abc"), GB/T 32905-2016 appendix A.1.
	h := sm3.Sum([]byte("abc"))
	if got := hex.EncodeToString(h[:]); got != "66c7f0f462eeedd9d1f2d46bdc10e4e24167c4875cf2f7a2297da02b8f4ba8e0" {
		t.Errorf("SM3(abc) = %s", got)
	}
	// SM4, GB/T 32907-2016 appendix A.1.
	b, _ := sm4.NewCipher(unhex(t, "0123456789abcdeffedcba9876543210"))
	out := make([]byte, 16)
	b.Encrypt(out, unhex(t, "0123456789abcdeffedcba9876543210"))
	if got := hex.EncodeToString(out); got != "681edf34d206965e86b3e94f536e4246" {
		t.Errorf("SM4 = %s", got)
	}
	// X25519, RFC 7748 section 6.1, through the suite's key type.
	alice := fromPrivate(t, X25519, unhex(t, rfcAlice))
	if got := hex.EncodeToString(alice.Public()); got != "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a" {
		t.Errorf("X25519 alice public = %s", got)
	}
	bob := fromPrivate(t, X25519, unhex(t, rfcBob))
	k, err := alice.key.agree(bob.Public())
	if err != nil || hex.EncodeToString(k) != "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742" {
		t.Errorf("X25519 shared = %x, %v", k, err)
	}
}

const (
	rfcAlice = "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a"
	rfcBob   = "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb"
)

// TestKeyScheduleLayout recomputes the X25519 key schedule independently
// (RFC 7748 keys, plain HKDF and AES-GCM) and checks the session's first
// record in each direction against it.
func TestKeyScheduleLayout(t *testing.T) {
	transcript := []byte("samrack test transcript")
	alice := fromPrivate(t, X25519, unhex(t, rfcAlice)) // reader
	bob := fromPrivate(t, X25519, unhex(t, rfcBob))     // SAM side
	rs, err := alice.Agree(bob.Public(), transcript, true)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := bob.Agree(alice.Public(), transcript, false)
	if err != nil {
		t.Fatal(err)
	}
	th := sha256.Sum256(transcript)
	okm, err := hkdf.Key(sha256.New, unhex(t, "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742"),
		nil, KeyScheduleLabel+string(th[:]), 56)
	if err != nil {
		t.Fatal(err)
	}
	seal := func(key, iv []byte, seq byte, pt string) []byte {
		b, _ := aes.NewCipher(key)
		g, _ := cipher.NewGCM(b)
		n := bytes.Clone(iv)
		n[11] ^= seq
		return g.Seal(nil, n, []byte(pt), nil)
	}
	if got, want := rs.Seal([]byte("r0")), seal(okm[0:16], okm[32:44], 0, "r0"); !bytes.Equal(got, want) {
		t.Errorf("reader record 0 = %x, want %x", got, want)
	}
	if got, want := rs.Seal([]byte("r1")), seal(okm[0:16], okm[32:44], 1, "r1"); !bytes.Equal(got, want) {
		t.Errorf("reader record 1 = %x, want %x", got, want)
	}
	if got, want := ss.Seal([]byte("s0")), seal(okm[16:32], okm[44:56], 0, "s0"); !bytes.Equal(got, want) {
		t.Errorf("SAM-side record 0 = %x, want %x", got, want)
	}
}

// TestKnownAnswers pins the first records of fixed-key sessions of both
// suites: the test vectors of api/PROTOCOL.md ("Key schedule test vectors").
func TestKnownAnswers(t *testing.T) {
	for _, c := range []struct {
		id                  ID
		readerPriv, samPriv string
		readerRec0, samRec0 string
	}{
		{X25519, rfcAlice, rfcBob, kaX25519Reader, kaX25519SAM},
		{GM, gmReaderPriv, gmSAMPriv, kaGMReader, kaGMSAM},
	} {
		r := fromPrivate(t, c.id, unhex(t, c.readerPriv))
		s := fromPrivate(t, c.id, unhex(t, c.samPriv))
		transcript := []byte("samrack test transcript")
		rs, err := r.Agree(s.Public(), transcript, true)
		if err != nil {
			t.Fatal(err)
		}
		ss, err := s.Agree(r.Public(), transcript, false)
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(rs.Seal([]byte("ping"))); got != c.readerRec0 {
			t.Errorf("%v reader record 0 = %s, want %s", c.id, got, c.readerRec0)
		}
		if got := hex.EncodeToString(ss.Seal([]byte("pong"))); got != c.samRec0 {
			t.Errorf("%v SAM-side record 0 = %s, want %s", c.id, got, c.samRec0)
		}
		if testing.Verbose() {
			t.Logf("%v reader public %x", c.id, r.Public())
			t.Logf("%v SAM public    %x", c.id, s.Public())
		}
	}
}

const (
	gmReaderPriv = "0101010101010101010101010101010101010101010101010101010101010101"
	gmSAMPriv    = "0202020202020202020202020202020202020202020202020202020202020202"

	kaX25519Reader = "2ea62a515e20cc8662d0a1a3ba52b1a760041fa2"
	kaX25519SAM    = "f7f1757e2fb019a72243e7328708446870491f24"
	kaGMReader     = "fd6a6fe9f1976ac27813ae09fbf47b9df71d60a0"
	kaGMSAM        = "02fe1f276114272e8da7a57c147f5c33c15b0c09"
)

func TestReaderKey(t *testing.T) {
	key := unhex(t, "00112233445566778899aabbccddeeff")
	for _, c := range []string{CipherSM4, CipherAES} {
		t.Run(c, func(t *testing.T) {
			pt := []byte("card serial + prefetch")
			sealed, err := SealWithReaderKey(c, key, "R-0001", pt, nil)
			if err != nil {
				t.Fatal(err)
			}
			if len(sealed) != len(pt)+ReaderOverhead {
				t.Fatalf("sealed of %d bytes", len(sealed))
			}
			got, err := OpenWithReaderKey(c, key, "R-0001", sealed)
			if err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("open: %q, %v", got, err)
			}
			other := map[string]string{CipherSM4: CipherAES, CipherAES: CipherSM4}[c]
			wrongKey := bytes.Clone(key)
			wrongKey[0] ^= 1
			for name, f := range map[string]func() ([]byte, error){
				"wrong serial": func() ([]byte, error) { return OpenWithReaderKey(c, key, "R-0002", sealed) },
				"wrong key":    func() ([]byte, error) { return OpenWithReaderKey(c, wrongKey, "R-0001", sealed) },
				"wrong cipher": func() ([]byte, error) { return OpenWithReaderKey(other, key, "R-0001", sealed) },
				"short":        func() ([]byte, error) { return OpenWithReaderKey(c, key, "R-0001", sealed[:ReaderOverhead-1]) },
				"empty":        func() ([]byte, error) { return OpenWithReaderKey(c, key, "R-0001", nil) },
				"huge": func() ([]byte, error) {
					return OpenWithReaderKey(c, key, "R-0001", make([]byte, MaxReaderSealed+1))
				},
				"tampered": func() ([]byte, error) {
					b := bytes.Clone(sealed)
					b[len(b)/2] ^= 0x80
					return OpenWithReaderKey(c, key, "R-0001", b)
				},
			} {
				if _, err := f(); !errors.Is(err, ErrAuth) {
					t.Errorf("%s: err = %v, want ErrAuth", name, err)
				}
			}
			// Fresh nonce each time.
			s2, _ := SealWithReaderKey(c, key, "R-0001", pt, nil)
			if bytes.Equal(s2[:IVSize], sealed[:IVSize]) {
				t.Error("nonce repeated")
			}
			// Bounds.
			if _, err := SealWithReaderKey(c, key, "R", make([]byte, MaxReaderPlaintext), nil); err != nil {
				t.Errorf("max plaintext: %v", err)
			}
			if _, err := SealWithReaderKey(c, key, "R", make([]byte, MaxReaderPlaintext+1), nil); !errors.Is(err, ErrTooLarge) {
				t.Errorf("oversized plaintext: %v", err)
			}
		})
	}
	for name, f := range map[string]func() error{
		"short key": func() error { _, err := SealWithReaderKey(CipherAES, key[:15], "R", nil, nil); return err },
		"long key": func() error {
			_, err := OpenWithReaderKey(CipherSM4, append(key, 0), "R", make([]byte, 40))
			return err
		},
		"cipher": func() error { _, err := SealWithReaderKey("des", key, "R", nil, nil); return err },
		"serial": func() error {
			_, err := SealWithReaderKey(CipherAES, key, string(make([]byte, 33)), nil, nil)
			return err
		},
		"open cipher": func() error { _, err := OpenWithReaderKey("", key, "R", make([]byte, 40)); return err },
	} {
		if err := f(); !errors.Is(err, ErrKey) {
			t.Errorf("%s: err = %v, want ErrKey", name, err)
		}
	}
}

// TestReaderKeyKnownAnswer pins a reader-key blob with a fixed nonce (the
// example of api/PROTOCOL.md).
func TestReaderKeyKnownAnswer(t *testing.T) {
	key := unhex(t, "00112233445566778899aabbccddeeff")
	nonce := bytes.NewReader(unhex(t, "000102030405060708090a0b"))
	for _, c := range []struct{ cipher, want string }{
		{CipherSM4, kaReaderSM4},
		{CipherAES, kaReaderAES},
	} {
		nonce.Seek(0, 0)
		pt := unhex(t, "1122334455667788"+"00")
		got, err := SealWithReaderKey(c.cipher, key, "R-0001", pt, nonce)
		if err != nil {
			t.Fatal(err)
		}
		if hex.EncodeToString(got) != c.want {
			t.Errorf("%s = %x, want %s", c.cipher, got, c.want)
		}
	}
}

const (
	kaReaderSM4 = "000102030405060708090a0bdde1dbefc0f186f326dbdcacd035d513877370f12af15102ba"
	kaReaderAES = "000102030405060708090a0b3af70480fbf1f8e89f57363f542fe325e5f798bd8e86e679c4"
)

func BenchmarkAgree(b *testing.B) {
	for _, id := range Supported() {
		b.Run(id.String(), func(b *testing.B) {
			peer, _ := Generate(id, nil)
			pub := peer.Public()
			transcript := make([]byte, 150)
			b.ReportAllocs()
			for b.Loop() {
				e, err := Generate(id, nil)
				if err != nil {
					b.Fatal(err)
				}
				if _, err := e.Agree(pub, transcript, true); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkSeal2K(b *testing.B) {
	for _, id := range Supported() {
		b.Run(id.String(), func(b *testing.B) {
			r, _ := pair(b, id, nil)
			pt := make([]byte, 2048)
			b.SetBytes(int64(len(pt)))
			b.ReportAllocs()
			for b.Loop() {
				r.Seal(pt)
			}
		})
	}
}

// TestGMIntermediates pins the intermediate values of the GM known answer
// (api/PROTOCOL.md, "Test vectors").
func TestGMIntermediates(t *testing.T) {
	r := fromPrivate(t, GM, unhex(t, gmReaderPriv))
	s := fromPrivate(t, GM, unhex(t, gmSAMPriv))
	secret, err := r.key.agree(s.Public())
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(secret); got != "f2016f5b3bd1f3d39df08df23aab6df89762ec32c977406d2fdf141414764895" {
		t.Errorf("secret = %s", got)
	}
	th := sm3.Sum([]byte("samrack test transcript"))
	okm, err := hkdf.Key(sm3.New, secret, nil, KeyScheduleLabel+string(th[:]), 56)
	if err != nil {
		t.Fatal(err)
	}
	if got := hex.EncodeToString(okm); got != "5cb4334fdc958729f42e29080bccbddd34871f0e29923d75b94f1fabe96d50002b0f5fb61f4a9a793bba8dfb7212990e238fc0caa95b7a9b" {
		t.Errorf("okm = %s", got)
	}
	// The reader's record 0 is SM4-GCM under okm[0:16] with nonce okm[32:44].
	b, _ := sm4.NewCipher(okm[0:16])
	g, _ := cipher.NewGCM(b)
	if got := hex.EncodeToString(g.Seal(nil, okm[32:44], []byte("ping"), nil)); got != kaGMReader {
		t.Errorf("independent GM record = %s, want %s", got, kaGMReader)
	}
}
