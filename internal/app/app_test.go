package app_test

import (
	"context"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/llm/llmtest"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage"
)

// A critical value is escalated and committed while the LLM server hangs:
// the server only answers after the test has seen the committed ESCALATED
// decision from another connection.
func TestCriticalEscalatesWhileLLMHangs(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	srv := llmtest.New(t, llmtest.Fixed(llmtest.Hang(release)))
	h := newHarness(t, harnessOpts{llmURL: srv.URL})
	k := h.refs["scn-k-critical"]
	h.postRef(k)

	h.waitFor("committed escalation", func() bool {
		ds := h.decisionsFor(k)
		return len(ds) == 1 && ds[0].Disposition == "ESCALATED" && ds[0].Stage == triage.StageEscalated
	})
	if srv.Calls() == 0 {
		// The escalation must not wait for the model, but the model is still asked to draft afterwards.
		h.waitFor("the drafter's call", func() bool { return srv.Calls() > 0 })
	}
	h.waitFor("escalation delivered to the notifier", func() bool { return h.hookCount() >= 1 })
	close(release)
	d := h.waitDecided(k)
	if d.Disposition != "ESCALATED" || d.Priority != "stat" {
		t.Fatalf("final decision %+v, want ESCALATED stat", d)
	}
	if d.Revision < 2 {
		t.Fatalf("revision %d: the final decision should be a revision of the escalation", d.Revision)
	}
	if n := len(h.decisionsFor(k)); n != 1 {
		t.Fatalf("%d decisions for one trigger", n)
	}
}

func TestLLMFailuresGoToManualTriage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		handler  llmtest.Handler
		trigger  string
		wantFlag string
	}{
		{"garbage", llmtest.Fixed(llmtest.Garbage()), "scn-msg-refill", "llm_unavailable"},
		{"prose around JSON", llmtest.Fixed(llmtest.Answer("Sure! Here is my answer: the patient is fine.")), "scn-msg-refill", "llm_unavailable"},
		{"server error", llmtest.Fixed(llmtest.Status(http.StatusInternalServerError, "")), "scn-msg-ambiguous", "llm_unavailable"},
		{"cites a resource not in the snapshot", llmtest.Fixed(llmtest.Answer(citeMissing)), "scn-msg-refill", "ungrounded"},
		{"hallucinated value and medication", llmtest.Hallucinate("pharmacy"), "scn-msg-refill", "ungrounded"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := llmtest.New(t, tc.handler)
			h := newHarness(t, harnessOpts{llmURL: srv.URL})
			ref := h.refs[tc.trigger]
			h.postRef(ref)
			d := h.waitDecided(ref)
			if d.Disposition == "SUGGESTED" {
				t.Fatalf("%s reached SUGGESTED: %+v", tc.name, d)
			}
			if d.Disposition != "MANUAL_TRIAGE" || !contains(d.Flags, tc.wantFlag) {
				t.Fatalf("decision %+v, want MANUAL_TRIAGE with %s", d, tc.wantFlag)
			}
			if srv.Calls() == 0 {
				t.Fatal("the model was never called")
			}
		})
	}
}

const citeMissing = `{"priority":"routine","route":"pharmacy","rationale":"Refill request.",` +
	`"claims":[{"text":"Patient requests a refill.","evidence":["MedicationRequest/not-in-the-record"]}],"confidence":0.95,"reply_draft":""}`

// A faithful model answer over a refill request is grounded and suggested.
func TestGroundedDraftIsSuggested(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t, llmtest.Faithful("pharmacy"))
	h := newHarness(t, harnessOpts{llmURL: srv.URL})
	ref := h.refs["scn-msg-refill"]
	h.postRef(ref)
	d := h.waitDecided(ref)
	if d.Disposition != "SUGGESTED" {
		t.Fatalf("faithful draft: %+v, want SUGGESTED", d)
	}
}

func TestSameEventTwiceGivesOneDecision(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	ref := h.refs["scn-msg-chest"]
	first := h.postRef(ref)
	second := h.postRef(ref)
	if first != second {
		t.Fatalf("re-posted event got a new intake id %s (first %s)", second, first)
	}
	d := h.waitDecided(ref)
	if d.Disposition != "ESCALATED" {
		t.Fatalf("chest pain message: %+v", d)
	}
	if n := h.count(`SELECT count(*) FROM intake_events`); n != 1 {
		t.Fatalf("%d intake events stored, want 1", n)
	}
	if n := h.count(`SELECT count(*) FROM river.river_job WHERE kind = 'triage'`); n != 1 {
		t.Fatalf("%d triage jobs, want 1", n)
	}
	if n := len(h.decisionsFor(ref)); n != 1 {
		t.Fatalf("%d decisions, want 1", n)
	}
}

// crashOnce makes the first drafting call panic, as a worker process dying
// mid-pipeline (after the escalation committed) would; River retries the job.
type crashOnce struct {
	inner   triage.DrafterProvider
	crashed atomic.Bool
}

func (c *crashOnce) Drafter(ctx context.Context, t *store.Tenant) (llm.Drafter, error) {
	if c.crashed.CompareAndSwap(false, true) {
		panic("simulated worker crash mid-pipeline")
	}
	return c.inner.Drafter(ctx, t)
}

type fixedDrafter struct{ d llm.Drafter }

func (f fixedDrafter) Drafter(context.Context, *store.Tenant) (llm.Drafter, error) { return f.d, nil }

func TestRetriedJobAfterCrashKeepsOneDecision(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t, llmtest.Faithful("oncall"))
	d, err := llm.NewOpenAI(llm.OpenAIConfig{BaseURL: srv.URL, Model: "test-model", AllowInsecureLoopback: true})
	if err != nil {
		t.Fatal(err)
	}
	crash := &crashOnce{inner: fixedDrafter{d}}
	h := newHarness(t, harnessOpts{llmURL: srv.URL, drafters: crash})
	ref := h.refs["scn-msg-chest"]
	h.postRef(ref)
	got := h.waitDecided(ref)
	if !crash.crashed.Load() {
		t.Fatal("the crash was never injected")
	}
	if got.Disposition != "ESCALATED" {
		t.Fatalf("after retry: %+v", got)
	}
	if n := len(h.decisionsFor(ref)); n != 1 {
		t.Fatalf("%d decisions after a retried job, want 1", n)
	}
	if n := h.count(`SELECT count(*) FROM decision_revisions WHERE stage = 'escalated'`); n != 1 {
		t.Fatalf("%d escalation revisions, want 1", n)
	}
	if n := h.count(`SELECT count(*) FROM outbox`); n != 1 {
		t.Fatalf("%d outbox messages, want 1 (the escalation is not sent twice)", n)
	}
	if n := h.count(`SELECT attempt FROM river.river_job WHERE kind = 'triage_draft'`); n < 2 {
		t.Fatalf("job attempt %d: the job was not retried", n)
	}
}

func TestMalformedIntakeIsRefusedAndStoresNothing(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	big := `{"reference":"Observation/x/_history/1","event_id":"` + strings.Repeat("a", 2<<20) + `"}`
	cases := []struct {
		name, body string
		status     int
		want       string
	}{
		{"not JSON", `{"resourceType":`, 400, "not a JSON object"},
		{"wrong bundle type", `{"resourceType":"Bundle","type":"transaction","entry":[]}`, 400, "history"},
		{"notification without status", `{"resourceType":"Bundle","type":"history","entry":[{"resource":{"resourceType":"Observation","id":"x"}}]}`, 400, "Parameters"},
		{"other resource", `{"resourceType":"Patient","id":"p1"}`, 400, "Subscription notification"},
		{"unversioned reference without event id", `{"reference":"Observation/abc"}`, 400, "versioned"},
		{"unsupported type", `{"reference":"Patient/abc/_history/1"}`, 400, "not triaged"},
		{"unknown field", `{"reference":"Observation/abc/_history/1","content":"x"}`, 400, "only"},
		{"oversized", big, 413, "exceeds"},
	}
	for _, tc := range cases {
		status, body := h.do("POST", "/fhir/r4/intake", h.integrationToken(), []byte(tc.body))
		if status != tc.status || !strings.Contains(string(body), tc.want) {
			t.Errorf("%s: status %d body %s; want %d containing %q", tc.name, status, body, tc.status, tc.want)
		}
		if status == 400 && !strings.Contains(string(body), "OperationOutcome") {
			t.Errorf("%s: FHIR endpoint error is not an OperationOutcome: %s", tc.name, body)
		}
	}
	if n := h.count(`SELECT count(*) FROM intake_events`); n != 0 {
		t.Fatalf("%d intake events stored after malformed posts", n)
	}
	if n := h.count(`SELECT count(*) FROM river.river_job`); n != 0 {
		t.Fatalf("%d jobs enqueued after malformed posts", n)
	}
}

// The baseline drafter (no LLM) still yields all four dispositions on the scenarios.
func TestBaselineScenarios(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	want := map[string]string{
		"scn-k-critical":    "ESCALATED",
		"scn-hba1c-high":    "HELD",
		"scn-msg-chest":     "ESCALATED",
		"scn-msg-refill":    "SUGGESTED",
		"scn-msg-ambiguous": "MANUAL_TRIAGE",
	}
	for id := range want {
		h.postRef(h.refs[id])
	}
	for id, disp := range want {
		d := h.waitDecided(h.refs[id])
		if d.Disposition != disp {
			t.Errorf("%s: %s (flags %v), want %s", id, d.Disposition, d.Flags, disp)
		}
	}
	held := h.waitDecided(h.refs["scn-hba1c-high"])
	if !contains(held.Flags, "physician_hold") {
		t.Errorf("held HbA1c lacks physician_hold: %v", held.Flags)
	}
}

func contains(xs []string, x string) bool {
	for _, s := range xs {
		if s == x {
			return true
		}
	}
	return false
}

// Escalations nobody acknowledged within the SLA are notified again, once per SLA period.
func TestUnacknowledgedEscalationIsReescalated(t *testing.T) {
	t.Parallel()
	h := newHarness(t, harnessOpts{})
	h.postRef(h.refs["scn-k-critical"])
	h.waitDecided(h.refs["scn-k-critical"])
	h.waitFor("first notification", func() bool { return h.hookCount() == 1 })
	ctx := context.Background()
	later := time.Now().Add(20 * time.Minute) // past the default 15-minute SLA
	n, err := triage.ReescalateOverdue(ctx, h.app.DB, h.app.Runner, tenantID, later)
	if err != nil || n != 1 {
		t.Fatalf("re-escalated %d, %v; want 1", n, err)
	}
	if n, _ := triage.ReescalateOverdue(ctx, h.app.DB, h.app.Runner, tenantID, later.Add(time.Minute)); n != 0 {
		t.Fatalf("re-escalated again within the same SLA period: %d", n)
	}
	h.waitFor("re-escalation delivered", func() bool { return h.hookCount() == 2 })
	if c := h.count(`SELECT count(*) FROM audit_events WHERE verb = 'escalation.reescalate'`); c != 1 {
		t.Fatalf("%d re-escalation audit events", c)
	}
	// Once acknowledged, no more re-escalations.
	esc := h.itemFor(h.token("physician", clinicianScopes), "ESCALATED")
	if status, body := h.do("POST", "/api/v1/review-items/"+esc.ID+"/ack", h.token("physician", clinicianScopes), nil); status != 200 {
		t.Fatalf("ack: %d %s", status, body)
	}
	if n, _ := triage.ReescalateOverdue(ctx, h.app.DB, h.app.Runner, tenantID, later.Add(time.Hour)); n != 0 {
		t.Fatalf("re-escalated an acknowledged item")
	}
}

// A FHIR server that stays down past the bounded retries yields MANUAL_TRIAGE
// "record unavailable" (or keeps a committed escalation, flagged), never a
// silent retry loop.
func TestFHIROutageEndsInManualTriage(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name     string
		trigger  string
		failWhen func(r *http.Request) bool
		wantDisp string
	}{
		{"trigger unreadable", "scn-msg-ambiguous", func(r *http.Request) bool { return true }, "MANUAL_TRIAGE"},
		{"context unreadable after an escalation", "scn-k-critical",
			func(r *http.Request) bool { return r.URL.RawQuery != "" }, "ESCALATED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var failing atomic.Int64
			h := newHarness(t, harnessOpts{fhirWrap: func(next http.Handler) http.Handler {
				return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					if tc.failWhen(r) {
						failing.Add(1)
						w.WriteHeader(http.StatusServiceUnavailable)
						return
					}
					next.ServeHTTP(w, r)
				})
			}})
			ref := h.refs[tc.trigger]
			h.postRef(ref)
			d := h.waitDecided(ref)
			if d.Disposition != tc.wantDisp || !contains(d.Flags, "record_unavailable") {
				t.Fatalf("decision %+v, want %s with record_unavailable", d, tc.wantDisp)
			}
			if failing.Load() < 2 {
				t.Fatalf("the client did not retry (%d failed requests)", failing.Load())
			}
			if n := h.count(`SELECT count(*) FROM audit_events WHERE verb = 'decision.record_unavailable' AND (detail->>'alert')::bool`); n != 1 {
				t.Fatalf("%d record-unavailable alerts", n)
			}
		})
	}
}

// In shadow mode the model drafts and is recorded, but the decision and the
// queue use the baseline: the model's draft is never shown.
func TestShadowModeRecordsButDoesNotUseTheModel(t *testing.T) {
	t.Parallel()
	srv := llmtest.New(t, llmtest.Fixed(llmtest.Answer(`{"priority":"stat","route":"oncall","rationale":"x","claims":[{"text":"y","evidence":["Communication/scn-msg-refill"]}],"confidence":0.99,"reply_draft":""}`)))
	h := newHarness(t, harnessOpts{llmURL: srv.URL, llmMode: store.LLMShadow})
	ref := h.refs["scn-msg-refill"]
	h.postRef(ref)
	d := h.waitDecided(ref)
	if d.Priority != "routine" || d.Disposition != "SUGGESTED" {
		t.Fatalf("shadow decision %+v: the model's stat draft leaked into the decision", d)
	}
	if srv.Calls() == 0 {
		t.Fatal("the model was not called in shadow mode")
	}
	if n := h.count(`SELECT count(*) FROM decision_revisions WHERE record->'shadow_draft'->>'shadow' = 'true' AND record->'shadow_draft'->'params'->>'model' = 'test-model' AND record->'draft'->>'baseline' = 'true'`); n != 1 {
		t.Fatalf("%d revisions record the shadow draft beside the baseline draft", n)
	}
}
