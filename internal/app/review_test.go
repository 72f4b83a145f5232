package app_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/access"
	"github.com/vigil-health/vigil/store"
)

const clinicianScopes = "user/Task.cruds user/Patient.r"

type itemJSON struct {
	ID            string   `json:"id"`
	Disposition   string   `json:"disposition"`
	Priority      string   `json:"priority"`
	Status        string   `json:"status"`
	Flags         []string `json:"flags"`
	AckRequired   bool     `json:"ack_required"`
	AckedBy       string   `json:"acked_by"`
	DecisionID    string   `json:"decision_id"`
	PatientRef    string   `json:"patient_ref"`
	ReplyReleased bool     `json:"reply_released"`
}

func (h *harness) items(token, query string) []itemJSON {
	h.t.Helper()
	status, body := h.do("GET", "/api/v1/review-items"+query, token, nil)
	if status != http.StatusOK {
		h.t.Fatalf("list items: %d %s", status, body)
	}
	var out struct {
		Items []itemJSON `json:"items"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		h.t.Fatal(err)
	}
	return out.Items
}

func (h *harness) itemFor(token, disposition string) itemJSON {
	h.t.Helper()
	its := h.items(token, "?disposition="+disposition)
	if len(its) != 1 {
		h.t.Fatalf("%d %s items, want 1", len(its), disposition)
	}
	return its[0]
}

func TestReviewQueueAPI(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	for _, id := range []string{"scn-k-critical", "scn-hba1c-high", "scn-msg-ambiguous"} {
		h.postRef(h.refs[id])
	}
	for _, id := range []string{"scn-k-critical", "scn-hba1c-high", "scn-msg-ambiguous"} {
		h.waitDecided(h.refs[id])
	}
	physician := h.token("physician", clinicianScopes)
	nurse := h.token("nurse", clinicianScopes)

	t.Run("no token is 401 with a challenge and nothing is read", func(t *testing.T) {
		req, _ := http.NewRequest("GET", h.api.URL+"/api/v1/review-items", nil)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 || !strings.HasPrefix(resp.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Fatalf("status %d, WWW-Authenticate %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("list is most urgent first and filters by disposition", func(t *testing.T) {
		all := h.items(nurse, "")
		if len(all) != 3 || all[0].Priority != "stat" {
			t.Fatalf("items %+v", all)
		}
		if its := h.items(nurse, "?disposition=HELD"); len(its) != 1 || !contains(its[0].Flags, "physician_hold") {
			t.Fatalf("HELD filter: %+v", its)
		}
		if status, body := h.do("GET", "/api/v1/review-items?disposition=BOGUS", nurse, nil); status != 400 {
			t.Fatalf("bogus filter: %d %s", status, body)
		}
	})

	t.Run("read shows the why", func(t *testing.T) {
		esc := h.itemFor(nurse, "ESCALATED")
		status, body := h.do("GET", "/api/v1/review-items/"+esc.ID, nurse, nil)
		if status != 200 || !strings.Contains(string(body), "critical-potassium-high") || !strings.Contains(string(body), "6.9") {
			t.Fatalf("read: %d %s", status, body)
		}
	})

	t.Run("a held reply is released only by a physician", func(t *testing.T) {
		held := h.itemFor(nurse, "HELD")
		edit := `{"reason_code":"clinical-judgement","reply":"Your HbA1c result is ready; your doctor will call you.","release_reply":true}`
		status, body := h.do("POST", "/api/v1/review-items/"+held.ID+"/edit", nurse, []byte(edit))
		if status != http.StatusForbidden || !strings.Contains(string(body), "physician") {
			t.Fatalf("nurse release: %d %s", status, body)
		}
		status, body = h.do("POST", "/api/v1/review-items/"+held.ID+"/edit", physician, []byte(edit))
		if status != 200 || !strings.Contains(string(body), "released_reply") {
			t.Fatalf("physician release: %d %s", status, body)
		}
		status, _ = h.do("POST", "/api/v1/review-items/"+held.ID+"/approve", physician, nil)
		if status != http.StatusConflict {
			t.Fatalf("second action on a closed item: %d, want 409", status)
		}
	})

	t.Run("escalations are acknowledged; others cannot be", func(t *testing.T) {
		esc := h.itemFor(nurse, "ESCALATED")
		status, body := h.do("POST", "/api/v1/review-items/"+esc.ID+"/ack", physician, nil)
		if status != 200 || !strings.Contains(string(body), "user-physician") {
			t.Fatalf("ack: %d %s", status, body)
		}
		mt := h.itemFor(nurse, "MANUAL_TRIAGE")
		if status, _ := h.do("POST", "/api/v1/review-items/"+mt.ID+"/ack", physician, nil); status != http.StatusConflict {
			t.Fatalf("ack of a non-escalation: %d, want 409", status)
		}
	})

	t.Run("a clinician may lower priority only with a reason code", func(t *testing.T) {
		esc := h.itemFor(nurse, "ESCALATED")
		status, body := h.do("POST", "/api/v1/review-items/"+esc.ID+"/edit", physician, []byte(`{"priority":"urgent"}`))
		if status != 400 || !strings.Contains(string(body), "reason code") {
			t.Fatalf("lowering without reason: %d %s", status, body)
		}
		status, body = h.do("POST", "/api/v1/review-items/"+esc.ID+"/edit", physician, []byte(`{"priority":"urgent","reason_code":"patient-contacted"}`))
		if status != 200 || !strings.Contains(string(body), `"urgent"`) {
			t.Fatalf("lowering with reason: %d %s", status, body)
		}
		if n := h.count(`SELECT count(*) FROM audit_events WHERE verb = 'review.edit' AND (detail->>'lowered')::bool`); n != 1 {
			t.Fatalf("%d audited lowerings, want 1", n)
		}
	})

	t.Run("every read and action is audited", func(t *testing.T) {
		for verb, min := range map[string]int{"review.list": 3, "review.read": 1, "review.edit": 2, "escalation.acknowledge": 1, "auth.token_rejected": 0} {
			if n := h.count(`SELECT count(*) FROM audit_events WHERE verb = $1`, verb); n < min {
				t.Errorf("%d %s audit events, want ≥ %d", n, verb, min)
			}
		}
		// The nurse's refused release is audited as a denial.
		if n := h.count(`SELECT count(*) FROM audit_events WHERE outcome = 'denied' AND actor = 'user-nurse'`); n < 1 {
			t.Errorf("refused release not audited")
		}
	})
}

func TestHealthAndReadiness(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	for _, path := range []string{"/healthz", "/readyz"} {
		if status, body := h.do("GET", path, "", nil); status != 200 {
			t.Fatalf("%s: %d %s", path, status, body)
		}
	}
	h.fhirSrv.Close() // the FHIR server goes away: not ready
	if status, body := h.do("GET", "/readyz", "", nil); status != http.StatusServiceUnavailable || !strings.Contains(string(body), "fhir") {
		t.Fatalf("readyz with FHIR down: %d %s", status, body)
	}
}

// An item whose record carries a 42 CFR Part 2 label is hidden from clinicians
// outside the patient's care team (not listed, 403 on read), and visible once
// they are on it.
func TestSensitiveItemNeedsCareTeam(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	raw := []byte(`{"resourceType":"Communication","id":"sud-msg","status":"completed",
		"meta":{"security":[{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"ETH"}]},
		"subject":{"reference":"Patient/beaf00da-c197-4e72-8b27-7ee1131348f1"},
		"sender":{"reference":"Patient/beaf00da-c197-4e72-8b27-7ee1131348f1"},
		"sent":"2026-12-04T09:00:00Z","payload":[{"contentString":"Question about my counseling appointment next week."}]}`)
	r, err := h.fhir.Put(raw)
	if err != nil {
		t.Fatal(err)
	}
	h.postRef(r.Ref())
	h.waitDecided(r.Ref())
	nurse := h.token("nurse", clinicianScopes)
	if its := h.items(nurse, ""); len(its) != 0 {
		t.Fatalf("nurse outside the care team lists %d sensitive items", len(its))
	}
	var id string
	ctx := context.Background()
	if err := store.New(h.db.Owner).InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, `SELECT id::text FROM review_items`).Scan(&id)
	}); err != nil {
		t.Fatal(err)
	}
	if status, body := h.do("GET", "/api/v1/review-items/"+id, nurse, nil); status != http.StatusForbidden || strings.Contains(string(body), "counseling") {
		t.Fatalf("nurse read of a Part 2 item: %d %s", status, body)
	}
	if err := h.app.DB.InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		return access.AddCareTeamMember(ctx, tx, access.CareTeamMember{TenantID: tenantID, PatientRef: "Patient/beaf00da-c197-4e72-8b27-7ee1131348f1",
			Subject: "user-nurse", Role: access.RoleNurse, Since: time.Now().Add(-time.Hour), AddedBy: "test"})
	}); err != nil {
		t.Fatal(err)
	}
	if status, body := h.do("GET", "/api/v1/review-items/"+id, nurse, nil); status != 200 || !strings.Contains(string(body), "counseling") {
		t.Fatalf("care-team nurse read: %d %s", status, body)
	}
}
