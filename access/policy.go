package access

import (
	"context"
	"slices"
	"time"
)

// Role is a principal's job function, from the token's "vigil_role" claim
// (or roles[0]).
type Role string

// Roles.
const (
	RolePhysician      Role = "physician"
	RoleNurse          Role = "nurse"
	RoleTriageNurse    Role = "triage_nurse"
	RoleFrontDesk      Role = "front_desk"
	RoleQualityAuditor Role = "quality_auditor"
	RolePrivacyOfficer Role = "privacy_officer"
	RoleAdmin          Role = "admin"
	RoleIntegration    Role = "integration"
)

// Roles lists every role.
func Roles() []Role {
	return []Role{RolePhysician, RoleNurse, RoleTriageNurse, RoleFrontDesk,
		RoleQualityAuditor, RolePrivacyOfficer, RoleAdmin, RoleIntegration}
}

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return slices.Contains(Roles(), r) }

// clinical roles treat patients: they may break the glass, and their access
// to patient items is scoped by department and care team.
func (r Role) clinical() bool {
	return r == RolePhysician || r == RoleNurse || r == RoleTriageNurse
}

// departmentScoped roles see only their own department's queues and items
// unless they are on the patient's care team (or broke the glass).
func (r Role) departmentScoped() bool { return r.clinical() || r == RoleFrontDesk }

// Action is something a principal asks to do. The router maps each endpoint
// to one action.
type Action string

// Actions.
const (
	ActionQueueList         Action = "queue.list"
	ActionItemRead          Action = "item.read"
	ActionItemApprove       Action = "item.approve"
	ActionItemEdit          Action = "item.edit"
	ActionItemReject        Action = "item.reject"
	ActionItemAck           Action = "item.ack"
	ActionReplyRelease      Action = "reply.release"
	ActionDecisionExplain   Action = "decision.explain"
	ActionAuditSearch       Action = "audit.search"
	ActionAuditExport       Action = "audit.export"
	ActionBreakGlassRequest Action = "breakglass.request"
	ActionBreakGlassReview  Action = "breakglass.review"
	ActionRulesPublish      Action = "rules.publish"
	ActionRulesActivate     Action = "rules.activate"
	ActionIntakePost        Action = "intake.post"
	ActionTenantConfig      Action = "tenant.config"
)

var (
	clinicians = []Role{RolePhysician, RoleNurse, RoleTriageNurse}
	reviewers  = []Role{RolePhysician, RoleNurse, RoleTriageNurse, RoleFrontDesk, RoleQualityAuditor}

	// actionRoles is the RBAC table (rendered in doc.go).
	actionRoles = map[Action][]Role{
		ActionQueueList:         reviewers,
		ActionItemRead:          reviewers,
		ActionItemApprove:       clinicians,
		ActionItemEdit:          clinicians,
		ActionItemReject:        clinicians,
		ActionItemAck:           clinicians,
		ActionReplyRelease:      clinicians, // with PhysicianHold: physician only
		ActionDecisionExplain:   {RolePhysician, RoleNurse, RoleTriageNurse, RoleQualityAuditor},
		ActionAuditSearch:       {RoleQualityAuditor, RolePrivacyOfficer},
		ActionAuditExport:       {RolePrivacyOfficer},
		ActionBreakGlassRequest: clinicians,
		ActionBreakGlassReview:  {RolePrivacyOfficer},
		ActionRulesPublish:      {RoleAdmin},
		ActionRulesActivate:     {RoleAdmin},
		ActionIntakePost:        {RoleIntegration},
		ActionTenantConfig:      {RoleAdmin},
	}

	// patientActions touch one patient's item, so the ABAC rules apply.
	patientActions = []Action{ActionItemRead, ActionItemApprove, ActionItemEdit, ActionItemReject,
		ActionItemAck, ActionReplyRelease, ActionDecisionExplain}
)

// Actions lists every action.
func Actions() []Action {
	out := make([]Action, 0, len(actionRoles))
	for a := range actionRoles {
		out = append(out, a)
	}
	slices.Sort(out)
	return out
}

// RoleMay reports whether the RBAC table lets r do a (before any ABAC rule).
func RoleMay(r Role, a Action) bool { return slices.Contains(actionRoles[a], r) }

// Sensitivity labels.
const (
	LabelBehavioralHealth  = "behavioral_health"
	LabelSubstanceUsePart2 = "substance_use_part2"
	LabelHIV               = "hiv"
	LabelMinor             = "minor"
)

type labelRule uint8

const (
	labelDeny     labelRule = iota // not without break-the-glass
	labelAllow                     // role alone suffices (department rules still apply)
	labelCareTeam                  // role plus care-team membership
)

// labelRules is the sensitivity table (rendered in doc.go). Roles absent
// from a label's row are denied; break-the-glass by a clinical role
// overrides a deny or a missing care-team link.
var labelRules = map[string]map[Role]labelRule{
	LabelBehavioralHealth: {
		RolePhysician: labelCareTeam, RoleNurse: labelCareTeam, RoleTriageNurse: labelCareTeam,
		RoleQualityAuditor: labelAllow,
	},
	// 42 CFR Part 2: only treating physicians and nurses; auditors are
	// excluded (Part 2 audit access needs its own agreement).
	LabelSubstanceUsePart2: {
		RolePhysician: labelCareTeam, RoleNurse: labelCareTeam,
	},
	LabelHIV: {
		RolePhysician: labelCareTeam, RoleNurse: labelCareTeam, RoleTriageNurse: labelCareTeam,
		RoleQualityAuditor: labelAllow,
	},
	LabelMinor: {
		RolePhysician: labelAllow, RoleNurse: labelAllow, RoleTriageNurse: labelAllow,
		RoleQualityAuditor: labelAllow,
	},
}

// Attributes describe the resource an action touches.
type Attributes struct {
	PatientRef  string   // pseudonymous patient reference; required for patient actions under ABAC rules
	Department  string   // owning department of the queue or item
	Sensitivity []string // LabelBehavioralHealth, LabelSubstanceUsePart2, LabelHIV, LabelMinor
	// PhysicianHold marks a reply only a physician may release.
	PhysicianHold bool
}

// How a Decision allowed access (Decision.Via).
const (
	ViaRole       = "role"
	ViaCareTeam   = "care_team"
	ViaBreakGlass = "break_glass"
)

// Deny reasons (Decision.Reason). Fixed phrases with no identifiers or
// labels in them, safe for the audit trail and for process logs.
const (
	DenyNoPrincipal   = "no principal"
	DenyNoTenant      = "principal not bound to a tenant"
	DenyUnknownRole   = "unknown role"
	DenyUnknownAction = "unknown action"
	DenyRole          = "role not permitted for action"
	DenyPhysicianHold = "physician hold: release requires a physician"
	DenyDepartment    = "department mismatch and no care-team relationship"
	DenySensitivity   = "sensitivity label not permitted for role"
	DenyNeedsCareTeam = "sensitivity label requires care-team membership"
	DenyUnknownLabel  = "unknown sensitivity label"
	DenyNoPatient     = "patient reference required"
	DenyLookupFailed  = "care-team or grant lookup failed"
	allowRole         = "role permits action"
	allowCareTeam     = "care-team member"
	allowBreakGlass   = "active break-the-glass grant"
)

// Decision is the outcome of Policy.Decide.
type Decision struct {
	Allow  bool
	Reason string // why (deny reasons are the Deny* constants)
	Via    string // on allow: ViaRole, ViaCareTeam or ViaBreakGlass
	// Err is set when a care-team or grant lookup failed; the decision is
	// then a deny (fail closed). For the operator, not the client.
	Err error
}

// CareTeam answers whether subject is on patientRef's care team at a time.
type CareTeam interface {
	IsMember(ctx context.Context, tenantID, patientRef, subject string, at time.Time) (bool, error)
}

// GrantChecker answers whether subject holds an unexpired break-the-glass
// grant for patientRef at a time.
type GrantChecker interface {
	HasActiveGrant(ctx context.Context, tenantID, subject, patientRef string, at time.Time) (bool, error)
}

// Policy decides RBAC + ABAC questions. Its only I/O is through CareTeam
// and Grants, so tests can stub both. Safe for concurrent use.
type Policy struct {
	CareTeam CareTeam     // nil: nobody is on any care team
	Grants   GrantChecker // nil: no break-the-glass grants
	Now      func() time.Time
}

func (p *Policy) now() time.Time {
	if p.Now != nil {
		return p.Now()
	}
	return time.Now()
}

func deny(reason string) Decision { return Decision{Reason: reason} }

// Decide applies, in order: the principal must be tenant-bound with a known
// role; the RBAC table; the physician hold on reply.release; for queue.list
// the department; for patient actions the department and sensitivity
// tables, satisfied by care-team membership or, for clinical roles, an
// active break-the-glass grant. Break-the-glass never widens the RBAC table
// and never lifts a physician hold.
func (p *Policy) Decide(ctx context.Context, pr *Principal, a Action, attrs Attributes) Decision {
	if pr == nil {
		return deny(DenyNoPrincipal)
	}
	if pr.TenantID == "" {
		return deny(DenyNoTenant)
	}
	if !pr.Role.Valid() {
		return deny(DenyUnknownRole)
	}
	roles, ok := actionRoles[a]
	if !ok {
		return deny(DenyUnknownAction)
	}
	if !slices.Contains(roles, pr.Role) {
		return deny(DenyRole)
	}
	if a == ActionReplyRelease && attrs.PhysicianHold && pr.Role != RolePhysician {
		return deny(DenyPhysicianHold)
	}
	deptMismatch := pr.Role.departmentScoped() && attrs.Department != "" && attrs.Department != pr.Department
	if a == ActionQueueList {
		if deptMismatch {
			return deny(DenyDepartment)
		}
		return Decision{Allow: true, Reason: allowRole, Via: ViaRole}
	}
	if !slices.Contains(patientActions, a) {
		return Decision{Allow: true, Reason: allowRole, Via: ViaRole}
	}

	// Patient action: what relationship, if any, is needed?
	forbidden, need := "", ""
	if deptMismatch {
		need = DenyDepartment
	}
	for _, l := range attrs.Sensitivity {
		rules, ok := labelRules[l]
		if !ok {
			return deny(DenyUnknownLabel) // fail closed; break-the-glass does not help
		}
		switch rules[pr.Role] {
		case labelDeny:
			forbidden = DenySensitivity
		case labelCareTeam:
			if need == "" {
				need = DenyNeedsCareTeam
			}
		}
	}
	if forbidden == "" && need == "" {
		return Decision{Allow: true, Reason: allowRole, Via: ViaRole}
	}
	if attrs.PatientRef == "" {
		return deny(DenyNoPatient)
	}
	now := p.now()
	if forbidden == "" && p.CareTeam != nil {
		ok, err := p.CareTeam.IsMember(ctx, pr.TenantID, attrs.PatientRef, pr.Subject, now)
		if err != nil {
			return Decision{Reason: DenyLookupFailed, Err: err}
		}
		if ok {
			return Decision{Allow: true, Reason: allowCareTeam, Via: ViaCareTeam}
		}
	}
	if pr.Role.clinical() && p.Grants != nil {
		ok, err := p.Grants.HasActiveGrant(ctx, pr.TenantID, pr.Subject, attrs.PatientRef, now)
		if err != nil {
			return Decision{Reason: DenyLookupFailed, Err: err}
		}
		if ok {
			return Decision{Allow: true, Reason: allowBreakGlass, Via: ViaBreakGlass}
		}
	}
	if forbidden != "" {
		return deny(forbidden)
	}
	return deny(need)
}
