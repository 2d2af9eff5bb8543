package state

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Operator identities: the people (and tools) allowed to use the admin API.
// A client certificate binds a name (its CommonName) and a serial; the role
// lives here, so it can change without reissuing the certificate, and the
// admin API looks the certificate's name and serial up on every request, so
// a revocation is effective at once and on every replica.

// Role is what an operator identity may do on the admin API. Roles are
// ordered: each includes the ones below it.
type Role uint8

// Roles.
const (
	RoleViewer   Role = 1 // read everything but secrets
	RoleOperator Role = 2 // slots (drain, power, locate), card and reader blacklists
	RoleAdmin    Role = 3 // readers, operator identities and roles (later the cluster)
)

var roleNames = [...]string{"", "viewer", "operator", "admin"}

func (r Role) String() string {
	if r >= RoleViewer && r <= RoleAdmin {
		return roleNames[r]
	}
	return fmt.Sprintf("role(%d)", uint8(r))
}

// MarshalText implements encoding.TextMarshaler.
func (r Role) MarshalText() ([]byte, error) {
	if r < RoleViewer || r > RoleAdmin {
		return nil, fmt.Errorf("state: role %d", uint8(r))
	}
	return []byte(roleNames[r]), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (r *Role) UnmarshalText(b []byte) error {
	for i, n := range roleNames {
		if i > 0 && string(b) == n {
			*r = Role(i)
			return nil
		}
	}
	return fmt.Errorf("role %q: want viewer, operator or admin", b)
}

// Operator ops.
const (
	OpPutOperator     Op = "put_operator"      // Operator (all fields but Revoked*): a new identity, or a reissued certificate
	OpSetOperatorRole Op = "set_operator_role" // Operator.Name, Operator.Role
	OpRevokeOperator  Op = "revoke_operator"   // Operator.Name
)

// Limits of operator identities.
const (
	MaxOperatorNameLen = 64
	MaxCertSerialLen   = 40 // hex digits of an X.509 serial (at most 20 bytes)
	fingerprintLen     = 64 // hex digits of a SHA-256
)

// Operator is an operator identity.
type Operator struct {
	Name        string    `json:"name"`
	Role        Role      `json:"role,omitempty"`
	CertSerial  string    `json:"cert_serial,omitempty"` // lowercase hex of the certificate serial
	Fingerprint string    `json:"fingerprint,omitempty"` // lowercase hex SHA-256 of the certificate
	CreatedAt   time.Time `json:"created_at,omitzero"`
	CreatedBy   string    `json:"created_by,omitempty"`
	Revoked     bool      `json:"revoked,omitempty"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
	RevokedBy   string    `json:"revoked_by,omitempty"`
}

// CheckOperatorName reports whether s is a valid operator name: 1–64
// characters of letters, digits, '.', '_', '-' and '@', starting with a
// letter or digit.
func CheckOperatorName(s string) error {
	if s == "" || len(s) > MaxOperatorNameLen {
		return fmt.Errorf("operator name must be 1–%d characters", MaxOperatorNameLen)
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || !strings.ContainsRune("._-@", rune(c))) {
			return fmt.Errorf("operator name %q: letters, digits, '.', '_', '-', '@' only, starting with a letter or digit", s)
		}
	}
	return nil
}

func isLowerHex(s string) bool {
	if s == "" {
		return false
	}
	_, err := hex.DecodeString(s)
	return err == nil && strings.ToLower(s) == s
}

func isOperatorOp(op Op) bool {
	return op == OpPutOperator || op == OpSetOperatorRole || op == OpRevokeOperator
}

// validateOperatorCommand is Validate for the operator ops: the fields of
// the other ops must be zero.
func (c *Command) validateOperatorCommand() error {
	if c.Cards != nil || c.Reason != "" || c.Serial != "" || c.Reader != nil || c.Status != 0 || c.Threshold != 0 || c.SAMs != nil {
		return invalid("%s: unexpected fields", c.Op)
	}
	o := c.Operator
	if o == nil {
		return invalid("%s: no operator", c.Op)
	}
	if err := CheckOperatorName(o.Name); err != nil {
		return invalid("%s: %v", c.Op, err)
	}
	switch c.Op {
	case OpPutOperator:
		if o.Role < RoleViewer || o.Role > RoleAdmin {
			return invalid("%s: role %d", c.Op, o.Role)
		}
		if len(o.CertSerial) > MaxCertSerialLen || !isLowerHex(o.CertSerial) {
			return invalid("%s: certificate serial %q: want 1–%d lowercase hex digits", c.Op, o.CertSerial, MaxCertSerialLen)
		}
		if len(o.Fingerprint) != fingerprintLen || !isLowerHex(o.Fingerprint) {
			return invalid("%s: fingerprint: want %d lowercase hex digits", c.Op, fingerprintLen)
		}
		if o.Revoked || !o.RevokedAt.IsZero() || o.RevokedBy != "" {
			return invalid("%s: a new certificate cannot be revoked", c.Op)
		}
		if !o.CreatedAt.IsZero() {
			if y := o.CreatedAt.Year(); y < 2000 || y > 9999 {
				return invalid("%s: created-at %v out of range", c.Op, o.CreatedAt)
			}
		}
		return checkText("created-by", o.CreatedBy, MaxByLen)
	case OpSetOperatorRole:
		if o.Role < RoleViewer || o.Role > RoleAdmin {
			return invalid("%s: role %d", c.Op, o.Role)
		}
		if *o != (Operator{Name: o.Name, Role: o.Role}) {
			return invalid("%s: only name and role", c.Op)
		}
	case OpRevokeOperator:
		if *o != (Operator{Name: o.Name}) {
			return invalid("%s: only the name", c.Op)
		}
	}
	return nil
}

// planOperatorLocked computes the effect of an operator command (f.wmu held).
// Setting the role of, or revoking, an unknown name is ErrUnknownOperator;
// revoked identities stay (names are never reused, so the audit trail
// stays unambiguous) and cannot be reissued or given a role.
func (f *FSM) planOperatorLocked(c *Command) (*effect, error) {
	o := *c.Operator
	old, exists := f.t.operators[o.Name]
	at := normTime(c.At)
	switch c.Op {
	case OpPutOperator:
		if exists && old.Revoked {
			return nil, fmt.Errorf("%w: %q", ErrOperatorRevoked, o.Name)
		}
		o.CreatedAt = normTime(o.CreatedAt)
		if o.CreatedAt.IsZero() {
			o.CreatedAt = at
		}
		if o.CreatedBy == "" {
			o.CreatedBy = c.By
		}
	case OpSetOperatorRole, OpRevokeOperator:
		if !exists {
			return nil, fmt.Errorf("%w: %q", ErrUnknownOperator, o.Name)
		}
		if old.Revoked {
			return nil, fmt.Errorf("%w: %q", ErrOperatorRevoked, o.Name)
		}
		role := o.Role
		o = old
		if c.Op == OpSetOperatorRole {
			o.Role = role
		} else {
			o.Revoked, o.RevokedAt, o.RevokedBy = true, at, c.By
		}
	}
	return &effect{opPut: []Operator{o}}, nil
}

// Operator returns an operator identity by name (revoked ones included).
func (f *FSM) Operator(name string) (Operator, bool) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	o, ok := f.t.operators[name]
	return o, ok
}

// Operators returns every operator identity, by name.
func (f *FSM) Operators() []Operator {
	f.mu.RLock()
	out := slices.Collect(maps.Values(f.t.operators))
	f.mu.RUnlock()
	slices.SortFunc(out, func(a, b Operator) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// OperatorReads is the read side of the operator table. FSM, Memory and
// Local implement it.
type OperatorReads interface {
	Operator(name string) (Operator, bool)
	Operators() []Operator
}

var (
	_ OperatorReads = (*FSM)(nil)
	_ OperatorReads = (*Local)(nil)
)

// Operator implements OperatorReads.
func (l *Local) Operator(name string) (Operator, bool) { return l.fsm.Operator(name) }

// Operators implements OperatorReads.
func (l *Local) Operators() []Operator { return l.fsm.Operators() }

// bbolt: operator name → Operator as JSON.
var bucketOperators = []byte("operators")

func putOperators(tx *bolt.Tx, ops []Operator) error {
	if len(ops) == 0 {
		return nil
	}
	b, err := tx.CreateBucketIfNotExists(bucketOperators)
	if err != nil {
		return err
	}
	for _, o := range ops {
		v, err := json.Marshal(o)
		if err != nil {
			return err
		}
		if err := b.Put([]byte(o.Name), v); err != nil {
			return err
		}
	}
	return nil
}

func loadOperators(tx *bolt.Tx, t *tables) error {
	b := tx.Bucket(bucketOperators)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		var o Operator
		if err := json.Unmarshal(v, &o); err != nil || o.Name != string(k) {
			return fmt.Errorf("operators: %q: malformed record", k)
		}
		o.CreatedAt, o.RevokedAt = normTime(o.CreatedAt), normTime(o.RevokedAt)
		t.operators[o.Name] = o
		return nil
	})
}

// Snapshot section (version 2): n × (name, role, cert serial, fingerprint,
// created-at, created-by, revoked 0/1, revoked-at, revoked-by), by name.

func writeOperators(sw *snapWriter, ops map[string]Operator) {
	sw.uint(uint64(len(ops)))
	for _, name := range slices.Sorted(maps.Keys(ops)) {
		o := ops[name]
		sw.str(o.Name)
		sw.uint(uint64(o.Role))
		sw.str(o.CertSerial)
		sw.str(o.Fingerprint)
		sw.int(timeNS(o.CreatedAt))
		sw.str(o.CreatedBy)
		rev := uint64(0)
		if o.Revoked {
			rev = 1
		}
		sw.uint(rev)
		sw.int(timeNS(o.RevokedAt))
		sw.str(o.RevokedBy)
	}
}

func readOperators(s *snapReader, t *tables) error {
	for range s.count("operators", 1<<20) {
		o := Operator{Name: s.str(MaxOperatorNameLen), Role: Role(s.count("role", uint64(RoleAdmin)))}
		o.CertSerial = s.str(MaxCertSerialLen)
		o.Fingerprint = s.str(fingerprintLen)
		o.CreatedAt = nsTime(s.int())
		o.CreatedBy = s.str(MaxByLen)
		o.Revoked = s.count("revoked flag", 1) == 1
		o.RevokedAt = nsTime(s.int())
		o.RevokedBy = s.str(MaxByLen)
		if s.err != nil {
			return s.err
		}
		if err := CheckOperatorName(o.Name); err != nil || o.Role == 0 {
			return fmt.Errorf("%w: operator %q: %v", ErrBadSnapshot, o.Name, err)
		}
		if _, dup := t.operators[o.Name]; dup {
			return fmt.Errorf("%w: operator %q twice", ErrBadSnapshot, o.Name)
		}
		t.operators[o.Name] = o
	}
	return s.err
}
