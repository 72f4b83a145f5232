package app_test

import (
	"encoding/json"
	"io/fs"
	"log"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/vigil-health/vigil/internal/fixtures"
	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/llm/llmtest"
)

// phiStrings lists what must never reach a process log: every identifier and
// demographic value of the Synthea patients (ids, names, birth dates,
// identifiers, phone numbers, addresses) and every scenario message text.
func phiStrings(t *testing.T) []string {
	t.Helper()
	var out []string
	add := func(s string) {
		if s = strings.TrimSpace(s); len(s) >= 4 {
			out = append(out, s)
		}
	}
	names, err := fs.Glob(fixtures.Synthea(), "*.json")
	if err != nil || len(names) == 0 {
		t.Fatalf("synthea fixtures: %v", err)
	}
	for _, n := range names {
		b, err := fs.ReadFile(fixtures.Synthea(), n)
		if err != nil {
			t.Fatal(err)
		}
		var bundle struct {
			Entry []struct {
				Resource json.RawMessage `json:"resource"`
			} `json:"entry"`
		}
		if err := json.Unmarshal(b, &bundle); err != nil {
			t.Fatal(err)
		}
		for _, e := range bundle.Entry {
			var probe struct {
				ResourceType string `json:"resourceType"`
			}
			if json.Unmarshal(e.Resource, &probe) != nil || probe.ResourceType != "Patient" {
				continue
			}
			var r struct {
				ID        string `json:"id"`
				BirthDate string `json:"birthDate"`
				Name      []struct {
					Family string   `json:"family"`
					Given  []string `json:"given"`
				} `json:"name"`
				Identifier []struct {
					Value string `json:"value"`
				} `json:"identifier"`
				Telecom []struct {
					Value string `json:"value"`
				} `json:"telecom"`
				Address []struct {
					Line []string `json:"line"`
				} `json:"address"`
			}
			if err := json.Unmarshal(e.Resource, &r); err != nil {
				t.Fatal(err)
			}
			add(r.ID)
			add(r.BirthDate)
			for _, nm := range r.Name {
				add(nm.Family)
				for _, g := range nm.Given {
					add(g)
				}
			}
			for _, id := range r.Identifier {
				add(id.Value)
			}
			for _, tc := range r.Telecom {
				add(tc.Value)
			}
			for _, a := range r.Address {
				for _, l := range a.Line {
					add(l)
				}
			}
		}
	}
	err = fs.WalkDir(fixtures.Scenarios(), ".", func(p string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fixtures.Scenarios(), p)
		if err != nil {
			return err
		}
		var c struct {
			Payload []struct {
				ContentString string `json:"contentString"`
			} `json:"payload"`
		}
		if err := json.Unmarshal(b, &c); err != nil {
			return err
		}
		for _, pl := range c.Payload {
			add(pl.ContentString)
			// Fragments too: a log line quoting part of a message is as bad.
			for _, sentence := range regexp.MustCompile(`[.?!,]`).Split(pl.ContentString, -1) {
				if len(strings.Fields(sentence)) >= 3 {
					add(sentence)
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return append(out, "hydrochlorothiazide", "crushing chest", "left arm")
}

// clinicalValue matches the scenario lab values as numbers (not inside other numbers).
var clinicalValue = regexp.MustCompile(`(^|[^0-9.])(6\.9|8\.9)([^0-9]|$)`)

// Everything the process writes while it handles the fixture patients end to
// end (intake, workers, LLM drafting, review reads and actions, refusals and
// bad input), through its logger (River logs there too) and the HTTP
// server's error log, holds none of their identifiers or values.
func TestSecurityNoPHIInLogs(t *testing.T) {
	t.Parallel()
	logger, logs := captureLogger()
	llmSrv := llmtest.New(t, llmtest.Faithful("pharmacy"))
	d, err := llm.NewOpenAI(llm.OpenAIConfig{BaseURL: llmSrv.URL, Model: "test-model", AllowInsecureLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	// The first drafting call panics (River recovers, logs and retries): the
	// panic path's log lines are checked too.
	crash := &crashOnce{inner: fixedDrafter{d}}
	h := newHarness(t, harnessOpts{logger: logger, llmURL: llmSrv.URL, drafters: crash})
	// Serve the API with the server's own error log captured as well.
	srv := httptest.NewUnstartedServer(h.app.API)
	srv.Config.ErrorLog = log.New(logs, "http: ", 0)
	srv.Start()
	t.Cleanup(srv.Close)
	h.api = srv

	phys := h.token("physician", clinicianScopes)
	nurse := h.token("nurse", clinicianScopes)
	privacy := h.token("privacy_officer", "user/AuditEvent.rs")
	for _, id := range leakScenarios {
		h.postRef(h.refs[id])
	}
	for _, id := range leakScenarios {
		h.waitDecided(h.refs[id])
	}
	h.waitFor("escalations delivered", func() bool { return h.hookCount() >= 2 })

	patient := h.strings1(`SELECT patient_ref FROM review_items WHERE tenant_id = $1 LIMIT 1`, tenantID)[0]
	chestMsg := "Having crushing chest pressure since this morning and my left arm is numb."
	requests := []struct {
		method, path, token, body string
	}{
		{"GET", "/api/v1/review-items", nurse, ""},
		{"GET", "/api/v1/review-items?patient=" + url.QueryEscape(patient), nurse, ""},
		{"GET", "/api/v1/audit/events?patient=" + url.QueryEscape(patient), privacy, ""},
		{"GET", "/api/v1/break-glass", privacy, ""},
		// Bad input quoting PHI: refused without echoing it to the log.
		{"POST", "/fhir/r4/intake", h.integrationToken(), `{"resourceType":"Communication","payload":[{"contentString":"` + chestMsg + `"}]}`},
		{"POST", "/fhir/r4/intake", h.integrationToken(), `{"reference":"Observation/scn-k-critical/_history/1","note":"Alfreda Wyman 1980-10-28"}`},
		{"POST", "/fhir/r4/intake", h.integrationToken(), `{"reference":"Patient/Alfreda Wyman 999-98-7415"}`},
		{"GET", "/api/v1/review-items/Alfreda%20Wyman%20999-98-7415", nurse, ""},
		{"GET", "/api/v1/decisions/999-98-7415", nurse, ""},
		{"GET", "/api/v1/audit/events?from=1980-10-28+Wyman", privacy, ""},
		{"POST", "/api/v1/break-glass", phys, `{"patient":"Patient/Alfreda Wyman","reason":"Alfreda Wyman 1980-10-28 chest pain"}`},
		{"POST", "/api/v1/break-glass", phys, `{"patient":"` + patient + `","reason":"Reviewing Alfreda Wyman, born 1980-10-28, potassium 6.9"}`},
		{"POST", "/api/v1/review-items/Alfreda%20Wyman/approve", phys, `{"reply":"Dear Alfreda Wyman, your potassium of 6.9 needs attention."}`},
	}
	for _, id := range h.strings1(`SELECT id::text FROM review_items WHERE tenant_id = $1`, tenantID) {
		requests = append(requests, struct{ method, path, token, body string }{"GET", "/api/v1/review-items/" + id, phys, ""})
	}
	for _, id := range h.strings1(`SELECT id::text FROM decisions WHERE tenant_id = $1`, tenantID) {
		requests = append(requests, struct{ method, path, token, body string }{"GET", "/api/v1/decisions/" + id, phys, ""})
	}
	item := func(scenario string) string { return h.itemID(scenario) }
	requests = append(requests,
		struct{ method, path, token, body string }{"POST", "/api/v1/review-items/" + item("scn-k-critical") + "/ack", phys, ""},
		struct{ method, path, token, body string }{"POST", "/api/v1/review-items/" + item("scn-hba1c-high") + "/edit", nurse,
			`{"reason_code":"clinical-judgement","reply":"Dear Marcos Delagarza, your HbA1c of 8.9 is high.","release_reply":true}`},
		struct{ method, path, token, body string }{"POST", "/api/v1/review-items/" + item("scn-hba1c-high") + "/edit", phys,
			`{"reason_code":"clinical-judgement","reply":"Dear Marcos Delagarza, your HbA1c of 8.9 is high.","release_reply":true}`},
		struct{ method, path, token, body string }{"POST", "/api/v1/review-items/" + item("scn-msg-refill") + "/approve", phys, `{"release_reply":true}`},
		struct{ method, path, token, body string }{"POST", "/api/v1/review-items/" + item("scn-msg-ambiguous") + "/reject", phys,
			`{"reason_code":"Cameron Greenfelder feeling off"}`},
		struct{ method, path, token, body string }{"POST", "/api/v1/review-items/" + item("scn-msg-chest") + "/edit", phys,
			`{"priority":"routine","reason_code":"patient-contacted","reply":"` + chestMsg + `","bogus":"Matt Mosciski"}`},
	)
	statuses := map[int]int{}
	for _, rq := range requests {
		r := h.call(rq.method, rq.path, rq.token, []byte(rq.body), nil)
		statuses[r.status]++
	}
	if statuses[200] == 0 || statuses[400] == 0 || statuses[404] == 0 {
		t.Fatalf("the requests did not exercise reads and refusals: statuses %v", statuses)
	}

	if !crash.crashed.Load() {
		t.Fatal("the worker panic was never injected")
	}
	out := logs.String()
	for _, want := range []string{"decision committed", `"route"`, "panic"} {
		if !strings.Contains(out, want) {
			t.Fatalf("captured log lacks %q: the capture is not seeing the process", want)
		}
	}
	for _, s := range phiStrings(t) {
		if strings.Contains(out, s) {
			t.Errorf("process log holds PHI %q:\n%s", s, linesWith(out, s))
		}
	}
	if m := clinicalValue.FindString(out); m != "" {
		t.Errorf("process log holds a lab value %q:\n%s", m, linesWith(out, strings.Trim(m, `" ,:`)))
	}
}

func linesWith(out, s string) string {
	var b strings.Builder
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, s) {
			b.WriteString("  " + l + "\n")
		}
	}
	return b.String()
}
