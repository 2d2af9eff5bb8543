package sim

import (
	"context"
	"time"
)

// faults is the injected misbehaviour of a SAM; SAM.mu guards it.
type faults struct {
	hang     bool
	selfTest bool
	slow     time.Duration
	failSW3  byte
	failN    int
	failCmd  map[[2]byte]byte
}

// Fault injection. Every method is safe for concurrent use and takes effect
// from the next frame the SAM receives (a frame being processed when a hang,
// power-off or vanish starts gets no reply).

// SetHang makes the SAM stop answering (on) or answer again (off). A power
// cycle also ends a hang. Frames received while hung are dropped.
func (s *SAM) SetHang(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.hang = on
}

// FailNext makes the SAM answer the next n frames with the error code sw3
// (and abandon the card session step in progress). n <= 0 clears it.
func (s *SAM) FailNext(sw3 byte, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.failSW3, s.faults.failN = sw3, max(n, 0)
}

// FailCommand makes the SAM answer every command cmd para with the error
// code sw3 until cleared with sw3 0. Tunnel replies are CmdCardReply 00.
func (s *SAM) FailCommand(cmd, para, sw3 byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.faults.failCmd == nil {
		s.faults.failCmd = map[[2]byte]byte{}
	}
	if sw3 == 0 {
		delete(s.faults.failCmd, [2]byte{cmd, para})
		return
	}
	s.faults.failCmd[[2]byte{cmd, para}] = sw3
}

// SetSlow adds d to the time of every reply (0 clears it).
func (s *SAM) SetSlow(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.slow = max(d, 0)
}

// SetSelfTestFail makes the SAM fail its self-test: it answers every command
// with SW3 60 (ga467.SW3SelfTest) and accepts none, until cleared. A power
// cycle does not clear it: the module is broken.
func (s *SAM) SetSelfTestFail(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults.selfTest = on
}

// Vanish makes the SAM disappear as if unplugged: every Serve closes its
// stream (if the stream is an io.Closer) and returns ErrVanished, new Serve
// calls return ErrVanished at once, and Handle answers nothing, until
// Replug.
func (s *SAM) Vanish() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vanished = true
	for _, cancel := range s.serves {
		cancel(ErrVanished)
	}
}

// Replug ends a Vanish: the SAM answers again on streams served after it.
// Streams closed by Vanish stay closed; their hosts must reopen.
func (s *SAM) Replug() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vanished = false
}

// ClearFaults ends every fault, Vanish included.
func (s *SAM) ClearFaults() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.faults = faults{}
	s.vanished = false
}

// admit decides, as a frame arrives, whether the SAM answers it and with
// which injected error code (0 for none). key is the frame's CMD PARA;
// counted says whether FailNext counts it (framing errors do not).
func (s *SAM) admit(key [2]byte, counted bool) (epoch uint64, off <-chan struct{}, fault byte, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.powered || s.clock.Now().Before(s.bootAt) || s.vanished || s.faults.hang {
		s.unanswered++
		return 0, nil, 0, false
	}
	s.handled++
	switch {
	case s.faults.selfTest:
		fault = 0x60
	case counted && s.faults.failN > 0:
		s.faults.failN--
		fault = s.faults.failSW3
	case counted && s.faults.failCmd[key] != 0:
		fault = s.faults.failCmd[key]
	}
	return s.epoch, s.off, fault, true
}

func (s *SAM) slow() time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.faults.slow
}

// stillAnswering reports whether a reply worked on since power epoch may
// still go out.
func (s *SAM) stillAnswering(epoch uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	ok := s.powered && s.epoch == epoch && !s.vanished && !s.faults.hang
	if !ok {
		s.handled--
		s.unanswered++
	}
	return ok
}

// Power.

// PowerOff cuts the SAM's power: it stops answering, the frame it is
// working on gets no reply, and its session and any hang are lost.
func (s *SAM) PowerOff() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.powered {
		return
	}
	s.powered = false
	s.epoch++
	close(s.off)
	s.faults.hang = false
}

// PowerOn powers the SAM: it answers frames that arrive once its boot time
// (SAMTiming.Boot, on its Clock) has passed.
func (s *SAM) PowerOn() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.powered {
		return
	}
	s.powered = true
	s.off = make(chan struct{})
	s.bootAt = s.clock.Now().Add(s.timing.Boot)
}

// Powered reports whether the SAM has power (booted or not).
func (s *SAM) Powered() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.powered
}

// addServe registers the cancel func of a Serve so Vanish can end it; it
// fails if the SAM has vanished.
func (s *SAM) addServe(cancel context.CancelCauseFunc) (remove func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.vanished {
		return nil, false
	}
	k := new(int)
	s.serves[k] = cancel
	return func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		delete(s.serves, k)
	}, true
}
