package app_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/workers"
)

var leakScenarios = []string{"scn-k-critical", "scn-hba1c-high", "scn-msg-chest", "scn-msg-refill", "scn-msg-ambiguous"}

// tenantTables are the tenant tables whose rows must not change when another
// tenant's caller acts; compared row for row before and after.
var tenantTables = []string{"intake_events", "decisions", "decision_revisions", "review_items", "outbox",
	"break_glass_grants", "care_team_members", "tenant_keys", "audit_events", "audit_heads"}

// tenantRows renders every row of tenant in each table, for before/after comparison.
func (h *harness) tenantRows(tenant string) map[string]string {
	h.t.Helper()
	out := map[string]string{}
	for _, table := range tenantTables {
		var s string
		err := h.db.Owner.QueryRow(context.Background(),
			`SELECT coalesce(string_agg(to_jsonb(t)::text, E'\n' ORDER BY to_jsonb(t)::text), '') FROM `+table+` t WHERE tenant_id = $1`, tenant).Scan(&s)
		if err != nil {
			h.t.Fatalf("%s: %v", table, err)
		}
		out[table] = s
	}
	return out
}

// Two tenants share one database, one app and the same patient and resource
// ids. Tenant A's callers, in every role, drive every endpoint of the
// registry against tenant B's ids, and nothing of B is read or changed.
func TestSecurityLeakAcrossTenants(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	b := h.addTenant("clinic-b")
	ctx := context.Background()

	intA := h.token("integration", "system/Subscription.c")
	intB := mint(t, b.idp, "user-integration", "integration", "system/Subscription.c", nil)
	bIntake := map[string]string{}
	for _, id := range leakScenarios {
		h.postRefAs(intA, h.refs[id])
		bIntake[id] = h.postRefAs(intB, b.refs[id])
	}
	for _, id := range leakScenarios {
		h.waitDecidedIn(tenantID, h.refs[id])
		h.waitDecidedIn(b.id, b.refs[id])
	}
	h.waitFor("B's escalations delivered", func() bool {
		return len(h.strings1(`SELECT id::text FROM outbox WHERE tenant_id = $1 AND status <> 'delivered'`, b.id)) == 0 && b.hookCount() >= 2
	})
	bPatients := h.strings1(`SELECT DISTINCT patient_ref FROM review_items WHERE tenant_id = $1 AND patient_ref <> ''`, b.id)
	if len(bPatients) == 0 {
		t.Fatal("tenant B has no patients in its queue")
	}
	// B's own physician breaks the glass once, so B has a grant to look for.
	physB := mint(t, b.idp, "user-physician", "physician", clinicianScopes, nil)
	if r := h.call("POST", "/api/v1/break-glass", physB, []byte(`{"patient":"`+bPatients[0]+`","reason":"tenant B emergency review"}`), nil); r.status != http.StatusCreated {
		t.Fatalf("B's break-glass: %d %s", r.status, r.body)
	}

	aItems := h.strings1(`SELECT id::text FROM review_items WHERE tenant_id = $1`, tenantID)
	bItems := h.strings1(`SELECT id::text FROM review_items WHERE tenant_id = $1`, b.id)
	bDecisions := h.strings1(`SELECT id::text FROM decisions WHERE tenant_id = $1`, b.id)
	bGrants := h.strings1(`SELECT id::text FROM break_glass_grants WHERE tenant_id = $1`, b.id)
	bAudit := h.strings1(`SELECT id::text FROM audit_events WHERE tenant_id = $1`, b.id)
	aPatients := h.strings1(`SELECT DISTINCT patient_ref FROM review_items WHERE tenant_id = $1`, tenantID)
	if len(bItems) != len(leakScenarios) || len(aItems) != len(leakScenarios) || len(bDecisions) != len(leakScenarios) {
		t.Fatalf("items A=%d B=%d, decisions B=%d; want %d each", len(aItems), len(bItems), len(bDecisions), len(leakScenarios))
	}
	if !slices.Contains(aPatients, bPatients[0]) {
		t.Fatalf("the tenants do not share patient ids (A %v, B %v): the test would prove less than it claims", aPatients, bPatients)
	}
	bIDs := slices.Concat(bItems, bDecisions, bGrants, bAudit, slices.Collect(maps.Values(bIntake)))

	sub := func(role string) string { return "attacker-" + role }
	tok := map[string]string{
		"physician":       mint(t, h.idp, sub("physician"), "physician", clinicianScopes, nil),
		"nurse":           mint(t, h.idp, sub("nurse"), "nurse", clinicianScopes, nil),
		"triage_nurse":    mint(t, h.idp, sub("triage_nurse"), "triage_nurse", clinicianScopes, nil),
		"front_desk":      mint(t, h.idp, sub("front_desk"), "front_desk", "user/Task.rs", nil),
		"quality_auditor": mint(t, h.idp, sub("quality_auditor"), "quality_auditor", "user/Task.rs user/AuditEvent.rs", nil),
		"privacy_officer": mint(t, h.idp, sub("privacy_officer"), "privacy_officer", "user/AuditEvent.rs", nil),
		"integration":     mint(t, h.idp, sub("integration"), "integration", "system/Subscription.c", nil),
	}
	clinical := []string{"physician", "nurse", "triage_nurse"}
	readers := []string{"physician", "nurse", "triage_nurse", "front_desk", "quality_auditor"}

	// A's clinicians hold break-the-glass grants (in A) for every patient id B
	// has: a grant in one tenant must open nothing in another.
	for _, role := range clinical {
		for _, p := range bPatients {
			if r := h.call("POST", "/api/v1/break-glass", tok[role], []byte(`{"patient":"`+p+`","reason":"cross-tenant probe by tenant A"}`), nil); r.status != http.StatusCreated {
				t.Fatalf("A's %s break-glass: %d %s", role, r.status, r.body)
			}
		}
	}
	before := h.tenantRows(b.id)

	noB := func(t *testing.T, what string, r response) {
		t.Helper()
		for _, id := range bIDs {
			if strings.Contains(string(r.body), id) {
				t.Errorf("%s: response names tenant B's id %s: %s", what, id, r.body)
			}
		}
		if strings.Contains(string(r.body), b.id) {
			t.Errorf("%s: response names tenant B: %s", what, r.body)
		}
	}
	notFound := func(t *testing.T, what string, r response) {
		t.Helper()
		if r.status != http.StatusNotFound && r.status != http.StatusForbidden {
			t.Errorf("%s: status %d, want 404 or 403: %s", what, r.status, r.body)
		}
		noB(t, what, r)
	}
	onItems := func(method, suffix, body string, roles []string) func(t *testing.T) {
		return func(t *testing.T) {
			for _, role := range roles {
				for _, id := range bItems {
					r := h.call(method, "/api/v1/review-items/"+id+suffix, tok[role], []byte(body), nil)
					notFound(t, role+" "+method+" item"+suffix, r)
				}
			}
		}
	}
	cases := map[string]func(t *testing.T){
		"healthz": func(t *testing.T) { noB(t, "healthz", h.call("GET", "/healthz", "", nil, nil)) },
		"readyz":  func(t *testing.T) { noB(t, "readyz", h.call("GET", "/readyz", "", nil, nil)) },
		"intake": func(t *testing.T) {
			// The same reference B posted: A gets (or dedupes to) its own intake event, never B's.
			body, _ := json.Marshal(map[string]string{"reference": b.refs["scn-k-critical"].String()})
			r := h.call("POST", "/fhir/r4/intake", tok["integration"], body, nil)
			if r.status != http.StatusAccepted {
				t.Fatalf("A's intake: %d %s", r.status, r.body)
			}
			noB(t, "intake", r)
		},
		"review.list": func(t *testing.T) {
			for _, role := range readers {
				for _, q := range []string{"", "?patient=" + bPatients[0], "?limit=500&status=open"} {
					r := h.call("GET", "/api/v1/review-items"+q, tok[role], nil, nil)
					if r.status != http.StatusOK {
						t.Fatalf("%s list%s: %d %s", role, q, r.status, r.body)
					}
					noB(t, role+" list"+q, r)
					var out struct {
						Items []struct {
							ID string `json:"id"`
						} `json:"items"`
					}
					if err := json.Unmarshal(r.body, &out); err != nil {
						t.Fatal(err)
					}
					for _, it := range out.Items {
						if !slices.Contains(aItems, it.ID) {
							t.Errorf("%s list%s: item %s is not tenant A's", role, q, it.ID)
						}
					}
				}
			}
		},
		"review.read":    onItems("GET", "", "", readers),
		"review.approve": onItems("POST", "/approve", `{"release_reply":true}`, clinical),
		"review.edit":    onItems("POST", "/edit", `{"reason_code":"clinical-judgement","priority":"routine"}`, clinical),
		"review.reject":  onItems("POST", "/reject", `{"reason_code":"not-clinical"}`, clinical),
		"review.ack":     onItems("POST", "/ack", "", clinical),
		"decision.explain": func(t *testing.T) {
			for _, role := range []string{"physician", "nurse", "triage_nurse", "quality_auditor"} {
				for _, id := range slices.Concat(bDecisions, bItems) {
					notFound(t, role+" explain", h.call("GET", "/api/v1/decisions/"+id, tok[role], nil, nil))
				}
			}
		},
		"audit.search": func(t *testing.T) {
			queries := []string{"?limit=1000", "?patient=" + bPatients[0], "?user=user-physician", "?verb=breakglass.grant"}
			for _, id := range bDecisions {
				queries = append(queries, "?decision="+id)
			}
			for _, role := range []string{"quality_auditor", "privacy_officer"} {
				for _, q := range queries {
					r := h.call("GET", "/api/v1/audit/events"+q, tok[role], nil, nil)
					if r.status != http.StatusOK {
						t.Fatalf("%s audit%s: %d %s", role, q, r.status, r.body)
					}
					noB(t, role+" audit"+q, r)
					var out struct {
						Events []struct {
							TenantID string `json:"tenant_id"`
						} `json:"events"`
					}
					if err := json.Unmarshal(r.body, &out); err != nil {
						t.Fatal(err)
					}
					for _, e := range out.Events {
						if e.TenantID != tenantID {
							t.Errorf("%s audit%s: event of tenant %s", role, q, e.TenantID)
						}
					}
				}
			}
		},
		"breakglass.request": func(t *testing.T) {
			// Done above for every clinical role and every B patient id; each grant landed in A.
			for _, g := range h.strings1(`SELECT tenant_id FROM break_glass_grants WHERE subject LIKE 'attacker-%'`) {
				if g != tenantID {
					t.Errorf("A's break-glass grant stored in tenant %s", g)
				}
			}
			if n := len(h.strings1(`SELECT id::text FROM break_glass_grants WHERE subject LIKE 'attacker-%'`)); n != len(clinical)*len(bPatients) {
				t.Errorf("%d grants for A's clinicians, want %d", n, len(clinical)*len(bPatients))
			}
		},
		"audit.export": func(t *testing.T) {
			for _, q := range []string{"", "?format=fhir", "?format=fhir-ndjson", "?patient=" + bPatients[0]} {
				r := h.call("GET", "/api/v1/audit/export"+q, tok["privacy_officer"], nil, nil)
				if r.status != http.StatusOK {
					t.Fatalf("export%s: %d %s", q, r.status, r.body)
				}
				noB(t, "audit export"+q, r)
				if strings.Contains(string(r.body), `"`+b.id+`"`) {
					t.Errorf("export%s names tenant %s", q, b.id)
				}
			}
		},
		"audit.alerts": func(t *testing.T) {
			r := h.call("GET", "/api/v1/audit/alerts?since=2000-01-01T00:00:00Z", tok["privacy_officer"], nil, nil)
			if r.status != http.StatusOK {
				t.Fatalf("alerts: %d %s", r.status, r.body)
			}
			noB(t, "audit alerts", r)
		},
		"audit.disclosures": func(t *testing.T) {
			for _, p := range bPatients {
				r := h.call("GET", "/api/v1/audit/disclosures?patient="+p, tok["privacy_officer"], nil, nil)
				if r.status != http.StatusOK {
					t.Fatalf("disclosures: %d %s", r.status, r.body)
				}
				noB(t, "audit disclosures", r)
			}
		},
		"rules.publish":  rulesLeakCase(h, b, "rules.publish"),
		"rules.activate": rulesLeakCase(h, b, "rules.activate"),
		"rules.list":     rulesLeakCase(h, b, "rules.list"),
		"breakglass.list": func(t *testing.T) {
			r := h.call("GET", "/api/v1/break-glass?since=2000-01-01T00:00:00Z", tok["privacy_officer"], nil, nil)
			if r.status != http.StatusOK {
				t.Fatalf("list grants: %d %s", r.status, r.body)
			}
			noB(t, "breakglass.list", r)
			if strings.Contains(string(r.body), "tenant B emergency review") {
				t.Error("B's break-glass reason is listed to A's privacy officer")
			}
		},
	}

	for _, ep := range h.app.API.Endpoints() {
		run, ok := cases[ep.Name]
		if !ok {
			t.Errorf("endpoint %s (%s %s) has no cross-tenant case: add one to TestSecurityLeakAcrossTenants", ep.Name, ep.Method, ep.Pattern)
			continue
		}
		t.Run(ep.Name, run)
		if ep.Public {
			continue
		}
		// The same endpoint with A's token naming tenant B, by header or by claim: refused and audited.
		t.Run(ep.Name+" naming tenant B", func(t *testing.T) {
			path := strings.ReplaceAll(ep.Pattern, "{id}", bItems[0])
			if ep.Name == "decision.explain" {
				path = strings.ReplaceAll(ep.Pattern, "{id}", bDecisions[0])
			}
			role := map[string]string{"intake": "integration", "audit.search": "privacy_officer", "breakglass.list": "privacy_officer",
				"audit.export": "privacy_officer", "audit.alerts": "privacy_officer", "audit.disclosures": "privacy_officer"}[ep.Name]
			if role == "" {
				role = "physician"
			}
			claimTok := mint(t, h.idp, sub(role), role, scopesFor(role), map[string]any{"tenant": b.id})
			for name, rq := range map[string]struct {
				tok    string
				header map[string]string
			}{
				"header":           {tok[role], map[string]string{"Vigil-Tenant": b.id}},
				"claim":            {claimTok, nil},
				"claim and header": {claimTok, map[string]string{"Vigil-Tenant": b.id}},
			} {
				r := h.call(ep.Method, path, rq.tok, []byte(`{}`), rq.header)
				if r.status != http.StatusForbidden && r.status != http.StatusUnauthorized {
					t.Errorf("%s naming B by %s: status %d: %s", ep.Name, name, r.status, r.body)
				}
				noB(t, ep.Name+" by "+name, r)
				if got := h.auditOf(r.requestID); len(got) != 1 || !strings.HasPrefix(got[0], "system denied ") {
					t.Errorf("%s naming B by %s: audit %v, want one denied event in the system chain", ep.Name, name, got)
				}
			}
		})
	}
	for name := range cases {
		if !slices.ContainsFunc(h.app.API.Endpoints(), func(e api.Endpoint) bool { return e.Name == name }) {
			t.Errorf("case %s names no endpoint of the registry", name)
		}
	}

	t.Run("B's token cannot name tenant A", func(t *testing.T) {
		for _, name := range []string{tenantID, "system", "no-such-tenant"} {
			r := h.call("GET", "/api/v1/review-items", physB, nil, map[string]string{"Vigil-Tenant": name})
			if r.status != http.StatusForbidden {
				t.Errorf("B's token naming %s: status %d: %s", name, r.status, r.body)
			}
		}
	})

	t.Run("a triage job for A cannot reach B's intake", func(t *testing.T) {
		aDecisions := len(h.strings1(`SELECT id::text FROM decisions WHERE tenant_id = $1`, tenantID))
		_, err := h.app.Pipeline.Process(ctx, tenantID, bIntake["scn-k-critical"])
		if !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Process(A, B's intake) = %v, want store.ErrNotFound", err)
		}
		// Through River: the worker cancels the job instead of retrying it.
		res, err := h.app.Runner.Client.Insert(ctx, workers.TriageArgs{TenantID: tenantID, IntakeEventID: bIntake["scn-msg-chest"]}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.waitFor("the cross-tenant job to end", func() bool {
			st := h.strings1(`SELECT state::text FROM river.river_job WHERE id = $1`, res.Job.ID)
			return len(st) == 1 && (st[0] == "cancelled" || st[0] == "completed" || st[0] == "discarded")
		})
		if st := h.strings1(`SELECT state::text FROM river.river_job WHERE id = $1`, res.Job.ID); st[0] != "cancelled" {
			t.Errorf("cross-tenant job state %s, want cancelled", st[0])
		}
		if n := len(h.strings1(`SELECT id::text FROM decisions WHERE tenant_id = $1`, tenantID)); n != aDecisions {
			t.Errorf("A has %d decisions after processing B's intake ids, had %d", n, aDecisions)
		}
	})

	t.Run("a delivery job for A cannot send B's escalation", func(t *testing.T) {
		hooksA, hooksB := h.hookCount(), b.hookCount()
		outbox := h.strings1(`SELECT id::text FROM outbox WHERE tenant_id = $1 LIMIT 1`, b.id)[0]
		res, err := h.app.Runner.Client.Insert(ctx, workers.DeliverArgs{TenantID: tenantID, OutboxID: outbox}, nil)
		if err != nil {
			t.Fatal(err)
		}
		h.waitFor("the cross-tenant delivery job to end", func() bool {
			st := h.strings1(`SELECT state::text FROM river.river_job WHERE id = $1`, res.Job.ID)
			return len(st) == 1 && (st[0] == "cancelled" || st[0] == "completed" || st[0] == "discarded")
		})
		if st := h.strings1(`SELECT state::text FROM river.river_job WHERE id = $1`, res.Job.ID); st[0] != "cancelled" {
			t.Errorf("cross-tenant delivery job state %s, want cancelled", st[0])
		}
		if h.hookCount() != hooksA || b.hookCount() != hooksB {
			t.Errorf("a notifier was called for another tenant's outbox message (A %d→%d, B %d→%d)", hooksA, h.hookCount(), hooksB, b.hookCount())
		}
	})

	after := h.tenantRows(b.id)
	for _, table := range tenantTables {
		if before[table] != after[table] {
			t.Errorf("tenant B's %s changed while tenant A's callers probed it", table)
		}
	}
	if got := h.strings1(`SELECT verb FROM audit_events WHERE tenant_id = $1 AND actor LIKE 'attacker-%'`, b.id); len(got) > 0 {
		t.Errorf("A's callers appear in B's audit trail: %v", got)
	}
}

func scopesFor(role string) string {
	switch role {
	case "integration":
		return "system/Subscription.c"
	case "privacy_officer":
		return "user/AuditEvent.rs"
	}
	return clinicianScopes
}
