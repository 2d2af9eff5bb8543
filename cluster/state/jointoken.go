package state

import (
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Join tokens and the node registry live in the cluster config table.
//
// A join token is the config entry "join.<id>" holding a JoinToken in JSON:
// the SHA-256 of its secret (never the secret), its expiry and who issued
// it. OpUseJoinToken consumes it through raft: the FSM checks it against
// the command's time and marks it used, so that of two appliances joining
// with the same token exactly one gets in, on every replica alike.
//
// A node's addresses are the config entry "node.<id>" (a NodeInfo in
// JSON), written by the node itself and deleted when it is removed.
const (
	JoinTokenPrefix = "join."
	NodePrefix      = "node."
)

// ErrJoinToken is the deterministic outcome of using a join token that is
// unknown, used, expired or whose secret does not match; it is wrapped
// with which.
var ErrJoinToken = errors.New("state: join token refused")

// JoinToken is a join token as stored.
type JoinToken struct {
	Hash    string    `json:"hash"` // hex SHA-256 of the secret
	Expires time.Time `json:"expires"`
	By      string    `json:"by"`                // the operator who issued it
	UsedBy  string    `json:"used_by,omitempty"` // node ID that used it
	UsedAt  time.Time `json:"used_at,omitzero"`
}

// NodeInfo is a node's entry in the registry.
type NodeInfo struct {
	Raft   string `json:"raft"`   // raft address (TLS)
	Admin  string `json:"admin"`  // admin API URL (https://host:port)
	Reader string `json:"reader"` // reader address
	// Link is the cluster/link address (TLS 1.3, node certificates)
	// other appliances dial for placements; empty on nodes that predate it.
	Link string `json:"link,omitempty"`
}

// ParseJoinToken decodes a stored join token.
func ParseJoinToken(v string) (JoinToken, error) {
	var t JoinToken
	if err := json.Unmarshal([]byte(v), &t); err != nil {
		return t, fmt.Errorf("join token entry: %w", err)
	}
	return t, nil
}

// ParseNodeInfo decodes a node registry entry.
func ParseNodeInfo(v string) (NodeInfo, error) {
	var n NodeInfo
	err := json.Unmarshal([]byte(v), &n)
	return n, err
}

// UseJoinTokenCommand returns the command that consumes token id for node
// with the SHA-256 of the secret presented.
func UseJoinTokenCommand(id string, secretHash [32]byte, node string) *Command {
	return &Command{Version: CommandVersion, Op: OpUseJoinToken, By: node,
		Key: JoinTokenPrefix + id, Value: hex.EncodeToString(secretHash[:]) + " " + node}
}

// validateUseJoinToken checks the key and value of OpUseJoinToken.
func (c *Command) validateUseJoinToken() error {
	if !strings.HasPrefix(c.Key, JoinTokenPrefix) || len(c.Key) == len(JoinTokenPrefix) {
		return invalid("%s: key %q is not a join token", c.Op, c.Key)
	}
	hash, node, ok := strings.Cut(c.Value, " ")
	if !ok || len(hash) != 64 {
		return invalid("%s: value must be the secret's SHA-256 in hex and a node ID", c.Op)
	}
	if _, err := hex.DecodeString(hash); err != nil {
		return invalid("%s: secret hash is not hex", c.Op)
	}
	if err := checkName("node", node, MaxNodeIDLen); err != nil {
		return invalid("%s: %v", c.Op, err)
	}
	return nil
}

// planUseJoinToken computes the effect of OpUseJoinToken.
func (f *FSM) planUseJoinToken(c *Command, e *effect) error {
	hash, node, _ := strings.Cut(c.Value, " ")
	v, ok := f.t.config[c.Key]
	if !ok {
		return fmt.Errorf("%w: unknown token (it was never issued, or was issued by another cluster)", ErrJoinToken)
	}
	t, err := ParseJoinToken(v)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrJoinToken, err)
	}
	at := normTime(c.At)
	switch {
	case subtle.ConstantTimeCompare([]byte(t.Hash), []byte(hash)) != 1: // first: tell nothing more without the secret
		return fmt.Errorf("%w: the secret does not match", ErrJoinToken)
	case t.UsedBy != "":
		return fmt.Errorf("%w: already used by node %s at %s (tokens are single-use: issue a new one)", ErrJoinToken, t.UsedBy, t.UsedAt.Format(time.RFC3339))
	case !at.Before(t.Expires):
		return fmt.Errorf("%w: expired at %s", ErrJoinToken, t.Expires.Format(time.RFC3339))
	}
	t.UsedBy, t.UsedAt = node, at
	b, err := json.Marshal(t)
	if err != nil {
		return err
	}
	e.cfgPut = map[string]string{c.Key: string(b)}
	return nil
}

// ConfigPrefix returns the cluster config entries whose key starts with
// prefix.
func (f *FSM) ConfigPrefix(prefix string) map[string]string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	out := map[string]string{}
	for k, v := range f.t.config {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}
