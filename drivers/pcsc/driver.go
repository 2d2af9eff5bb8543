package pcsc

import (
	"context"
	"fmt"
	"time"

	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
)

// Driver options of the "pcsc" driver (sam.Open("pcsc", readerName, opts)):
//
//	control  deadline of reset, status, SAM ID (Go duration, default 1s)
//	find     deadline of find card (default 3s)
//	select   deadline of select card (default 3s)
//	read     deadline of read (default 6s)
//	share    "exclusive" (default) or "shared"
//
// dev is the PC/SC reader name ("ACS ACR39U ICC Reader 00 00"); see
// ListReaders. Open connects at once and fails with sam.ErrGone when the
// reader holds no card.
func init() {
	sam.MustRegister(sam.Driver{Name: "pcsc", Open: openDriver})
}

func openDriver(ctx context.Context, dev string, opts map[string]string) (sam.SAM, error) {
	var (
		to samhost.Timeouts
		o  Options
	)
	for k, v := range opts {
		var d *time.Duration
		switch k {
		case "control":
			d = &to.Control
		case "find":
			d = &to.Find
		case "select":
			d = &to.Select
		case "read":
			d = &to.Read
		case "share":
			switch v {
			case "exclusive":
			case "shared":
				o.Shared = true
			default:
				return nil, fmt.Errorf("pcsc: option share: %q is not exclusive or shared", v)
			}
			continue
		default:
			return nil, fmt.Errorf("pcsc: unknown option %q (have control, find, select, read, share)", k)
		}
		var err error
		if *d, err = time.ParseDuration(v); err != nil || *d <= 0 {
			return nil, fmt.Errorf("pcsc: option %s: %q is not a positive duration", k, v)
		}
	}
	t := New(dev, o)
	if err := t.Connect(ctx); err != nil {
		t.Close()
		return nil, err
	}
	return samhost.New(t, to), nil
}
