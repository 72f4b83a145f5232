package app_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
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
