package sim

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/sim/pace"
)

// SAMTiming is how long the virtual SAM takes. The zero value is instant.
type SAMTiming struct {
	// Read is added once to every read command (30 01, 30 10), when the
	// card's files are in: a real SAM's decrypt-and-verify time.
	Read time.Duration
	// Cmd is added to every other frame the SAM answers, tunnel steps
	// included.
	Cmd time.Duration
	// Boot is the time from power-on until the SAM answers.
	Boot time.Duration
}

// DefaultSAMTiming is what a SAM-V module takes in public reader traces:
// some 150 ms of its own per read, a couple of milliseconds per command,
// and a 300 ms boot.
var DefaultSAMTiming = SAMTiming{Read: 150 * time.Millisecond, Cmd: 2 * time.Millisecond, Boot: 300 * time.Millisecond}

// Clock tells the time; the virtual SAM uses it for its boot time.
type Clock interface{ Now() time.Time }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

// SAMOptions configure NewSAM.
type SAMOptions struct {
	// MasterKey is the issuer master key; nil means idcard.DevMasterKey.
	MasterKey []byte
	// Timing is the SAM's own time; nil means DefaultSAMTiming.
	Timing *SAMTiming
	// Clock times the boot; nil means the system clock.
	Clock Clock
}

// Session states.
type sessState int

const (
	sessIdle     sessState = iota
	sessFound              // find succeeded: ATQB known
	sessSelected           // select succeeded: serial known
)

// Pending tunnel steps.
type step int

const (
	stepFind step = iota + 1
	stepSelect
	stepChallenge
	stepAuthRead
)

// pending is a card command waiting for the card replies of the exchange
// the SAM asked for.
type pending struct {
	step   step
	para   byte // read: ParaReadText or ParaReadAll
	rc, rs [idcard.ChallengeLen]byte
	refs   []idcard.BlockRef
}

// session is the card session of one power-on period.
type session struct {
	epoch   uint64 // power epoch it belongs to
	state   sessState
	atqb    idcard.ATQB
	serial  [idcard.SerialLen]byte
	pending *pending
}

// SAM is a virtual GA 467 SAM-V module that reads the virtual cards of this
// package (samrack's card scheme, package idcard) through the card-frame
// tunnel. Handle is its core; Serve speaks frames on a byte stream. Faults
// and power are settable at any time from any goroutine.
//
// Locks: op serialises commands and guards the session; mu guards power,
// faults and streams. Lock order: op, then mu.
type SAM struct {
	id     ga467.SAMID
	master []byte
	timing SAMTiming
	clock  Clock

	op    sync.Mutex // op serialises Handle and guards sess, rng, baud, maxRF
	sess  session
	rng   *rand.Rand
	baud  byte
	maxRF byte

	mu         sync.Mutex // mu guards the fields below
	powered    bool
	epoch      uint64        // incremented at every power-off
	off        chan struct{} // closed at power-off
	bootAt     time.Time
	faults     faults
	vanished   bool
	serves     map[*int]context.CancelCauseFunc
	handled    uint64
	unanswered uint64
}

// NewSAM returns a powered, booted SAM whose SAM ID and random numbers are
// deterministic from seed.
func NewSAM(seed int64, opts SAMOptions) *SAM {
	rng := rand.New(rand.NewChaCha8(seedBytes(seed, "sam")))
	id := ga467.SAMID{
		A:       5,
		B:       1,
		Date:    uint32(ymdNum(time.Date(2014+rng.IntN(10), time.Month(1+rng.IntN(12)), 1+rng.IntN(28), 0, 0, 0, 0, time.UTC))),
		Serial1: uint32(rng.IntN(1e9)),
		Serial2: uint32(rng.IntN(4e9)),
	}
	s := &SAM{
		id:      id,
		master:  opts.MasterKey,
		timing:  DefaultSAMTiming,
		clock:   opts.Clock,
		rng:     rng,
		powered: true,
		off:     make(chan struct{}),
		serves:  map[*int]context.CancelCauseFunc{},
	}
	if s.master == nil {
		s.master = idcard.DevMasterKey
	}
	if opts.Timing != nil {
		s.timing = *opts.Timing
	}
	if s.clock == nil {
		s.clock = realClock{}
	}
	return s
}

func ymdNum(t time.Time) int { return t.Year()*10000 + int(t.Month())*100 + t.Day() }

// ID is the SAM ID the module reports (12 FF).
func (s *SAM) ID() ga467.SAMID { return s.id }

// Stats counts frames the SAM answered and frames it received but did not
// answer (powered off, booting, hung, vanished).
func (s *SAM) Stats() (answered, unanswered uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handled, s.unanswered
}

// Handle runs one host command and returns the SAM's reply. ok is false
// when the SAM does not answer at all (powered off, booting, hung, vanished,
// or ctx was done or the power went while it worked). The processing time
// is spent inside Handle. Commands run one at a time.
func (s *SAM) Handle(ctx context.Context, cmd ga467.Command) (r ga467.Reply, ok bool) {
	return s.answer(ctx, &cmd, 0)
}

// answer runs cmd, or answers the framing error code if cmd is nil.
func (s *SAM) answer(ctx context.Context, cmd *ga467.Command, framing byte) (ga467.Reply, bool) {
	s.op.Lock()
	defer s.op.Unlock()
	// The processing time counts from the command's arrival, as a real
	// module's does: the simulator's own computing happens inside it.
	arrived := time.Now()

	var key [2]byte
	if cmd != nil {
		key = [2]byte{cmd.Cmd, cmd.Para}
	}
	epoch, off, fault, ok := s.admit(key, cmd != nil)
	if !ok {
		return ga467.Reply{}, false
	}
	if s.sess.epoch != epoch {
		s.sess = session{epoch: epoch}
		s.baud, s.maxRF = 0, 0
	}
	var (
		r     ga467.Reply
		delay = s.timing.Cmd
	)
	switch {
	case cmd == nil:
		s.sess.pending = nil
		r = ga467.Status(framing)
	case fault != 0:
		s.sess.pending = nil
		r = ga467.Status(fault)
	default:
		var read bool
		r, read = s.handleLocked(*cmd)
		if read {
			delay = s.timing.Read
		}
	}
	delay += s.slow()
	if !pace.Default.WaitUntil(arrived.Add(delay), off, ctx.Done()) {
		return ga467.Reply{}, false
	}
	if !s.stillAnswering(epoch) {
		return ga467.Reply{}, false
	}
	return r, true
}

// handleLocked runs one well-formed command; read reports a read command
// that completed (it takes the read time).
func (s *SAM) handleLocked(cmd ga467.Command) (r ga467.Reply, read bool) {
	if cmd.Cmd == ga467.CmdCardReply {
		p := s.sess.pending
		s.sess.pending = nil
		if p == nil || cmd.Para != 0 {
			return ga467.Status(ga467.SW3BadCommand), false
		}
		replies, err := ga467.DecodeCardFrames(cmd.Data)
		if err != nil {
			return ga467.Status(ga467.SW3BadCommand), false
		}
		return s.continueLocked(p, replies)
	}
	s.sess.pending = nil // any other command abandons a tunnel exchange

	noData := func(ok func() ga467.Reply) ga467.Reply {
		if len(cmd.Data) != 0 {
			return ga467.Status(ga467.SW3HostLength)
		}
		return ok()
	}
	switch {
	case cmd.Cmd == ga467.CmdReset && cmd.Para == ga467.ParaFF:
		return noData(func() ga467.Reply {
			s.sess = session{epoch: s.sess.epoch}
			return ga467.Status(ga467.SW3OK)
		}), false
	case cmd.Cmd == ga467.CmdStatus && cmd.Para == ga467.ParaFF:
		return noData(func() ga467.Reply { return ga467.Status(ga467.SW3OK) }), false
	case cmd.Cmd == ga467.CmdSAMID && cmd.Para == ga467.ParaFF:
		return noData(func() ga467.Reply { return ga467.Reply{SW3: ga467.SW3OK, Data: s.id.Bytes()} }), false
	case cmd.Cmd == ga467.CmdCard && cmd.Para == ga467.ParaFind:
		return noData(s.findLocked), false
	case cmd.Cmd == ga467.CmdCard && cmd.Para == ga467.ParaSelect:
		return noData(s.selectLocked), false
	case cmd.Cmd == ga467.CmdRead && (cmd.Para == ga467.ParaReadText || cmd.Para == ga467.ParaReadAll):
		return noData(func() ga467.Reply { return s.readLocked(cmd.Para) }), false
	case cmd.Cmd == ga467.CmdRead && cmd.Para == ga467.ParaReadAddress:
		return noData(func() ga467.Reply {
			if s.sess.state != sessSelected {
				return ga467.Status(ga467.SW3ReadFailed)
			}
			// The virtual cards carry no appended address.
			return ga467.Status(ga467.SW3NoItem)
		}), false
	case cmd.Cmd == ga467.CmdSetBaud && cmd.Para <= 4:
		return noData(func() ga467.Reply {
			s.baud = cmd.Para
			return ga467.Status(ga467.SW3OK)
		}), false
	case cmd.Cmd == ga467.CmdSetMaxRF && cmd.Para == ga467.ParaFF:
		if len(cmd.Data) != 1 {
			return ga467.Status(ga467.SW3HostLength), false
		}
		s.maxRF = cmd.Data[0]
		return ga467.Status(ga467.SW3OK), false
	}
	return ga467.Status(ga467.SW3BadCommand), false
}

// exchangeLocked asks the host to run frames on the card.
func (s *SAM) exchangeLocked(p *pending, frames [][]byte) ga467.Reply {
	data, err := ga467.EncodeCardFrames(frames)
	if err != nil {
		return ga467.Status(ga467.SW3Unrecognised) // cannot happen: scripts are small
	}
	s.sess.pending = p
	return ga467.Reply{SW3: ga467.SW3CardExchange, Data: data}
}

func (s *SAM) findLocked() ga467.Reply {
	s.sess.state = sessIdle
	return s.exchangeLocked(&pending{step: stepFind}, [][]byte{idcard.ReqB})
}

func (s *SAM) selectLocked() ga467.Reply {
	if s.sess.state < sessFound {
		return ga467.Status(ga467.SW3SelectFailed)
	}
	return s.exchangeLocked(&pending{step: stepSelect}, [][]byte{idcard.Attrib(s.sess.atqb.PUPI), idcard.GetUID})
}

func (s *SAM) readLocked(para byte) ga467.Reply {
	if s.sess.state != sessSelected {
		return ga467.Status(ga467.SW3ReadFailed)
	}
	return s.exchangeLocked(&pending{step: stepChallenge, para: para}, [][]byte{idcard.GetChallenge})
}

// continueLocked takes the card's replies to the exchange of p.
func (s *SAM) continueLocked(p *pending, replies [][]byte) (ga467.Reply, bool) {
	switch p.step {
	case stepFind:
		if len(replies) < 1 {
			return ga467.Status(ga467.SW3FindFailed), false
		}
		atqb, err := idcard.ParseATQB(replies[0])
		if err != nil {
			return ga467.Status(ga467.SW3FindFailed), false
		}
		s.sess.state, s.sess.atqb = sessFound, atqb
		return ga467.Reply{SW3: ga467.SW3CardFound, Data: bytes.Clone(atqb.AppData[:])}, false

	case stepSelect:
		if len(replies) < 2 || !idcard.AttribOK(replies[0]) {
			return ga467.Status(ga467.SW3SelectFailed), false
		}
		serial, err := idcard.ParseSerial(replies[1])
		if err != nil {
			return ga467.Status(ga467.SW3SelectFailed), false
		}
		s.sess.state, s.sess.serial = sessSelected, serial
		return ga467.Reply{SW3: ga467.SW3OK, Data: bytes.Clone(serial[:])}, false

	case stepChallenge:
		if len(replies) < 1 {
			return ga467.Status(ga467.SW3ReadFailed), false
		}
		rc, err := idcard.ParseChallenge(replies[0])
		if err != nil {
			// The card refused: a card problem, not the SAM's own random
			// generator (SW3 47 would blame the module).
			return ga467.Status(ga467.SW3ReadFailed), false
		}
		p.step, p.rc = stepAuthRead, rc
		for i := range p.rs {
			p.rs[i] = byte(s.rng.UintN(256))
		}
		k := idcard.CardKey(s.master, s.sess.serial)
		p.refs = idcard.ReadScript(p.para == ga467.ParaReadAll)
		frames := make([][]byte, 0, 1+len(p.refs))
		frames = append(frames, idcard.MutualAuth(p.rs, idcard.SAMProof(k, p.rc, p.rs, s.sess.serial)))
		for _, ref := range p.refs {
			frames = append(frames, idcard.ReadBlock(ref.File, ref.Block))
		}
		return s.exchangeLocked(p, frames), false

	case stepAuthRead:
		return s.finishReadLocked(p, replies)
	}
	return ga467.Status(ga467.SW3Unrecognised), false
}

func (s *SAM) finishReadLocked(p *pending, replies [][]byte) (ga467.Reply, bool) {
	if len(replies) < 1 {
		return ga467.Status(ga467.SW3ReadFailed), false
	}
	auth := replies[0]
	if idcard.SW(auth) != idcard.SWOK {
		return ga467.Status(ga467.SW3CardAuthSAM), false
	}
	k := idcard.CardKey(s.master, s.sess.serial)
	want := idcard.CardProof(k, p.rc, p.rs, s.sess.serial)
	if !idcard.ProofEqual(idcard.Body(auth), want[:]) {
		return ga467.Status(ga467.SW3SAMAuthCard), false
	}
	sk := idcard.NewSessionKey(k, p.rc, p.rs)
	files := map[byte][]byte{}
	for i, ref := range p.refs {
		if i+1 >= len(replies) {
			return ga467.Status(ga467.SW3ReadFailed), false
		}
		rep := replies[i+1]
		if sw := idcard.SW(rep); sw != idcard.SWOK {
			if sw == idcard.SWFileNotFound && ref.File == idcard.FileFingerprint && ref.Block == 0 {
				break // no fingerprint file: it reads as length 0
			}
			return ga467.Status(ga467.SW3ReadFailed), false
		}
		plain, err := sk.Open(ref.File, ref.Block, idcard.Body(rep))
		if err != nil {
			return ga467.Status(ga467.SW3Verify), false
		}
		if len(plain) != idcard.BlockPlainLen(ref.File, ref.Block) {
			return ga467.Status(ga467.SW3InfoLength), false
		}
		files[ref.File] = append(files[ref.File], plain...)
	}
	text, photo := files[idcard.FileText], files[idcard.FilePhoto]
	rr := &ga467.ReadReply{Text: text, Photo: photo}
	if p.para == ga467.ParaReadAll {
		rr.WithFingerprint, rr.Fingerprint = true, files[idcard.FileFingerprint]
	}
	data, err := ga467.EncodeReadReply(rr)
	if err != nil {
		return ga467.Status(ga467.SW3InfoLength), false
	}
	return ga467.Reply{SW3: ga467.SW3OK, Data: data}, true
}

// ErrVanished is returned by Serve when the SAM vanished (Vanish).
var ErrVanished = errors.New("sim: SAM vanished")
