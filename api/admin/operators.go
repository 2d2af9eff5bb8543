package admin

import (
	"net/http"
	"time"

	"github.com/samrack/samrack/api/audit"
	"github.com/samrack/samrack/cluster/state"
)

// OperatorInfo is the JSON form of an operator identity.
type OperatorInfo struct {
	Name        string    `json:"name"`
	Role        string    `json:"role"`
	CertSerial  string    `json:"cert_serial"`
	Fingerprint string    `json:"fingerprint"`
	CreatedAt   time.Time `json:"created_at"`
	CreatedBy   string    `json:"created_by,omitempty"`
	Revoked     bool      `json:"revoked,omitempty"`
	RevokedAt   time.Time `json:"revoked_at,omitzero"`
	RevokedBy   string    `json:"revoked_by,omitempty"`
}

func operatorInfo(o state.Operator) OperatorInfo {
	return OperatorInfo{Name: o.Name, Role: o.Role.String(), CertSerial: o.CertSerial, Fingerprint: o.Fingerprint,
		CreatedAt: o.CreatedAt, CreatedBy: o.CreatedBy, Revoked: o.Revoked, RevokedAt: o.RevokedAt, RevokedBy: o.RevokedBy}
}

// AddOperator is the body of POST /v1/operators; the answer is the new
// operator's Credentials, which hold its key: shown once, store it.
type AddOperator struct {
	Name string `json:"name"`
	Role string `json:"role"` // viewer, operator or admin
}

// OperatorRole is the body of POST /v1/operators/{name}/role.
type OperatorRole struct {
	Role string `json:"role"`
}

func parseRole(s string) (state.Role, error) {
	var r state.Role
	if err := r.UnmarshalText([]byte(s)); err != nil {
		return 0, errorf(http.StatusBadRequest, "%v", err)
	}
	return r, nil
}

func (s *Server) listOperators(w http.ResponseWriter, r *http.Request) error {
	ops := s.operators().Operators()
	out := make([]OperatorInfo, 0, len(ops))
	for _, o := range ops {
		out = append(out, operatorInfo(o))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (s *Server) addOperator(w http.ResponseWriter, r *http.Request) error {
	var req AddOperator
	if err := readJSON(r, &req); err != nil {
		return err
	}
	if err := state.CheckOperatorName(req.Name); err != nil {
		return errorf(http.StatusBadRequest, "%v", err)
	}
	role, err := parseRole(req.Role)
	if err != nil {
		return err
	}
	if o, exists := s.operators().Operator(req.Name); exists {
		if o.Revoked {
			return errorf(http.StatusConflict, "operator %q was revoked; names are not reused, choose another", req.Name)
		}
		return errorf(http.StatusConflict, "operator %q already exists", req.Name)
	}
	c, err := s.Readers.AddOperator(r.Context(), req.Name, role, s.actor(r))
	if err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "operator.add", Detail: "operator " + req.Name + " role " + role.String()})
	return writeJSON(w, http.StatusCreated, c)
}

func (s *Server) setOperatorRole(w http.ResponseWriter, r *http.Request) error {
	var req OperatorRole
	if err := readJSON(r, &req); err != nil {
		return err
	}
	role, err := parseRole(req.Role)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	before, _ := s.operators().Operator(name)
	if before.Role == state.RoleAdmin && role != state.RoleAdmin {
		if err := s.keepAnAdmin(name); err != nil {
			return err
		}
	}
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpSetOperatorRole, By: s.actor(r),
		Operator: &state.Operator{Name: name, Role: role}}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "operator.role", Detail: "operator " + name + " " + before.Role.String() + " -> " + role.String()})
	o, _ := s.operators().Operator(name)
	return writeJSON(w, http.StatusOK, operatorInfo(o))
}

func (s *Server) revokeOperator(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if o, _ := s.operators().Operator(name); o.Role == state.RoleAdmin && !o.Revoked {
		if err := s.keepAnAdmin(name); err != nil {
			return err
		}
	}
	cmd := &state.Command{Version: state.CommandVersion, Op: state.OpRevokeOperator, By: s.actor(r),
		Operator: &state.Operator{Name: name}}
	if err := s.State.Apply(r.Context(), cmd); err != nil {
		return err
	}
	s.record(r, audit.Event{Kind: "operator.revoke", Detail: "operator " + name})
	o, _ := s.operators().Operator(name)
	return writeJSON(w, http.StatusOK, operatorInfo(o))
}

// keepAnAdmin refuses a change that would leave no admin identity.
func (s *Server) keepAnAdmin(losing string) error {
	for _, o := range s.operators().Operators() {
		if o.Name != losing && o.Role == state.RoleAdmin && !o.Revoked {
			return nil
		}
	}
	return errorf(http.StatusConflict, "%q is the last admin identity: add another admin first", losing)
}
