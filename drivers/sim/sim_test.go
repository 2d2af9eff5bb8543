package sim_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/sim"
	"periph.io/x/conn/v3/gpio"
)

var cardTypes = []ga467.CardType{ga467.Resident, ga467.HKMacaoTaiwan, ga467.ForeignPerm, ga467.ForeignPerm2023}

// TestRead reads every card type, with and without a fingerprint file and
// with and without the reader's prefetch, through samhost.Host.
func TestRead(t *testing.T) {
	ctx := context.Background()
	for _, ct := range cardTypes {
		for _, fp := range []bool{false, true} {
			for _, what := range []sam.ReadWhat{sam.ReadTextPhoto, sam.ReadFingerprint} {
				for _, prefetch := range []bool{false, true} {
					name := fmt.Sprintf("%c/fp=%v/what=%d/prefetch=%v", ct, fp, what, prefetch)
					t.Run(name, func(t *testing.T) {
						m := openSAM(t, 1, samhost.Timeouts{}, sim.SAMOptions{})
						card := sim.NewCard(int64(ct)*100+int64(what), sim.CardOptions{Type: ct, Fingerprint: fp, Timing: instantRF})
						l := &link{card: card}
						if prefetch {
							ex, serial, err := idcard.Prefetch(ctx, card)
							if err != nil {
								t.Fatal(err)
							}
							if serial != card.Serial() {
								t.Fatalf("prefetch serial %X", serial)
							}
							l.pre = idcard.NewPrefetched(ex)
						}
						info, err := m.Find(ctx, l)
						if err != nil || !bytes.Equal(info, []byte{0, 0, 0, 0}) {
							t.Fatalf("Find = % X, %v", info, err)
						}
						serial, err := m.Select(ctx, l)
						if err != nil || serial != sam.Serial(card.Serial()) {
							t.Fatalf("Select = %X, %v", serial, err)
						}
						rd, err := m.Read(ctx, l, what)
						if err != nil {
							t.Fatalf("Read: %v", err)
						}
						id, err := ga467.DecodeText(rd.Text)
						if err != nil {
							t.Fatalf("DecodeText: %v", err)
						}
						if *id != card.Identity() {
							t.Errorf("decoded identity differs from the card's (%s)", id.Redacted())
						}
						if !bytes.Equal(rd.Photo, card.Photo()) {
							t.Error("photo differs")
						}
						wantFP := card.Fingerprint()
						if what == sam.ReadTextPhoto {
							wantFP = nil
						}
						if !bytes.Equal(rd.Fingerprint, wantFP) || (wantFP == nil) != (rd.Fingerprint == nil) {
							t.Errorf("fingerprint: %d bytes, want %d", len(rd.Fingerprint), len(wantFP))
						}
						wantRemote := 4
						if prefetch {
							wantRemote = 1
						}
						if l.remote != wantRemote {
							t.Errorf("%d card exchanges went to the reader, want %d", l.remote, wantRemote)
						}
						if prefetch && l.pre.Remaining() != 0 {
							t.Errorf("%d prefetched exchanges unused", l.pre.Remaining())
						}
						// A second read of the same selected card works.
						if _, err := m.Read(ctx, l, what); err != nil {
							t.Errorf("second read: %v", err)
						}
					})
				}
			}
		}
	}
}

func TestControl(t *testing.T) {
	ctx := context.Background()
	m := openSAM(t, 3, samhost.Timeouts{}, sim.SAMOptions{})
	if err := m.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if err := m.Status(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := m.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id != sim.NewSAM(3, sim.SAMOptions{}).ID() || id == sim.NewSAM(4, sim.SAMOptions{}).ID() {
		t.Errorf("SAM ID %v is not deterministic from the seed", id)
	}
	if _, err := ga467.ParseSAMID(id.String()); err != nil {
		t.Errorf("SAM ID %v does not print in GA 467 format: %v", id, err)
	}
}

// readUntil runs find and select, then calls the test's read.
func findSelect(t *testing.T, m *sim.Module, l *link) {
	t.Helper()
	ctx := context.Background()
	if _, err := m.Find(ctx, l); err != nil {
		t.Fatalf("Find: %v", err)
	}
	if _, err := m.Select(ctx, l); err != nil {
		t.Fatalf("Select: %v", err)
	}
}

func TestReadFailures(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		card   sim.CardOptions
		setup  func(l *link)
		want   error // errors.Is target
		module bool  // sam.ModuleFault
	}{
		{
			name: "card of another issuer (wrong master key)",
			card: sim.CardOptions{MasterKey: []byte("some other issuer master key....")},
			want: ga467.ErrCardAuthSAM,
		},
		{
			name: "forged card proof",
			setup: func(l *link) {
				l.tamper = func(cmds, replies [][]byte) {
					if isAuth(cmds[0]) && len(replies) > 0 {
						replies[0][0] ^= 1
					}
				}
			},
			want: ga467.ErrSAMAuthCard,
		},
		{
			name: "tampered photo block",
			setup: func(l *link) {
				l.tamper = func(cmds, replies [][]byte) {
					if isAuth(cmds[0]) && len(replies) > 3 {
						replies[3][10] ^= 1
					}
				}
			},
			want: ga467.ErrVerify,
		},
		{
			name: "card removed mid-read",
			setup: func(l *link) {
				l.before = func(n int, cmds [][]byte) {
					if isAuth(cmds[0]) {
						l.card.Remove()
					}
				}
			},
			want: sam.ErrCardLink,
		},
		{
			name: "card stops answering, reader returns fewer replies",
			setup: func(l *link) {
				l.partial = true
				l.before = func(n int, cmds [][]byte) {
					if isAuth(cmds[0]) {
						l.card.Remove()
					}
				}
			},
			want: ga467.ErrReadFailed,
		},
		{
			name: "card gone before the challenge",
			setup: func(l *link) {
				l.partial = true
				l.before = func(n int, cmds [][]byte) {
					if bytes.Equal(cmds[0], idcard.GetChallenge) {
						l.card.Remove()
					}
				}
			},
			want: ga467.ErrReadFailed,
		},
		{
			name: "challenge refused",
			setup: func(l *link) {
				l.tamper = func(cmds, replies [][]byte) {
					if bytes.Equal(cmds[0], idcard.GetChallenge) {
						replies[0] = []byte{0x6D, 0x00}
					}
				}
			},
			want: ga467.ErrReadFailed,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := openSAM(t, 1, samhost.Timeouts{}, sim.SAMOptions{})
			opts := tt.card
			opts.Timing = instantRF
			l := &link{card: sim.NewCard(11, opts)}
			findSelect(t, m, l)
			if tt.setup != nil {
				tt.setup(l)
			}
			_, err := m.Read(ctx, l, sam.ReadFingerprint)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Read: %v, want %v", err, tt.want)
			}
			if sam.ModuleFault(err) != tt.module {
				t.Errorf("ModuleFault(%v) = %v", err, !tt.module)
			}
			// The SAM is fine afterwards: reset, and read a good card.
			if err := m.Reset(ctx); err != nil {
				t.Fatalf("Reset after failure: %v", err)
			}
			good := &link{card: sim.NewCard(12, sim.CardOptions{Timing: instantRF})}
			findSelect(t, m, good)
			if _, err := m.Read(ctx, good, sam.ReadTextPhoto); err != nil {
				t.Errorf("read after failure: %v", err)
			}
		})
	}
}

func TestFindSelectFailures(t *testing.T) {
	ctx := context.Background()
	m := openSAM(t, 1, samhost.Timeouts{}, sim.SAMOptions{})
	card := sim.NewCard(1, sim.CardOptions{Timing: instantRF})
	card.Remove()

	// The reader's RF reports no card: the link fails.
	if _, err := m.Find(ctx, &link{card: card}); !errors.Is(err, sam.ErrCardLink) || sam.ModuleFault(err) {
		t.Errorf("Find without card: %v", err)
	}
	// The reader answers nothing: find failed.
	if _, err := m.Find(ctx, &link{card: card, partial: true}); !errors.Is(err, ga467.ErrFindFailed) {
		t.Errorf("Find, no reply: %v", err)
	}
	if _, err := m.Select(ctx, &link{card: card, partial: true}); !errors.Is(err, ga467.ErrSelectFailed) {
		t.Errorf("Select after failed find: %v", err)
	}
	card.Insert()
	l := &link{card: card, partial: true}
	if _, err := m.Find(ctx, l); err != nil {
		t.Fatal(err)
	}
	card.Remove()
	card.Insert() // back in the field but IDLE: ATTRIB gets no answer
	if _, err := m.Select(ctx, l); !errors.Is(err, ga467.ErrSelectFailed) {
		t.Errorf("Select of a reset card: %v", err)
	}
	if _, err := m.Read(ctx, l, sam.ReadTextPhoto); !errors.Is(err, ga467.ErrReadFailed) {
		t.Errorf("Read without select: %v", err)
	}
}

func TestFaults(t *testing.T) {
	ctx := context.Background()
	// Short deadlines only where a timeout is the expected outcome.
	to := samhost.Timeouts{Control: 100 * time.Millisecond, Find: 100 * time.Millisecond}
	def := samhost.Timeouts{}

	t.Run("hang", func(t *testing.T) {
		m := openSAM(t, 1, to, sim.SAMOptions{})
		m.SAM().SetHang(true)
		start := time.Now()
		err := m.Status(ctx)
		if !errors.Is(err, sam.ErrTimeout) || !sam.ModuleFault(err) {
			t.Fatalf("Status while hung: %v", err)
		}
		if d := time.Since(start); d < to.Control || d > to.Control+time.Second {
			t.Errorf("gave up after %v, deadline %v", d, to.Control)
		}
		m.SAM().SetHang(false)
		if err := m.Status(ctx); err != nil {
			t.Errorf("Status after the hang: %v", err)
		}
	})
	t.Run("hang mid tunnel", func(t *testing.T) {
		m := openSAM(t, 1, to, sim.SAMOptions{})
		l := &link{card: sim.NewCard(1, sim.CardOptions{Timing: instantRF})}
		l.before = func(int, [][]byte) { m.SAM().SetHang(true) }
		if _, err := m.Find(ctx, l); !errors.Is(err, sam.ErrTimeout) {
			t.Fatalf("Find: %v", err)
		}
	})
	t.Run("fail next", func(t *testing.T) {
		m := openSAM(t, 1, def, sim.SAMOptions{})
		m.SAM().FailNext(ga467.SW3Unrecognised, 2)
		for i := 0; i < 2; i++ {
			var se *ga467.StatusError
			if err := m.Status(ctx); !errors.As(err, &se) || se.SW3 != ga467.SW3Unrecognised || !sam.ModuleFault(err) {
				t.Fatalf("Status %d: %v", i, err)
			}
		}
		if err := m.Status(ctx); err != nil {
			t.Errorf("third Status: %v", err)
		}
	})
	t.Run("fail command", func(t *testing.T) {
		m := openSAM(t, 1, def, sim.SAMOptions{})
		m.SAM().FailCommand(ga467.CmdRead, ga467.ParaReadText, ga467.SW3ReadFailed)
		l := &link{card: sim.NewCard(1, sim.CardOptions{Timing: instantRF})}
		findSelect(t, m, l)
		if _, err := m.Read(ctx, l, sam.ReadTextPhoto); !errors.Is(err, ga467.ErrReadFailed) || sam.ModuleFault(err) {
			t.Errorf("Read: %v", err)
		}
		if _, err := m.Read(ctx, l, sam.ReadFingerprint); err != nil {
			t.Errorf("other read command: %v", err)
		}
		m.SAM().FailCommand(ga467.CmdRead, ga467.ParaReadText, 0)
		if _, err := m.Read(ctx, l, sam.ReadTextPhoto); err != nil {
			t.Errorf("after clearing: %v", err)
		}
	})
	t.Run("self-test", func(t *testing.T) {
		m := openSAM(t, 1, def, sim.SAMOptions{})
		m.SAM().SetSelfTestFail(true)
		for _, f := range []func() error{
			func() error { return m.Status(ctx) },
			func() error { return m.Reset(ctx) },
			func() error { _, err := m.ID(ctx); return err },
		} {
			if err := f(); !errors.Is(err, ga467.ErrSelfTest) || !sam.ModuleFault(err) {
				t.Errorf("with failed self-test: %v", err)
			}
		}
		m.SAM().PowerOff()
		m.SAM().PowerOn()
		if err := m.Status(ctx); !errors.Is(err, ga467.ErrSelfTest) {
			t.Errorf("after a power cycle: %v", err)
		}
		m.SAM().ClearFaults()
		if err := m.Status(ctx); err != nil {
			t.Errorf("after clearing: %v", err)
		}
	})
	t.Run("slow", func(t *testing.T) {
		m := openSAM(t, 1, to, sim.SAMOptions{})
		m.SAM().SetSlow(20 * time.Millisecond)
		start := time.Now()
		if err := m.Status(ctx); err != nil {
			t.Fatalf("Status, slow within the deadline: %v", err)
		}
		if d := time.Since(start); d < 20*time.Millisecond {
			t.Errorf("slow reply took %v", d)
		}
		m.SAM().SetSlow(time.Minute)
		if err := m.Status(ctx); !errors.Is(err, sam.ErrTimeout) {
			t.Fatalf("Status: %v", err)
		}
		// A module still busy with a late reply is recovered by a power
		// cycle, as the rack does.
		m.SAM().SetSlow(0)
		m.SAM().PowerOff()
		m.SAM().PowerOn()
		if err := m.Status(ctx); err != nil {
			t.Errorf("Status after slow and a power cycle: %v", err)
		}
	})
	t.Run("vanish", func(t *testing.T) {
		m := openSAM(t, 1, to, sim.SAMOptions{})
		m.SAM().Vanish()
		err := m.Status(ctx)
		if !errors.Is(err, sam.ErrGone) && !errors.Is(err, sam.ErrTimeout) {
			t.Fatalf("Status after vanish: %v", err)
		}
		if !sam.ModuleFault(err) {
			t.Errorf("vanish is not a module fault: %v", err)
		}
		if err := m.Status(ctx); !errors.Is(err, sam.ErrGone) {
			t.Errorf("second Status: %v", err)
		}
		// Replugged, the SAM serves a new stream.
		m.SAM().Replug()
		m2 := sim.Open(m.SAM(), to)
		defer m2.Close()
		if err := m2.Status(ctx); err != nil {
			t.Errorf("Status after replug: %v", err)
		}
	})
}

func TestPowerLine(t *testing.T) {
	ctx := context.Background()
	to := samhost.Timeouts{Control: 100 * time.Millisecond}
	clock := sim.NewManualClock(time.Unix(1e9, 0))
	m := openSAM(t, 1, to, sim.SAMOptions{Clock: clock, Timing: &sim.SAMTiming{Boot: 300 * time.Millisecond}})
	l := &link{card: sim.NewCard(1, sim.CardOptions{Timing: instantRF})}
	findSelect(t, m, l)

	pwr := sim.PowerLine("slot0-power", 17, m.SAM())
	if pwr.Read() != gpio.High || !m.SAM().Powered() {
		t.Fatal("power line does not start high")
	}
	if err := pwr.Out(gpio.Low); err != nil {
		t.Fatal(err)
	}
	if err := m.Status(ctx); !errors.Is(err, sam.ErrTimeout) {
		t.Fatalf("Status when off: %v", err)
	}
	pwr.Out(gpio.High)
	if err := m.Status(ctx); !errors.Is(err, sam.ErrTimeout) {
		t.Fatalf("Status while booting: %v", err)
	}
	clock.Advance(299 * time.Millisecond)
	if err := m.Status(ctx); !errors.Is(err, sam.ErrTimeout) {
		t.Fatalf("Status 1 ms before boot: %v", err)
	}
	clock.Advance(time.Millisecond)
	if err := m.Status(ctx); err != nil {
		t.Fatalf("Status after boot: %v", err)
	}
	// The session did not survive.
	if _, err := m.Read(ctx, l, sam.ReadTextPhoto); !errors.Is(err, ga467.ErrReadFailed) {
		t.Errorf("Read after power cycle: %v", err)
	}
	pwr.Out(gpio.High) // no transition
	if n := pwr.Transitions(); n != 2 {
		t.Errorf("%d transitions, want 2", n)
	}
	answered, unanswered := m.SAM().Stats()
	// Frames the host gave up on before sending are not counted, so only
	// "some" is certain.
	if answered == 0 || unanswered == 0 {
		t.Errorf("stats: %d answered, %d unanswered", answered, unanswered)
	}
}

func TestRegistry(t *testing.T) {
	checkLeaks(t)
	ctx := context.Background()
	s, err := sam.Open(ctx, "sim", "3", map[string]string{"proc": "0s", "cmd": "0", "boot": "0s"})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	id, err := s.ID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id != sim.NewSAM(3, sim.SAMOptions{}).ID() {
		t.Errorf("ID %v", id)
	}
	l := &link{card: sim.NewCard(5, sim.CardOptions{Timing: instantRF})}
	if _, err := s.Find(ctx, l); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []struct {
		dev  string
		opts map[string]string
	}{
		{"x", nil},
		{"1", map[string]string{"proc": "fast"}},
		{"1", map[string]string{"colour": "red"}},
		{"1", map[string]string{"key": "zz"}},
	} {
		if s, err := sam.Open(ctx, "sim", bad.dev, bad.opts); err == nil {
			s.Close()
			t.Errorf("Open(%q, %v) succeeded", bad.dev, bad.opts)
		}
	}
	// A key option that matches the card's issuer.
	key := []byte("another issuer key")
	s2, err := sam.Open(ctx, "sim", "4", map[string]string{"proc": "0s", "cmd": "0s", "key": fmt.Sprintf("%x", key)})
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	l2 := &link{card: sim.NewCard(6, sim.CardOptions{MasterKey: key, Timing: instantRF})}
	if _, err := s2.Find(ctx, l2); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Select(ctx, l2); err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Read(ctx, l2, sam.ReadTextPhoto); err != nil {
		t.Errorf("read with a custom key: %v", err)
	}
}

func TestProcessingTime(t *testing.T) {
	ctx := context.Background()
	const read = 40 * time.Millisecond
	m := openSAM(t, 1, samhost.Timeouts{}, sim.SAMOptions{Timing: &sim.SAMTiming{Read: read}})
	l := &link{card: sim.NewCard(1, sim.CardOptions{Timing: instantRF})}
	findSelect(t, m, l)
	start := time.Now()
	if _, err := m.Read(ctx, l, sam.ReadTextPhoto); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < read {
		t.Errorf("read took %v, processing time is %v", d, read)
	}
	// The card's RF timing: a 266-byte block reply takes tens of ms.
	if d := sim.RF106.Duration(5, 266); d < 20*time.Millisecond || d > 40*time.Millisecond {
		t.Errorf("RF106 block exchange: %v", d)
	}
}

func BenchmarkSimRead(b *testing.B) {
	ctx := context.Background()
	m := sim.Open(sim.NewSAM(1, sim.SAMOptions{Timing: instantSAM}), samhost.Timeouts{})
	defer m.Close()
	card := sim.NewCard(1, sim.CardOptions{Timing: instantRF, Fingerprint: true})
	l := &link{card: card}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := m.Find(ctx, l); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Select(ctx, l); err != nil {
			b.Fatal(err)
		}
		if _, err := m.Read(ctx, l, sam.ReadFingerprint); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "reads/s")
}
