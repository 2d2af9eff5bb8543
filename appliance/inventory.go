package appliance

import (
	"context"
	"strconv"
	"time"

	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/rack"
)

// The replicated inventory: each appliance publishes its slots — SAM ID,
// state, health and admin state (drained, powered off), not busy/idle,
// which changes with every read and stays local — into the state's Slot
// table, so that any node answers for the whole cluster (`samctl slots
// --all`, `samctl cluster members`). A rack event marks the inventory
// dirty; the publisher writes what changed at most every
// inventoryDebounce, and checks every inventoryRefresh anyway (a restored
// snapshot, a write that failed while there was no leader).
const (
	inventoryDebounce = 250 * time.Millisecond
	inventoryRefresh  = 10 * time.Second
)

type inventory struct {
	kick chan struct{}
}

func newInventory() *inventory { return &inventory{kick: make(chan struct{}, 1)} }

func (i *inventory) trigger() {
	select {
	case i.kick <- struct{}{}:
	default:
	}
}

// slotOf is the inventory form of a slot of this appliance.
func slotOf(node string, si rack.SlotInfo) state.Slot {
	s := state.Slot{Node: node, Name: strconv.Itoa(si.ID), SAM: si.SAMID, State: si.State.String(), Health: si.Health.String()}
	switch {
	case si.HasPower && !si.Powered:
		s.Admin = state.SlotAdminPoweredOff
	case si.State == rack.StateDraining, si.State == rack.StateStandbyOffline:
		s.Admin = state.SlotAdminDrained
	}
	return s
}

// runInventory publishes until ctx ends.
func (a *Appliance) runInventory(ctx context.Context) error {
	t := time.NewTicker(inventoryRefresh)
	defer t.Stop()
	for {
		if err := a.publishInventory(ctx); err != nil && ctx.Err() == nil {
			a.log.Debug("inventory not published yet", "err", err)
		}
		if err := a.publishSelf(ctx); err != nil && ctx.Err() == nil {
			a.log.Debug("node registry entry not published yet", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		case <-a.inv.kick:
			select { // debounce: one write for a burst of events
			case <-ctx.Done():
				return nil
			case <-time.After(inventoryDebounce):
			}
		}
	}
}

// publishInventory writes this appliance's slots that differ from the
// replicated inventory and deletes the ones it no longer has.
func (a *Appliance) publishInventory(ctx context.Context) error {
	have := map[string]state.Slot{}
	for _, s := range a.store.Slots() {
		if s.Node == a.id {
			have[s.Name] = s
		}
	}
	for _, si := range a.rack.Slots() {
		want := slotOf(a.id, si)
		if old, ok := have[want.Name]; ok && old == want {
			delete(have, want.Name)
			continue
		}
		delete(have, want.Name)
		if err := a.nodes.Apply(ctx, &state.Command{Version: state.CommandVersion, Op: state.OpPutSlot, By: a.id, Slot: &want}); err != nil {
			return err
		}
	}
	for name := range have {
		if err := a.nodes.Apply(ctx, &state.Command{Version: state.CommandVersion, Op: state.OpDeleteSlot, By: a.id,
			Slot: &state.Slot{Node: a.id, Name: name}}); err != nil {
			return err
		}
	}
	return nil
}
