package sim

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
)

var _ idcard.RF = (*Card)(nil)

// RFTiming is how long a card frame exchange takes on the air: the command
// and the reply at PerByte each, plus Turnaround (the card's processing and
// the frame delays). The zero RFTiming is instant.
type RFTiming struct {
	PerByte    time.Duration
	Turnaround time.Duration
	// NoAnswer is how long a reader waits for a card that does not answer
	// (the frame waiting time) before it gives up.
	NoAnswer time.Duration
}

// RF106 is ISO 14443 Type B at 106 kbit/s: a byte is 10 etu (start, 8 data
// bits, stop) of 128/13.56 MHz ≈ 9.44 µs, and every frame carries 2 CRC
// bytes plus SOF/EOF (about 2 more byte times); the card takes about 1 ms to
// answer. A 266-byte block reply thus takes about 28 ms. A reader gives up
// on a silent card after the FWT of FWI 8, about 77 ms.
var RF106 = RFTiming{PerByte: 94400 * time.Nanosecond, Turnaround: time.Millisecond, NoAnswer: 77 * time.Millisecond}

// Duration is the air time of one exchange.
func (t RFTiming) Duration(cmdLen, respLen int) time.Duration {
	if t == (RFTiming{}) {
		return 0
	}
	const overhead = 4 // CRC_B and SOF/EOF, per frame
	if respLen == 0 {
		return t.NoAnswer + time.Duration(cmdLen+overhead)*t.PerByte
	}
	return t.Turnaround + time.Duration(cmdLen+respLen+2*overhead)*t.PerByte
}

// CardOptions configure NewCard. The zero value is a resident ID card
// without fingerprints, keyed with idcard.DevMasterKey, at RF106 timing.
type CardOptions struct {
	// Type is the card type; zero means ga467.Resident.
	Type ga467.CardType
	// Fingerprint puts a fingerprint file on the card.
	Fingerprint bool
	// MasterKey is the issuer master key the card key is derived from;
	// nil means idcard.DevMasterKey.
	MasterKey []byte
	// Timing is the air time per exchange; nil means RF106, and
	// &RFTiming{} makes every exchange instant (tests, benchmarks).
	Timing *RFTiming
}

// Card states (see the idcard package doc).
type cardState int

const (
	stateIdle cardState = iota
	stateReady
	stateActive
)

// Card is a virtual resident ID card, the way a reader's RF front-end sees
// it: it implements idcard.RF with the card state machine of samrack's card
// scheme (package idcard). It is safe for concurrent use; exchanges run one
// at a time, as on the air.
//
// The card holds synthetic personal data; it is test data only.
type Card struct {
	serial [idcard.SerialLen]byte
	key    [16]byte
	id     ga467.Identity
	text   []byte
	photo  []byte
	finger []byte // nil: no fingerprint file
	timing RFTiming

	air sync.Mutex // air serialises exchanges (one frame on the air at a time)

	mu      sync.Mutex // mu guards the fields below
	present bool
	gen     uint64        // incremented by Remove: exchanges in flight are lost
	leave   chan struct{} // closed by Remove
	rng     *rand.Rand
	state   cardState
	pupi    [4]byte
	rc      [idcard.ChallengeLen]byte
	rcValid bool
	authed  bool
	sess    idcard.SessionKey
}

// NewCard returns a card in the field with an identity, serial, photo and
// fingerprint generated deterministically from seed.
func NewCard(seed int64, opts CardOptions) *Card {
	rng := rand.New(rand.NewPCG(uint64(seed), 0x5a4d7261636b)) // "ZMrack"
	t := opts.Type
	if t == 0 {
		t = ga467.Resident
	}
	id := GenerateIdentity(rng, t)
	var serial [idcard.SerialLen]byte
	for i := range serial {
		serial[i] = byte(rng.UintN(256))
	}
	photo := fakeWLT(rng)
	var finger []byte
	if opts.Fingerprint {
		finger = fakeFingerprint(rng)
	}
	c, err := newCard(serial, id, photo, finger, opts)
	if err != nil {
		// GenerateIdentity only makes identities EncodeText accepts.
		panic(fmt.Sprintf("sim: generated identity does not encode: %v", err))
	}
	return c
}

func newCard(serial [idcard.SerialLen]byte, id ga467.Identity, photo, finger []byte, opts CardOptions) (*Card, error) {
	text, err := ga467.EncodeText(&id)
	if err != nil {
		return nil, err
	}
	if len(photo) != idcard.PhotoLen {
		return nil, fmt.Errorf("sim: photo of %d bytes, want %d", len(photo), idcard.PhotoLen)
	}
	if finger != nil && len(finger) != idcard.FingerLen {
		return nil, fmt.Errorf("sim: fingerprint of %d bytes, want %d", len(finger), idcard.FingerLen)
	}
	master := opts.MasterKey
	if master == nil {
		master = idcard.DevMasterKey
	}
	timing := RF106
	if opts.Timing != nil {
		timing = *opts.Timing
	}
	return &Card{
		serial:  serial,
		key:     idcard.CardKey(master, serial),
		id:      id,
		text:    text,
		photo:   photo,
		finger:  finger,
		timing:  timing,
		present: true,
		leave:   make(chan struct{}),
		rng:     rand.New(rand.NewChaCha8(seedBytes(int64(binary.BigEndian.Uint64(serial[:])), "card rng"))),
	}, nil
}

// seedBytes derives a ChaCha8 seed from an integer and a purpose.
func seedBytes(seed int64, purpose string) [32]byte {
	var s [32]byte
	copy(s[:], purpose)
	for i := 0; i < 8; i++ {
		s[24+i] = byte(uint64(seed) >> (8 * i))
	}
	return s
}

// Serial is the card serial (what GET UID answers).
func (c *Card) Serial() [idcard.SerialLen]byte { return c.serial }

// Identity is the card's identity (synthetic test data).
func (c *Card) Identity() ga467.Identity { return c.id }

// Text is a copy of the 256-byte text file.
func (c *Card) Text() []byte { return bytes.Clone(c.text) }

// Photo is a copy of the 1024-byte photo file.
func (c *Card) Photo() []byte { return bytes.Clone(c.photo) }

// Fingerprint is a copy of the fingerprint file, nil if the card has none.
func (c *Card) Fingerprint() []byte { return bytes.Clone(c.finger) }

// Remove takes the card out of the field: exchanges in flight and later ones
// fail with idcard.ErrNoCard, and the card loses its state.
func (c *Card) Remove() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.present {
		return
	}
	c.present = false
	c.gen++
	close(c.leave)
	c.resetLocked()
}

// Insert puts the card back into the field, IDLE.
func (c *Card) Insert() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.present {
		return
	}
	c.present = true
	c.leave = make(chan struct{})
	c.resetLocked()
}

// Present reports whether the card is in the field.
func (c *Card) Present() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.present
}

func (c *Card) resetLocked() {
	c.state = stateIdle
	c.rcValid = false
	c.authed = false
	c.sess = idcard.SessionKey{}
}

// Transceive implements idcard.RF: it runs one card frame. A card that is
// out of the field, or in a state where it ignores the frame, does not
// answer: the error wraps idcard.ErrNoCard after the frame's air time.
func (c *Card) Transceive(ctx context.Context, cmd []byte) ([]byte, error) {
	c.air.Lock()
	defer c.air.Unlock()

	c.mu.Lock()
	present, gen, leave := c.present, c.gen, c.leave
	var resp []byte
	if present {
		resp = c.handleLocked(cmd)
	} else {
		leave = nil // nothing to leave: the reader waits out its timeout
	}
	c.mu.Unlock()

	if d := c.timing.Duration(len(cmd), len(resp)); d > 0 {
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
		case <-leave:
			return nil, fmt.Errorf("%w: card left the field", idcard.ErrNoCard)
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	c.mu.Lock()
	gone := c.gen != gen
	c.mu.Unlock()
	if !present {
		return nil, fmt.Errorf("%w: no card in the field", idcard.ErrNoCard)
	}
	if gone {
		return nil, fmt.Errorf("%w: card left the field", idcard.ErrNoCard)
	}
	if resp == nil {
		return nil, fmt.Errorf("%w: card did not answer", idcard.ErrNoCard)
	}
	return resp, nil
}

func sw(data []byte, sw uint16) []byte {
	return append(data, byte(sw>>8), byte(sw))
}

// handleLocked runs one frame through the state machine; nil means no
// answer.
func (c *Card) handleLocked(cmd []byte) []byte {
	// ISO 14443-3.
	if len(cmd) == 3 && cmd[0] == 0x05 {
		if cmd[1] != 0x00 || cmd[2]&0x07 != 0 { // AFI all families, 1 slot
			return nil
		}
		c.resetLocked()
		c.state = stateReady
		for i := range c.pupi {
			c.pupi[i] = byte(c.rng.UintN(256))
		}
		return idcard.ATQB{PUPI: c.pupi, AppData: idcard.AppData, Proto: idcard.ProtoInfo}.Bytes()
	}
	if pupi, ok := idcard.ParseAttrib(cmd); ok {
		if c.state != stateReady || pupi != c.pupi {
			return nil
		}
		c.state = stateActive
		return []byte{0x00}
	}
	if c.state != stateActive {
		return nil
	}
	return c.apduLocked(cmd)
}

func (c *Card) apduLocked(cmd []byte) []byte {
	if len(cmd) < 4 {
		return sw(nil, idcard.SWWrongLength)
	}
	cla, ins, p1, p2 := cmd[0], cmd[1], cmd[2], cmd[3]
	switch {
	case cla == 0x00 && ins == 0x36: // GET UID
		if p1 != 0 || p2 != 0 {
			return sw(nil, idcard.SWWrongP1P2)
		}
		if len(cmd) != 5 || cmd[4] != idcard.SerialLen {
			return sw(nil, idcard.SWWrongLength)
		}
		return sw(bytes.Clone(c.serial[:]), idcard.SWOK)
	case cla == 0x00 && ins == 0x84: // GET CHALLENGE
		if p1 != 0 || p2 != 0 {
			return sw(nil, idcard.SWWrongP1P2)
		}
		if len(cmd) != 5 || cmd[4] != idcard.ChallengeLen {
			return sw(nil, idcard.SWWrongLength)
		}
		for i := range c.rc {
			c.rc[i] = byte(c.rng.UintN(256))
		}
		c.rcValid = true
		c.authed = false
		c.sess = idcard.SessionKey{}
		return sw(bytes.Clone(c.rc[:]), idcard.SWOK)
	case cla == 0x80 && ins == 0x82: // MUTUAL AUTH
		return c.authLocked(cmd)
	case cla == 0x80 && ins == 0xB0: // READ BLOCK
		return c.readLocked(cmd)
	case cla != 0x00 && cla != 0x80:
		return sw(nil, idcard.SWCLANotSupport)
	}
	return sw(nil, idcard.SWINSNotSupport)
}

func (c *Card) authLocked(cmd []byte) []byte {
	const lc = idcard.ChallengeLen + idcard.ProofLen
	if cmd[2] != 0 || cmd[3] != 0 {
		return sw(nil, idcard.SWWrongP1P2)
	}
	if len(cmd) != 5+lc+1 || cmd[4] != lc || cmd[5+lc] != idcard.ProofLen {
		return sw(nil, idcard.SWWrongLength)
	}
	if !c.rcValid {
		return sw(nil, idcard.SWNoChallenge)
	}
	c.rcValid = false // consumed whatever the outcome
	var rs [idcard.ChallengeLen]byte
	copy(rs[:], cmd[5:])
	want := idcard.SAMProof(c.key, c.rc, rs, c.serial)
	if subtle.ConstantTimeCompare(want[:], cmd[5+idcard.ChallengeLen:5+lc]) != 1 {
		c.authed = false
		return sw(nil, idcard.SWAuthFailed)
	}
	c.authed = true
	c.sess = idcard.NewSessionKey(c.key, c.rc, rs)
	pc := idcard.CardProof(c.key, c.rc, rs, c.serial)
	return sw(bytes.Clone(pc[:]), idcard.SWOK)
}

func (c *Card) readLocked(cmd []byte) []byte {
	if len(cmd) != 5 {
		return sw(nil, idcard.SWWrongLength)
	}
	if !c.authed {
		return sw(nil, idcard.SWNotAuth)
	}
	file, block := cmd[2], int(cmd[3])
	var data []byte
	switch file {
	case idcard.FileText:
		data = c.text
	case idcard.FilePhoto:
		data = c.photo
	case idcard.FileFingerprint:
		data = c.finger
	}
	if data == nil {
		return sw(nil, idcard.SWFileNotFound)
	}
	n := idcard.BlockPlainLen(file, block)
	if n == 0 {
		return sw(nil, idcard.SWWrongP1P2)
	}
	if le := int(cmd[4]); le != n%256 {
		return sw(nil, idcard.SWWrongLe|uint16(n%256))
	}
	off := block * idcard.BlockLen
	return sw(c.sess.Seal(file, block, data[off:off+n]), idcard.SWOK)
}
