//go:build !linux

package vip

import (
	"context"
	"fmt"
)

// Netlink is the real Effector; it exists on Linux only.
type Netlink struct{}

var _ Effector = (*Netlink)(nil)

// NewNetlink returns ErrUnsupported off Linux.
func NewNetlink(cfg Config) (*Netlink, error) {
	return nil, fmt.Errorf("%w: %s", ErrUnsupported, cfg)
}

func (*Netlink) Add(context.Context) error      { return ErrUnsupported }
func (*Netlink) Remove(context.Context) error   { return ErrUnsupported }
func (*Netlink) Announce(context.Context) error { return ErrUnsupported }
func (*Netlink) Has() (bool, error)             { return false, ErrUnsupported }
