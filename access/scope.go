package access

import (
	"fmt"
	"strings"
)

// ScopeContext is the first part of a SMART scope.
type ScopeContext string

// Scope contexts.
const (
	ContextPatient ScopeContext = "patient"
	ContextUser    ScopeContext = "user"
	ContextSystem  ScopeContext = "system"
)

// Permission bits of a SMART v2 scope, in canonical order c r u d s.
const (
	PermCreate Perm = 1 << iota
	PermRead
	PermUpdate
	PermDelete
	PermSearch
)

// Perm is a set of SMART v2 permissions.
type Perm uint8

const permAll = PermCreate | PermRead | PermUpdate | PermDelete | PermSearch

// String renders p in SMART v2 form ("rs", "cruds").
func (p Perm) String() string {
	var b strings.Builder
	for i, c := range "cruds" {
		if p&(1<<i) != 0 {
			b.WriteRune(c)
		}
	}
	return b.String()
}

// Scope is a parsed SMART resource scope such as "user/Task.rs".
type Scope struct {
	Context  ScopeContext
	Resource string // FHIR resource type, or "*"
	Perms    Perm
	// Query is the v2 granular-scope query ("category=…"), without "?".
	// A granted scope with a query is narrower than one without.
	Query string
}

// String renders s canonically (v2 form).
func (s Scope) String() string {
	out := string(s.Context) + "/" + s.Resource + "." + s.Perms.String()
	if s.Query != "" {
		out += "?" + s.Query
	}
	return out
}

const maxScopeLen = 256

// ParseScope parses a SMART resource scope:
//
//	(patient|user|system)/(Type|*).(cruds-subset)[?query]   v2, letters in order c r u d s
//	(patient|user|system)/(Type|*).(read|write|*)           v1: read = rs, write = cud, * = cruds
//
// Non-resource scopes ("openid", "launch/patient", "offline_access") are
// errors here; HasScope ignores them.
func ParseScope(s string) (Scope, error) {
	if s == "" || len(s) > maxScopeLen {
		return Scope{}, fmt.Errorf("%w: scope length", ErrInvalidInput)
	}
	ctx, rest, ok := strings.Cut(s, "/")
	if !ok {
		return Scope{}, fmt.Errorf("%w: scope has no context", ErrInvalidInput)
	}
	var sc Scope
	switch ScopeContext(ctx) {
	case ContextPatient, ContextUser, ContextSystem:
		sc.Context = ScopeContext(ctx)
	default:
		return Scope{}, fmt.Errorf("%w: unknown scope context", ErrInvalidInput)
	}
	rest, sc.Query, _ = strings.Cut(rest, "?")
	res, perms, ok := strings.Cut(rest, ".")
	if !ok {
		return Scope{}, fmt.Errorf("%w: scope has no permissions", ErrInvalidInput)
	}
	if !validResource(res) {
		return Scope{}, fmt.Errorf("%w: bad resource type in scope", ErrInvalidInput)
	}
	sc.Resource = res
	switch perms {
	case "read":
		sc.Perms = PermRead | PermSearch
	case "write":
		sc.Perms = PermCreate | PermUpdate | PermDelete
	case "*":
		sc.Perms = permAll
	default:
		last := -1
		for _, c := range perms {
			i := strings.IndexRune("cruds", c)
			if i <= last { // unknown letter (-1), repeated or out of order
				return Scope{}, fmt.Errorf("%w: bad scope permissions", ErrInvalidInput)
			}
			last = i
			sc.Perms |= 1 << i
		}
		if sc.Perms == 0 {
			return Scope{}, fmt.Errorf("%w: bad scope permissions", ErrInvalidInput)
		}
	}
	if strings.ContainsAny(sc.Query, " \t\r\n") || (sc.Query == "" && strings.HasSuffix(s, "?")) {
		return Scope{}, fmt.Errorf("%w: bad scope query", ErrInvalidInput)
	}
	return sc, nil
}

// MustParseScope is ParseScope for static tables (the router's endpoint →
// scope map); it panics on a bad scope.
func MustParseScope(s string) Scope {
	sc, err := ParseScope(s)
	if err != nil {
		panic(err)
	}
	return sc
}

func validResource(r string) bool {
	if r == "*" {
		return true
	}
	if r == "" || len(r) > 64 || r[0] < 'A' || r[0] > 'Z' {
		return false
	}
	for i := 1; i < len(r); i++ {
		c := r[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// HasScope reports whether the granted scopes together satisfy required
// (e.g. "user/Task.rs", which needs both read and search on Task).
//
// The rule:
//   - Contexts must match exactly. system/ satisfies only system/
//     requirements, user/ only user/, patient/ only patient/. We never let a
//     narrower context stand in for a wider one or the reverse: a system
//     (backend) token is not a user, and a patient-compartment token is not
//     a clinician's.
//   - A granted resource type matches the same type; a granted "*" matches
//     any type. A required "*" is satisfied only by a granted "*".
//   - Permissions add up across matching granted scopes ("user/Task.r" plus
//     "user/Task.s" satisfies "user/Task.rs").
//   - A granted scope with a v2 query is narrower, so it counts only toward a
//     requirement with the identical query; a granted scope without a query
//     also satisfies a requirement with one.
//   - Unparseable granted scopes are ignored; an unparseable requirement is
//     never satisfied.
func HasScope(granted []string, required string) bool {
	req, err := ParseScope(required)
	if err != nil {
		return false
	}
	var have Perm
	for _, g := range granted {
		gs, err := ParseScope(g)
		if err != nil || gs.Context != req.Context || (gs.Query != "" && gs.Query != req.Query) {
			continue
		}
		if gs.Resource != "*" && gs.Resource != req.Resource {
			continue
		}
		have |= gs.Perms
		if have&req.Perms == req.Perms {
			return true
		}
	}
	return false
}
