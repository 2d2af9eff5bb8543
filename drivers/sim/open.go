package sim

import (
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
)

var _ sam.SAM = (*Module)(nil)

// Module is a virtual SAM attached to a samhost.Host through an in-memory
// pipe: the host speaks real GA 467 frames, the SAM serves them. It is a
// sam.SAM; Close stops the SAM's Serve goroutine.
type Module struct {
	*samhost.Host
	sam    *SAM
	cancel context.CancelFunc
	done   chan struct{}
	err    error // Serve's result, valid after done
}

// Open attaches s to a new samhost.Host with the given timeouts. The
// returned Module owns the goroutine serving s until Close.
func Open(s *SAM, to samhost.Timeouts) *Module {
	host, dev := net.Pipe()
	ctx, cancel := context.WithCancel(context.Background())
	m := &Module{
		Host:   samhost.New(samhost.NewStreamTransport(host, host), to),
		sam:    s,
		cancel: cancel,
		done:   make(chan struct{}),
	}
	go func() {
		defer close(m.done)
		m.err = s.Serve(ctx, dev)
		dev.Close()
	}()
	return m
}

// SAM is the virtual SAM behind m, for fault injection and power.
func (m *Module) SAM() *SAM { return m.sam }

// Close implements sam.SAM: it closes the host side and waits for the SAM's
// Serve to return.
func (m *Module) Close() error {
	err := m.Host.Close()
	m.cancel()
	<-m.done
	return err
}

// Driver options of the "sim" driver (sam.Open("sim", seed, opts)):
//
//	proc  processing time per read, a Go duration ("150ms"; "0" for none)
//	cmd   processing time per other frame ("2ms")
//	boot  boot time after power-on ("300ms")
//	key   issuer master key, hex (default idcard.DevMasterKey)
//
// dev is the seed of the SAM ID and of the SAM's random numbers ("3").
func init() {
	sam.MustRegister(sam.Driver{Name: "sim", Open: openDriver})
}

func openDriver(ctx context.Context, dev string, opts map[string]string) (sam.SAM, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	seed, err := strconv.ParseInt(dev, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("sim: dev %q is not a seed (an integer)", dev)
	}
	timing := DefaultSAMTiming
	var o SAMOptions
	for k, v := range opts {
		var d *time.Duration
		switch k {
		case "proc":
			d = &timing.Read
		case "cmd":
			d = &timing.Cmd
		case "boot":
			d = &timing.Boot
		case "key":
			key, err := hex.DecodeString(v)
			if err != nil || len(key) == 0 {
				return nil, fmt.Errorf("sim: option key: not hex")
			}
			o.MasterKey = key
			continue
		default:
			return nil, fmt.Errorf("sim: unknown option %q (have proc, cmd, boot, key)", k)
		}
		if *d, err = time.ParseDuration(v); err != nil || *d < 0 {
			return nil, fmt.Errorf("sim: option %s: %q is not a duration", k, v)
		}
	}
	o.Timing = &timing
	return Open(NewSAM(seed, o), samhost.Timeouts{}), nil
}
