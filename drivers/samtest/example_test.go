package samtest_test

import (
	"context"
	"fmt"

	"github.com/samrack/samrack/drivers/ga467"
	"github.com/samrack/samrack/drivers/samhost"
	"github.com/samrack/samrack/drivers/samtest"
)

// A session with a module is recorded, saved as text, and played back.
// Here the "module" is a scripted Transport; a hardware team records a
// real one the same way, wrapping its serial or PC/SC transport.
func Example_recordPlayback() {
	ctx := context.Background()
	id, _ := ga467.ParseSAMID("05.01-20101125-0012345678-1234567890")
	module := samtest.NewTransport().
		Expect(ga467.SAMStatus, ga467.Status(ga467.SW3OK)).
		Expect(ga467.ReadSAMID, ga467.Reply{SW3: ga467.SW3OK, Data: id.Bytes()})

	// Record.
	rec := samtest.NewRecorder(module)
	host := samhost.New(rec, samhost.Timeouts{})
	if err := host.Status(ctx); err != nil {
		fmt.Println(err)
	}
	host.ID(ctx)
	text, _ := rec.Recording().MarshalText()
	fmt.Print(string(text))

	// Play back.
	var r samtest.Recording
	if err := r.UnmarshalText(text); err != nil {
		fmt.Println(err)
	}
	player := samtest.Playback(r)
	host = samhost.New(player, samhost.Timeouts{})
	host.Status(ctx)
	got, err := host.ID(ctx)
	fmt.Println("replayed SAM ID:", got, err)
	fmt.Println("all played:", player.Verify() == nil)

	// Output:
	// > AA AA AA 96 69 00 03 11 FF ED
	// < AA AA AA 96 69 00 04 00 00 90 94
	// > AA AA AA 96 69 00 03 12 FF EE
	// < AA AA AA 96 69 00 14 00 00 90 05 00 01 00 05 B8 32 01 4E 61 BC 00 D2 02 96 49 92
	// replayed SAM ID: 05.01-20101125-0012345678-1234567890 <nil>
	// all played: true
}
