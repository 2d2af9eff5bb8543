package rack

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/samrack/samrack/drivers/sam"
)

// A dispatcher leases a SAM for one card read and always gives it back,
// telling the rack how the read went.
func ExampleRack_Lease() {
	hw := &hardware{modules: map[string]*fakeSAM{"/dev/ttyUSB0": newFakeSAM(1)}, opens: map[string]int{}}
	r, err := New(Config{Slots: []SlotConfig{{ID: 0, Driver: "serial", Device: "/dev/ttyUSB0"}}},
		Options{Open: hw.open}) // production: Options{} opens through sam.Open
	if err != nil {
		fmt.Println(err)
		return
	}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() { stop(); <-done }()
	if _, err := r.WaitState(ctx, 0, StateEnabled); err != nil {
		fmt.Println(err)
		return
	}

	read := func(ctx context.Context) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		l, err := r.Lease(ctx, nil) // or the terminal→SAM table's SAM IDs
		var busy *BusyError
		if errors.As(err, &busy) {
			return fmt.Errorf("busy, retry after %v", busy.RetryAfter)
		}
		if err != nil {
			return err
		}
		var outcome error
		defer func() { l.Release(outcome) }() // nil, a card error, or a module fault
		_, outcome = l.SAM().Read(ctx, nil, sam.ReadTextPhoto)
		fmt.Printf("read on slot %d, SAM %v: %v\n", l.Slot(), l.SAMID(), outcome)
		return outcome
	}
	if err := read(ctx); err != nil {
		fmt.Println(err)
	}
	fmt.Printf("%+v\n", r.Stats())
	// Output:
	// read on slot 0, SAM 05.01-20250101-0000000001-0000000007: <nil>
	// {Total:1 Enabled:1 Idle:1 Busy:0 Offline:0 Quarantined:0 Waiters:0}
}
