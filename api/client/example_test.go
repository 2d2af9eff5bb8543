package client_test

import (
	"context"
	"fmt"
	"io"
	"log"
	"log/slog"
	"os"

	"github.com/samrack/samrack/api/client"
	"github.com/samrack/samrack/appliance"
	"github.com/samrack/samrack/drivers/sim"
	"github.com/samrack/samrack/rack"
)

// A reader reads the card in its field through the appliance. Here the
// appliance runs in-process on its simulated rack and the card is virtual;
// a reader maker's firmware passes its own RF front-end (an idcard.RF) and
// the credential bundle it was provisioned with (credentials.Load).
func Example() {
	dir, _ := os.MkdirTemp("", "samrack-example")
	defer os.RemoveAll(dir)
	a, err := appliance.New(appliance.Config{DataDir: dir, Listen: "127.0.0.1:0", Admin: "127.0.0.1:0",
		SimSAMs: 2, SimTiming: &sim.SAMTiming{}, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- a.Run(ctx) }()
	defer func() { stop(); <-done }()
	if _, err := a.Rack().WaitState(ctx, 0, rack.StateEnabled); err != nil {
		log.Fatal(err)
	}
	bundle, err := a.AddReader(ctx, "HOTEL-0001", "sm4", "front desk") // what `samctl reader add` writes
	if err != nil {
		log.Fatal(err)
	}

	c, err := client.Dial(ctx, bundle)
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	card := sim.NewCard(7, sim.CardOptions{Timing: &sim.RFTiming{}}) // the card in the reader's field
	res, err := c.Read(ctx, card, client.ReadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("round trips:", res.RoundTrips, "suite:", res.Suite)
	fmt.Println("name matches the card:", res.Identity.Name == card.Identity().Name)
	fmt.Println("text, photo:", len(res.Text), len(res.Photo))
	// Output:
	// round trips: 2 suite: GM
	// name matches the card: true
	// text, photo: 256 1024
}
