package state

import (
	"fmt"

	"github.com/samrack/samrack/drivers/ga467"
)

// Limits of the inventory and cluster config tables.
const (
	MaxNodeIDLen      = 64 // appliance (raft server) ID
	MaxSlotNameLen    = 64
	MaxSlotFieldLen   = 32 // state, health, admin state
	MaxConfigKeyLen   = 64
	MaxConfigValueLen = 1024
)

// Admin states of a slot in the inventory.
const (
	SlotAdminNone       = ""
	SlotAdminDrained    = "drained"
	SlotAdminPoweredOff = "powered_off"
)

// Slot is one slot of the rack inventory: which appliance holds it, the SAM
// in it (cluster-wide SAM ID, zero when empty or unknown), its state and
// health as the owning appliance last published them (rack.State and
// rack.Health in text form) and its admin state. Whether the SAM is leased
// right now (busy/idle) is local to the appliance and not in here.
type Slot struct {
	Node   string      `json:"node"`
	Name   string      `json:"name"`
	SAM    ga467.SAMID `json:"sam"`
	State  string      `json:"state,omitempty"`
	Health string      `json:"health,omitempty"`
	Admin  string      `json:"admin,omitempty"` // SlotAdminNone, SlotAdminDrained, SlotAdminPoweredOff
}

type slotKey struct{ node, name string }

func (s *Slot) key() slotKey { return slotKey{s.Node, s.Name} }

// validate checks a slot; idOnly accepts only Node and Name (DeleteSlot).
func (s *Slot) validate(idOnly bool) error {
	if s == nil {
		return fmt.Errorf("no slot")
	}
	if err := checkName("node", s.Node, MaxNodeIDLen); err != nil {
		return err
	}
	if err := checkName("slot name", s.Name, MaxSlotNameLen); err != nil {
		return err
	}
	if idOnly {
		if s.SAM != (ga467.SAMID{}) || s.State != "" || s.Health != "" || s.Admin != "" {
			return fmt.Errorf("only node and name identify a slot")
		}
		return nil
	}
	for _, f := range []struct{ what, v string }{{"state", s.State}, {"health", s.Health}} {
		if err := textProblem(f.what, f.v, MaxSlotFieldLen); err != nil {
			return err
		}
	}
	switch s.Admin {
	case SlotAdminNone, SlotAdminDrained, SlotAdminPoweredOff:
	default:
		return fmt.Errorf("admin state %q", s.Admin)
	}
	return nil
}

// CheckConfigKey reports whether k is a valid cluster config key: 1–64 of
// a–z, 0–9, '.', '_' and '-'.
func CheckConfigKey(k string) error {
	if k == "" || len(k) > MaxConfigKeyLen {
		return fmt.Errorf("config key must be 1–%d characters", MaxConfigKeyLen)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("config key %q: a–z, 0–9, '.', '_' and '-' only", k)
		}
	}
	return nil
}

// checkName accepts 1–max printable ASCII characters without spaces.
func checkName(what, s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%s must be 1–%d characters", what, max)
	}
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' {
			return fmt.Errorf("%s %q: printable ASCII without spaces only", what, s)
		}
	}
	return nil
}
