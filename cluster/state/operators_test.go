package state

import (
	"bytes"
	"context"
	"errors"
	"hash/crc32"
	"reflect"
	"strings"
	"testing"
)

var fp = strings.Repeat("ab", 32)

func putOp(name string, role Role, serial string) *Command {
	return &Command{Version: CommandVersion, Op: OpPutOperator, By: "bootstrap",
		Operator: &Operator{Name: name, Role: role, CertSerial: serial, Fingerprint: fp}}
}

func TestValidateOperatorCommands(t *testing.T) {
	good := func(c *Command) Command {
		c.At = t0
		return *c
	}
	tests := []struct {
		name string
		c    Command
		ok   bool
	}{
		{"put", good(putOp("alice", RoleOperator, "1f")), true},
		{"put no operator", good(&Command{Version: 1, Op: OpPutOperator}), false},
		{"put bad name", good(putOp("al ice", RoleOperator, "1f")), false},
		{"put name starts with dot", good(putOp(".alice", RoleOperator, "1f")), false},
		{"put long name", good(putOp(strings.Repeat("a", 65), RoleOperator, "1f")), false},
		{"put no role", good(putOp("alice", 0, "1f")), false},
		{"put role 4", good(putOp("alice", 4, "1f")), false},
		{"put upper hex serial", good(putOp("alice", RoleViewer, "1F")), false},
		{"put no serial", good(putOp("alice", RoleViewer, "")), false},
		{"put revoked", func() Command {
			c := putOp("alice", RoleViewer, "1f")
			c.Operator.Revoked = true
			return good(c)
		}(), false},
		{"put with reason", func() Command { c := putOp("alice", RoleViewer, "1f"); c.Reason = "x"; return good(c) }(), false},
		{"role", good(&Command{Version: 1, Op: OpSetOperatorRole, Operator: &Operator{Name: "a", Role: RoleAdmin}}), true},
		{"role with serial", good(&Command{Version: 1, Op: OpSetOperatorRole, Operator: &Operator{Name: "a", Role: RoleAdmin, CertSerial: "1"}}), false},
		{"revoke", good(&Command{Version: 1, Op: OpRevokeOperator, Operator: &Operator{Name: "a"}}), true},
		{"revoke with role", good(&Command{Version: 1, Op: OpRevokeOperator, Operator: &Operator{Name: "a", Role: RoleAdmin}}), false},
		{"operator on card op", good(&Command{Version: 1, Op: OpRemoveCards, Cards: []CardSerial{{1}}, Operator: &Operator{Name: "a"}}), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.c.Validate(); tt.ok != (err == nil) {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			} else if err != nil && !errors.Is(err, ErrInvalidCommand) {
				t.Fatalf("error %v does not wrap ErrInvalidCommand", err)
			}
			if tt.ok {
				b, err := tt.c.Encode()
				if err != nil {
					t.Fatal(err)
				}
				if _, err := Decode(b); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func TestOperators(t *testing.T) {
	forEachStore(t, func(t *testing.T, s snapStore, reopen func() snapStore) {
		ctx := context.Background()
		mustApply(t, s, putOp("admin", RoleAdmin, "01"))
		mustApply(t, s, putOp("alice", RoleViewer, "02"))
		mustApply(t, s, &Command{Op: OpSetOperatorRole, By: "admin", Operator: &Operator{Name: "alice", Role: RoleOperator}})
		mustApply(t, s, putOp("bob", RoleViewer, "03"))
		mustApply(t, s, &Command{Op: OpRevokeOperator, By: "admin", Operator: &Operator{Name: "bob"}})
		// Reissuing the admin certificate keeps its identity.
		mustApply(t, s, putOp("admin", RoleAdmin, "04"))

		for _, c := range []struct {
			cmd  *Command
			want error
		}{
			{&Command{Version: 1, Op: OpRevokeOperator, Operator: &Operator{Name: "carol"}}, ErrUnknownOperator},
			{&Command{Version: 1, Op: OpSetOperatorRole, Operator: &Operator{Name: "bob", Role: RoleAdmin}}, ErrOperatorRevoked},
			{&Command{Version: 1, Op: OpRevokeOperator, Operator: &Operator{Name: "bob"}}, ErrOperatorRevoked},
			{putOp("bob", RoleAdmin, "05"), ErrOperatorRevoked},
		} {
			if err := s.Apply(ctx, c.cmd); !errors.Is(err, c.want) {
				t.Fatalf("%s %s: %v, want %v", c.cmd.Op, c.cmd.Operator.Name, err, c.want)
			}
		}
		check := func(s snapStore) {
			t.Helper()
			r := s.(OperatorReads)
			ops := r.Operators()
			if len(ops) != 3 || ops[0].Name != "admin" || ops[1].Name != "alice" || ops[2].Name != "bob" {
				t.Fatalf("operators %+v", ops)
			}
			if a, _ := r.Operator("admin"); a.CertSerial != "04" || a.Role != RoleAdmin || a.Revoked {
				t.Fatalf("admin %+v", a)
			}
			if a, _ := r.Operator("alice"); a.Role != RoleOperator || a.CreatedBy != "bootstrap" || a.CreatedAt.IsZero() {
				t.Fatalf("alice %+v", a)
			}
			if b, _ := r.Operator("bob"); !b.Revoked || b.RevokedBy != "admin" || b.RevokedAt.IsZero() || b.Role != RoleViewer {
				t.Fatalf("bob %+v", b)
			}
		}
		check(s)
		want := snapBytes(t, s)
		if reopen != nil {
			s = reopen()
			check(s)
		}
		f := NewFSM()
		if err := f.Restore(bytes.NewReader(want)); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(f.Operators(), s.(OperatorReads).Operators()) {
			t.Fatal("restored operators differ")
		}
		if err := s.Restore(bytes.NewReader(snapBytes(t, NewFSM()))); err != nil {
			t.Fatal(err)
		}
		if len(s.(OperatorReads).Operators()) != 0 {
			t.Fatal("restore of an empty snapshot kept operators")
		}
		if err := s.Restore(bytes.NewReader(want)); err != nil {
			t.Fatal(err)
		}
		if reopen != nil {
			s = reopen()
		}
		check(s)
	})
}

// A version-1 snapshot (before operators) still restores.
func TestSnapshotVersion1(t *testing.T) {
	m := NewMemory()
	mustApply(t, m, &Command{Op: OpPutReader, Reader: testReader("R1")})
	var b bytes.Buffer
	if err := m.Snapshot(&b); err != nil {
		t.Fatal(err)
	}
	v2 := b.Bytes()
	// Version 2 with no slots, config or operators is version 1 plus three
	// zero counts: rewrite.
	v1 := bytes.Clone(v2[:len(v2)-7])
	v1[len(snapMagic)] = 1
	sum := crc32c(v1)
	v1 = append(v1, byte(sum>>24), byte(sum>>16), byte(sum>>8), byte(sum))
	f := NewFSM()
	if err := f.Restore(bytes.NewReader(v1)); err != nil {
		t.Fatal(err)
	}
	if _, ok := f.Reader("R1"); !ok {
		t.Fatal("reader lost")
	}
}

func crc32c(b []byte) uint32 {
	h := crc32.New(crcTable)
	h.Write(b)
	return h.Sum32()
}
