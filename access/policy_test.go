package access

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"
)

type memberKey struct{ tenant, patient, subject string }

type fakeCareTeam map[memberKey]bool

func (f fakeCareTeam) IsMember(_ context.Context, tenant, patient, subject string, _ time.Time) (bool, error) {
	return f[memberKey{tenant, patient, subject}], nil
}

type fakeGrants map[memberKey]time.Time // → expires at

func (f fakeGrants) HasActiveGrant(_ context.Context, tenant, subject, patient string, at time.Time) (bool, error) {
	exp, ok := f[memberKey{tenant, patient, subject}]
	return ok && at.Before(exp), nil
}

type failing struct{}

func (failing) IsMember(context.Context, string, string, string, time.Time) (bool, error) {
	return false, errors.New("db down")
}

func TestDecide(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(testBase)
	ct := fakeCareTeam{
		{"clinic-a", "pt-1", "dr-care"}:    true,
		{"clinic-a", "pt-1", "rn-care"}:    true,
		{"clinic-a", "pt-1", "tn-care"}:    true,
		{"clinic-a", "pt-1", "desk-care"}:  true,
		{"clinic-b", "pt-1", "dr-other-t"}: true,
	}
	grants := fakeGrants{
		{"clinic-a", "pt-1", "dr-glass"}:   testBase.Add(time.Hour),
		{"clinic-a", "pt-1", "tn-glass"}:   testBase.Add(time.Hour),
		{"clinic-a", "pt-1", "dr-expired"}: testBase.Add(-time.Minute),
		{"clinic-a", "pt-1", "desk-glass"}: testBase.Add(time.Hour), // front desk cannot use one
	}
	pol := &Policy{CareTeam: ct, Grants: grants, Now: clock.Now}
	pr := func(sub string, r Role, dept string) *Principal {
		return &Principal{Subject: sub, Role: r, Department: dept, TenantID: "clinic-a"}
	}
	cardio := Attributes{PatientRef: "pt-1", Department: "cardiology"}
	onc := Attributes{PatientRef: "pt-1", Department: "oncology"}
	label := func(a Attributes, ls ...string) Attributes { a.Sensitivity = ls; return a }
	hold := cardio
	hold.PhysicianHold = true

	tests := []struct {
		name   string
		pr     *Principal
		action Action
		attrs  Attributes
		allow  bool
		reason string // deny reason; on allow, the Via
	}{
		// RBAC
		{"physician approves own dept", pr("dr-1", RolePhysician, "cardiology"), ActionItemApprove, cardio, true, ViaRole},
		{"nurse reads", pr("rn-1", RoleNurse, "cardiology"), ActionItemRead, cardio, true, ViaRole},
		{"front desk lists queue", pr("desk-1", RoleFrontDesk, "cardiology"), ActionQueueList, Attributes{Department: "cardiology"}, true, ViaRole},
		{"front desk cannot approve", pr("desk-1", RoleFrontDesk, "cardiology"), ActionItemApprove, cardio, false, DenyRole},
		{"auditor cannot edit", pr("qa-1", RoleQualityAuditor, ""), ActionItemEdit, cardio, false, DenyRole},
		{"auditor explains any dept", pr("qa-1", RoleQualityAuditor, ""), ActionDecisionExplain, onc, true, ViaRole},
		{"auditor searches audit", pr("qa-1", RoleQualityAuditor, ""), ActionAuditSearch, Attributes{}, true, ViaRole},
		{"auditor cannot export", pr("qa-1", RoleQualityAuditor, ""), ActionAuditExport, Attributes{}, false, DenyRole},
		{"privacy officer exports", pr("po-1", RolePrivacyOfficer, ""), ActionAuditExport, Attributes{}, true, ViaRole},
		{"privacy officer reviews grants", pr("po-1", RolePrivacyOfficer, ""), ActionBreakGlassReview, Attributes{}, true, ViaRole},
		{"privacy officer cannot read items", pr("po-1", RolePrivacyOfficer, ""), ActionItemRead, cardio, false, DenyRole},
		{"admin configures tenant", pr("adm", RoleAdmin, ""), ActionTenantConfig, Attributes{}, true, ViaRole},
		{"admin cannot read items", pr("adm", RoleAdmin, ""), ActionItemRead, cardio, false, DenyRole},
		{"integration posts intake", pr("svc", RoleIntegration, ""), ActionIntakePost, Attributes{}, true, ViaRole},
		{"integration cannot list queue", pr("svc", RoleIntegration, ""), ActionQueueList, Attributes{}, false, DenyRole},
		{"physician cannot publish rules", pr("dr-1", RolePhysician, "cardiology"), ActionRulesPublish, Attributes{}, false, DenyRole},
		{"unknown role", pr("x", Role("superuser"), ""), ActionItemRead, cardio, false, DenyUnknownRole},
		{"empty role", pr("x", "", ""), ActionItemRead, cardio, false, DenyUnknownRole},
		{"unknown action", pr("dr-1", RolePhysician, "cardiology"), Action("item.delete"), cardio, false, DenyUnknownAction},
		{"unbound principal", &Principal{Subject: "dr-1", Role: RolePhysician}, ActionItemRead, cardio, false, DenyNoTenant},
		{"nil principal", nil, ActionItemRead, cardio, false, DenyNoPrincipal},

		// Physician hold
		{"physician releases held reply", pr("dr-1", RolePhysician, "cardiology"), ActionReplyRelease, hold, true, ViaRole},
		{"nurse cannot release held reply", pr("rn-1", RoleNurse, "cardiology"), ActionReplyRelease, hold, false, DenyPhysicianHold},
		{"triage nurse with grant still cannot release held reply", pr("tn-glass", RoleTriageNurse, "oncology"), ActionReplyRelease, hold, false, DenyPhysicianHold},
		{"nurse releases unheld reply", pr("rn-1", RoleNurse, "cardiology"), ActionReplyRelease, cardio, true, ViaRole},

		// Department
		{"other dept denied", pr("dr-1", RolePhysician, "oncology"), ActionItemRead, cardio, false, DenyDepartment},
		{"no dept claim denied on dept item", pr("dr-1", RolePhysician, ""), ActionItemRead, cardio, false, DenyDepartment},
		{"other dept queue denied", pr("rn-1", RoleNurse, "oncology"), ActionQueueList, Attributes{Department: "cardiology"}, false, DenyDepartment},
		{"other dept via care team", pr("dr-care", RolePhysician, "oncology"), ActionItemRead, cardio, true, ViaCareTeam},
		{"other dept via break glass", pr("dr-glass", RolePhysician, "oncology"), ActionItemApprove, cardio, true, ViaBreakGlass},
		{"expired grant no longer works", pr("dr-expired", RolePhysician, "oncology"), ActionItemRead, cardio, false, DenyDepartment},
		{"front desk grant ignored", pr("desk-glass", RoleFrontDesk, "oncology"), ActionItemRead, cardio, false, DenyDepartment},
		{"care team in other tenant ignored", pr("dr-other-t", RolePhysician, "oncology"), ActionItemRead, cardio, false, DenyDepartment},
		{"item without dept", pr("dr-1", RolePhysician, "oncology"), ActionItemRead, Attributes{PatientRef: "pt-1"}, true, ViaRole},

		// Sensitivity
		{"bh needs care team", pr("dr-1", RolePhysician, "cardiology"), ActionItemRead, label(cardio, LabelBehavioralHealth), false, DenyNeedsCareTeam},
		{"bh care team physician", pr("dr-care", RolePhysician, "cardiology"), ActionItemRead, label(cardio, LabelBehavioralHealth), true, ViaCareTeam},
		{"bh break glass", pr("dr-glass", RolePhysician, "cardiology"), ActionItemRead, label(cardio, LabelBehavioralHealth), true, ViaBreakGlass},
		{"bh auditor metadata", pr("qa-1", RoleQualityAuditor, ""), ActionItemRead, label(cardio, LabelBehavioralHealth), true, ViaRole},
		{"bh front desk even on care team", pr("desk-care", RoleFrontDesk, "cardiology"), ActionItemRead, label(cardio, LabelBehavioralHealth), false, DenySensitivity},
		{"part2 nurse on care team", pr("rn-care", RoleNurse, "cardiology"), ActionItemRead, label(cardio, LabelSubstanceUsePart2), true, ViaCareTeam},
		{"part2 physician not on care team", pr("dr-1", RolePhysician, "cardiology"), ActionItemRead, label(cardio, LabelSubstanceUsePart2), false, DenyNeedsCareTeam},
		{"part2 triage nurse on care team denied", pr("tn-care", RoleTriageNurse, "cardiology"), ActionItemRead, label(cardio, LabelSubstanceUsePart2), false, DenySensitivity},
		{"part2 triage nurse break glass", pr("tn-glass", RoleTriageNurse, "cardiology"), ActionItemRead, label(cardio, LabelSubstanceUsePart2), true, ViaBreakGlass},
		{"part2 auditor denied", pr("qa-1", RoleQualityAuditor, ""), ActionItemRead, label(cardio, LabelSubstanceUsePart2), false, DenySensitivity},
		{"hiv triage nurse care team", pr("tn-care", RoleTriageNurse, "cardiology"), ActionItemAck, label(cardio, LabelHIV), true, ViaCareTeam},
		{"minor physician own dept", pr("dr-1", RolePhysician, "cardiology"), ActionItemRead, label(cardio, LabelMinor), true, ViaRole},
		{"minor front desk denied", pr("desk-1", RoleFrontDesk, "cardiology"), ActionItemRead, label(cardio, LabelMinor), false, DenySensitivity},
		{"two labels: strictest wins", pr("tn-care", RoleTriageNurse, "cardiology"), ActionItemRead, label(cardio, LabelMinor, LabelSubstanceUsePart2), false, DenySensitivity},
		{"unknown label denied even with grant", pr("dr-glass", RolePhysician, "cardiology"), ActionItemRead, label(cardio, "genetic"), false, DenyUnknownLabel},
		{"label without patient ref", pr("dr-care", RolePhysician, "cardiology"), ActionItemRead, Attributes{Department: "cardiology", Sensitivity: []string{LabelHIV}}, false, DenyNoPatient},
		{"labels ignored for non-patient action", pr("qa-1", RoleQualityAuditor, ""), ActionAuditSearch, label(cardio, LabelSubstanceUsePart2), true, ViaRole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := pol.Decide(context.Background(), tt.pr, tt.action, tt.attrs)
			if d.Allow != tt.allow {
				t.Fatalf("Allow = %v (%q), want %v", d.Allow, d.Reason, tt.allow)
			}
			if d.Reason == "" {
				t.Fatal("empty reason")
			}
			if tt.allow && d.Via != tt.reason {
				t.Fatalf("Via = %q, want %q", d.Via, tt.reason)
			}
			if !tt.allow && (d.Reason != tt.reason || d.Via != "") {
				t.Fatalf("Reason = %q Via = %q, want %q", d.Reason, d.Via, tt.reason)
			}
		})
	}

	t.Run("lookup failure denies", func(t *testing.T) {
		t.Parallel()
		p := &Policy{CareTeam: failing{}, Grants: grants, Now: clock.Now}
		d := p.Decide(context.Background(), pr("dr-1", RolePhysician, "oncology"), ActionItemRead, cardio)
		if d.Allow || d.Reason != DenyLookupFailed || d.Err == nil {
			t.Fatalf("decision = %+v", d)
		}
	})
	t.Run("nil lookups deny", func(t *testing.T) {
		t.Parallel()
		p := &Policy{}
		d := p.Decide(context.Background(), pr("dr-care", RolePhysician, "oncology"), ActionItemRead, cardio)
		if d.Allow || d.Reason != DenyDepartment {
			t.Fatalf("decision = %+v", d)
		}
	})
}

func TestEveryActionHasRoles(t *testing.T) {
	t.Parallel()
	if len(Actions()) != 16 {
		t.Fatalf("actions = %d, want 16", len(Actions()))
	}
	for _, a := range Actions() {
		if len(actionRoles[a]) == 0 {
			t.Errorf("action %s has no roles", a)
		}
		for _, r := range actionRoles[a] {
			if !r.Valid() {
				t.Errorf("action %s: bad role %q", a, r)
			}
		}
	}
}

func TestVisibleFields(t *testing.T) {
	t.Parallel()
	all := FieldGroups()
	tests := []struct {
		role    Role
		granted bool
		want    []FieldGroup
	}{
		{RolePhysician, false, all},
		{RoleNurse, false, all},
		{RoleTriageNurse, false, all},
		{RoleFrontDesk, false, []FieldGroup{FieldQueueStatus, FieldPatientRef}},
		{RoleFrontDesk, true, []FieldGroup{FieldQueueStatus, FieldPatientRef}},
		{RoleQualityAuditor, false, []FieldGroup{FieldQueueStatus, FieldRuleHits, FieldAuditMetadata}},
		{RoleQualityAuditor, true, []FieldGroup{FieldQueueStatus, FieldRuleHits, FieldAuditMetadata,
			FieldClinicalValues, FieldMessageText, FieldAIDraft, FieldReplyDraft, FieldPatientRef}},
		{RolePrivacyOfficer, true, []FieldGroup{FieldQueueStatus, FieldAuditMetadata}},
		{RoleAdmin, false, nil},
		{RoleIntegration, true, nil},
		{Role("unknown"), true, nil},
	}
	for _, tt := range tests {
		t.Run(string(tt.role), func(t *testing.T) {
			t.Parallel()
			got := VisibleFields(tt.role, tt.granted)
			if len(got) != len(all) {
				t.Fatalf("map has %d groups, want all %d", len(got), len(all))
			}
			want := map[FieldGroup]bool{}
			for _, g := range tt.want {
				want[g] = true
			}
			for _, g := range all {
				if got[g] != want[g] {
					t.Errorf("%s granted=%v %s = %v, want %v", tt.role, tt.granted, g, got[g], want[g])
				}
			}
		})
	}
}

func TestGrantLogValue(t *testing.T) {
	t.Parallel()
	g := Grant{ID: "g-1", Subject: "dr-1", Role: RolePhysician, PatientRef: "Patient/secret-ref",
		Reason: "overdose suspected, unresponsive", ExpiresAt: testBase}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("grant", "grant", g)
	out := buf.String()
	if !strings.Contains(out, "g-1") || strings.Contains(out, "secret-ref") || strings.Contains(out, "overdose") {
		t.Fatalf("log = %s", out)
	}
}
