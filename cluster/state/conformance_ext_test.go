package state_test

import (
	"path/filepath"
	"testing"

	"github.com/samrack/samrack/cluster/state"
	"github.com/samrack/samrack/cluster/state/statetest"
)

func TestConformanceMemory(t *testing.T) {
	statetest.Run(t, func(t *testing.T) statetest.Store {
		m := state.NewMemory()
		t.Cleanup(func() { m.Close() })
		return m
	})
}

func TestConformanceLocal(t *testing.T) {
	statetest.Run(t, func(t *testing.T) statetest.Store {
		l, err := state.OpenLocal(filepath.Join(t.TempDir(), "state.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { l.Close() })
		return l
	})
}
