package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	fhirmodels "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

const auditorScopes = "user/AuditEvent.rs"

// A day's export validates as FHIR R4 AuditEvent JSON (decoded with the strict
// samply models), and the export itself is audited.
func TestAuditExportIsFHIRAuditEvent(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.postRef(h.refs["scn-k-critical"])
	h.waitDecided(h.refs["scn-k-critical"])
	po := h.token("privacy_officer", auditorScopes)
	day := time.Now().UTC().Truncate(24 * time.Hour)
	q := "?format=fhir&from=" + day.Format(time.RFC3339) + "&to=" + day.Add(24*time.Hour).Format(time.RFC3339)
	status, body := h.do("GET", "/api/v1/audit/export"+q, po, nil)
	if status != 200 {
		t.Fatalf("export: %d %s", status, body)
	}
	bundle, err := fhirmodels.UnmarshalBundle(body)
	if err != nil {
		t.Fatalf("export is not a FHIR Bundle: %v", err)
	}
	if len(bundle.Entry) < 3 {
		t.Fatalf("%d AuditEvents exported", len(bundle.Entry))
	}
	verbs := map[string]bool{}
	for i, e := range bundle.Entry {
		ae, err := fhirmodels.UnmarshalAuditEvent(e.Resource)
		if err != nil {
			t.Fatalf("entry %d is not a valid AuditEvent: %v", i, err)
		}
		if len(ae.Agent) == 0 || ae.Recorded == "" {
			t.Fatalf("entry %d lacks agent or recorded", i)
		}
		for _, s := range ae.Subtype {
			if s.Code != nil {
				verbs[*s.Code] = true
			}
		}
	}
	if !verbs["decision.escalate"] && !strings.Contains(string(body), "decision.escalate") {
		t.Errorf("the escalation is not in the export")
	}
	if n := h.count(`SELECT count(*) FROM audit_events WHERE verb = 'audit.export'`); n != 1 {
		t.Fatalf("%d audit.export events, want 1", n)
	}
	// Only the privacy officer may export; the quality auditor may search.
	if status, _ := h.do("GET", "/api/v1/audit/export", h.token("quality_auditor", auditorScopes), nil); status != http.StatusForbidden {
		t.Fatalf("auditor export: %d, want 403", status)
	}
	if status, _ := h.do("GET", "/api/v1/audit/events?verb=decision.escalate", h.token("quality_auditor", auditorScopes), nil); status != 200 {
		t.Fatalf("auditor search: %d", status)
	}
}

// Break-the-glass access shows in the patient's accounting of disclosures.
func TestDisclosuresListBreakGlassAccess(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ref := h.refs["scn-msg-chest"]
	h.postRef(ref)
	h.waitDecided(ref)
	patient := "Patient/beaf00da-c197-4e72-8b27-7ee1131348f1"
	doc := h.token("physician", clinicianScopes)
	status, body := h.do("POST", "/api/v1/break-glass", doc, []byte(`{"patient":"`+patient+`","reason":"unconscious patient in ED, need history"}`))
	if status != http.StatusCreated {
		t.Fatalf("break-glass: %d %s", status, body)
	}
	item := h.itemFor(doc, "ESCALATED")
	if status, body := h.do("GET", "/api/v1/review-items/"+item.ID, doc, nil); status != 200 {
		t.Fatalf("read: %d %s", status, body)
	}
	status, body = h.do("GET", "/api/v1/audit/disclosures?patient="+patient, h.token("privacy_officer", auditorScopes), nil)
	if status != 200 {
		t.Fatalf("disclosures: %d %s", status, body)
	}
	var out struct {
		Disclosures []struct {
			Actor string
			Verb  string
		} `json:"disclosures"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, d := range out.Disclosures {
		if d.Actor == "user-physician" {
			found = true
		}
	}
	if !found {
		t.Fatalf("the physician outside the care team is not in the disclosures: %s", body)
	}
	if n := h.count(`SELECT count(*) FROM audit_events WHERE verb = 'breakglass.grant' AND detail->>'severity' = 'high'`); n != 1 {
		t.Fatalf("%d high-severity break-glass events", n)
	}
	status, body = h.do("GET", "/api/v1/audit/alerts", h.token("privacy_officer", auditorScopes), nil)
	if status != 200 || !strings.Contains(string(body), "break_glass_grant") {
		t.Fatalf("alerts after a break-the-glass grant: %d %s", status, body)
	}
}
