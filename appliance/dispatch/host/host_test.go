package host_test

import (
	"context"
	"errors"
	"testing"

	"github.com/samrack/samrack/api/suite"
	"github.com/samrack/samrack/api/wire"
	"github.com/samrack/samrack/appliance/dispatch/host"
	"github.com/samrack/samrack/appliance/dispatch/host/hosttest"
)

func newLocal(t *testing.T, cfg host.Config) host.Host {
	h := host.New(cfg)
	t.Cleanup(h.Close)
	return h
}

// TestLocal runs the session host contract over the in-process host.
func TestLocal(t *testing.T) { hosttest.Conformance(t, newLocal) }

// TestLocalClosed: a closed Local places nothing.
func TestLocalClosed(t *testing.T) {
	h := host.New(host.Config{Pool: hosttest.NewPool(), HashCard: func([8]byte) string { return "" }})
	h.Close()
	x := []wire.KeyShare{{Suite: suite.X25519, Public: make([]byte, 32)}}
	x[0].Public[0] = 9
	if _, _, err := h.Place(context.Background(), &host.Placement{KeyShares: x}); !errors.Is(err, host.ErrClosed) {
		t.Fatalf("Place on a closed host: %v", err)
	}
}
