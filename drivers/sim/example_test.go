package sim_test

import (
	"context"
	"fmt"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/idcard"
	"github.com/samrack/samrack/drivers/sam"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/sim"
)

// cardLink is the reader end of the card-frame tunnel: it runs the SAM's
// card frames on the card in the reader's field.
type cardLink struct{ rf idcard.RF }

func (l cardLink) Exchange(ctx context.Context, cmds [][]byte) ([][]byte, error) {
	return idcard.Run(ctx, l.rf, cmds)
}

// A virtual SAM reads a virtual card through samhost, as the appliance
// does with real SAMs and cards at remote readers.
func Example() {
	ctx := context.Background()
	m := sim.Open(sim.NewSAM(3, sim.SAMOptions{}), samhost.Timeouts{})
	defer m.Close()
	card := sim.NewCard(1, sim.CardOptions{Fingerprint: true, Timing: &sim.RFTiming{}})
	link := cardLink{card}

	if _, err := m.Find(ctx, link); err != nil {
		fmt.Println(err)
		return
	}
	serial, err := m.Select(ctx, link)
	if err != nil {
		fmt.Println(err)
		return
	}
	rd, err := m.Read(ctx, link, sam.ReadFingerprint)
	if err != nil {
		fmt.Println(err)
		return
	}
	id, err := ga467.DecodeText(rd.Text)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(serial == sam.Serial(card.Serial()), id.Type, len(rd.Photo), len(rd.Fingerprint))
	// Output: true resident 1024 1024
}
