package ground_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/llm/llmtest"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/triage/ground"
)

func TestVerifyCases(t *testing.T) {
	t.Parallel()
	snap := snapshots(t)["alfreda"]
	glu, _ := latestObs(snap, "Glucose")
	wt, _ := latestObs(snap, "Body Weight")
	med, _ := firstOf(snap, "MedicationRequest")
	msg := snap.Trigger.Ref().String()
	g := fmtv(glu.Value)
	tests := []struct {
		name    string
		d       llm.Draft
		floor   rules.Priority
		ok      bool
		problem string // substring of some problem when !ok
	}{
		{"value as written", draft("physician", 0.8, "r", "", claim("Glucose "+g+" mg/dL.", glu.Ref)), 0, true, ""},
		{"full precision", draft("physician", 0.8, "r", "", claim("Glucose "+glu.Value.String()+" mg/dL.", glu.Ref)), 0, true, ""},
		{"trailing zero", draft("triage", 0.8, "r", "", claim("Dizzy for 3.0 days.", msg)), 0, true, ""},
		{"invented precision", draft("physician", 0.8, "r", "", claim(fmt.Sprintf("Glucose %.2f0 mg/dL.", f64(glu.Value)), glu.Ref)), 0, false, "does not match"},
		{"ISO timestamp date", draft("physician", 0.8, "r", "", claim("Glucose on "+glu.Date+"T20:43:11+00:00.", glu.Ref)), 0, true, ""},
		{"day-month date", draft("physician", 0.8, "r", "", claim("Glucose dated "+dmy(glu.Date)+".", glu.Ref)), 0, true, ""},
		{"unversioned evidence", draft("physician", 0.8, "r", "", claim("Glucose "+g+" mg/dL.", strings.Split(glu.Ref, "/_history")[0])), 0, true, ""},
		{"unitless number from the resource", draft("physician", 0.8, "r", "", claim("Glucose "+g+".", glu.Ref)), 0, true, ""},
		{"kg as lb without conversion", draft("triage", 0.8, "r", "", claim("Weight "+fmtv(wt.Value)+" lbs.", wt.Ref)), 0, false, "does not match"},
		{"one significant digit is too coarse", draft("physician", 0.8, "r", "", claim("Glucose 90 mg/dL.", glu.Ref)), 0, false, "does not match"},
		{"medication from the record", draft("pharmacy", 0.8, "Refill of hydrochlorothiazide requested.", "", claim("Prescribed "+med.Text+".", med.Ref)), 0, true, ""},
		{"medication mentioned in cited message", draft("pharmacy", 0.8, "r", "", claim("Asks for hydrochlorothiazide.", msg)), 0, true, ""},
		{"brand name not in record", draft("pharmacy", 0.8, "r", "", claim("Asks about Lipitor.", msg)), 0, false, "medication"},
		{"condition synonym", draft("triage", 0.8, "Known high blood pressure.", "", claim("Dizzy for 3 days.", msg)), 0, true, ""},
		{"condition absent in rationale", draft("triage", 0.8, "Likely pneumonia.", "", claim("Dizzy for 3 days.", msg)), 0, false, "rationale: condition"},
		{"prediabetes is not diabetes", draft("triage", 0.8, "r", "Your diabetes is well controlled.", claim("Dizzy for 3 days.", msg)), 0, false, "reply: condition"},
		{"reply dosing: tablets a day", draft("triage", 0.8, "r", "Take one tablet twice a day.", claim("Dizzy for 3 days.", msg)), 0, false, ground.ProblemDosing},
		{"reply dosing: stop taking", draft("triage", 0.8, "r", "Stop taking your water pill until we call.", claim("Dizzy for 3 days.", msg)), 0, false, ground.ProblemDosing},
		{"reply without dosing", draft("triage", 0.8, "r", "A nurse will call you today about your refill.", claim("Dizzy for 3 days.", msg)), 0, true, ""},
		{"priority equal to floor", func() llm.Draft {
			d := draft("triage", 0.8, "r", "", claim("Dizzy for 3 days.", msg))
			d.Priority = rules.Stat
			return d
		}(), rules.Stat, true, ""},
		{"priority below floor", draft("triage", 0.8, "r", "", claim("Dizzy for 3 days.", msg)), rules.Urgent, false, ground.ProblemPriorityBelowRules},
		{"right age citing the message", draft("triage", 0.8, "r", "", claim("40-year-old reports dizziness for 3 days.", msg)), 0, true, ""},
		{"wrong age citing the message", draft("triage", 0.8, "r", "", claim("A 67-year-old reports dizziness for 3 days.", msg)), 0, false, "age 67"},
		{"flu shot in reply", draft("triage", 0.8, "r", "You are due for a flu shot.", claim("Dizzy for 3 days.", msg)), 0, true, ""},
		{"no claims", draft("triage", 0.8, "r", ""), 0, false, ground.ProblemNoClaims},
		{"wrong number of days", draft("triage", 0.8, "r", "", claim("Dizzy for 5 days.", msg)), 0, false, "does not match"},
	}
	v := ground.NewVerifier()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			res := v.Verify(snap, tt.d, ground.Options{RuleFloor: tt.floor, Now: now})
			if res.Grounded != tt.ok {
				t.Fatalf("grounded = %v, want %v: %s", res.Grounded, tt.ok, describe(res))
			}
			if !tt.ok && !strings.Contains(describe(res), tt.problem) {
				t.Fatalf("problems %q do not mention %q", describe(res), tt.problem)
			}
			if len(res.Claims) != len(tt.d.Claims) {
				t.Fatalf("%d claim results for %d claims", len(res.Claims), len(tt.d.Claims))
			}
		})
	}
}

func dmy(d string) string {
	tm, _ := timeParse(d)
	return tm.Format("2 January 2006")
}

func TestVerifyNilSnapshot(t *testing.T) {
	t.Parallel()
	res := ground.Verify(nil, draft("triage", 0.9, "r", "", claim("x", "Observation/1")), ground.Options{})
	if res.Grounded || len(res.Claims) != 1 || res.Claims[0].Grounded {
		t.Fatalf("nil snapshot verified: %+v", res)
	}
}

func TestEffectiveConfidence(t *testing.T) {
	t.Parallel()
	ok := ground.Result{Grounded: true}
	tests := []struct {
		name   string
		raw    float64
		g      ground.Result
		agrees bool
		want   float64
	}{
		{"ungrounded is zero", 0.99, ground.Result{}, true, 0},
		{"grounded and agreeing", 0.8, ok, true, 0.8},
		{"disagreeing is discounted", 0.8, ok, false, 0.6},
		{"capped", 1, ok, true, 0.95},
		{"negative", -1, ok, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := ground.EffectiveConfidence(tt.raw, tt.g, tt.agrees); got < tt.want-1e-9 || got > tt.want+1e-9 {
				t.Fatalf("EffectiveConfidence = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestHallucinationThroughDrafter drives the real drafter against a test
// server that misquotes the record, and checks the verifier catches it,
// while a faithful server's draft is accepted.
func TestHallucinationThroughDrafter(t *testing.T) {
	t.Parallel()
	snap := snapshots(t)["cameron"]
	tests := []struct {
		name     string
		handler  llmtest.Handler
		grounded bool
	}{
		{"faithful", llmtest.Faithful("triage"), true},
		{"hallucinating", llmtest.Hallucinate("triage"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := llmtest.New(t, tt.handler)
			d, err := llm.NewOpenAI(llm.OpenAIConfig{BaseURL: srv.URL, Model: "m", AllowInsecureLoopback: true})
			if err != nil {
				t.Fatal(err)
			}
			res, err := d.Draft(context.Background(), llm.Request{Snapshot: snap, Queues: []string{"triage"}, Now: now})
			if err != nil {
				t.Fatalf("Draft: %v", err)
			}
			g := ground.Verify(snap, res.Draft, ground.Options{Now: now})
			if g.Grounded != tt.grounded {
				t.Fatalf("grounded = %v, want %v: %s", g.Grounded, tt.grounded, describe(g))
			}
			if !tt.grounded && ground.EffectiveConfidence(res.Draft.Confidence, g, true) != 0 {
				t.Fatalf("hallucinated draft kept confidence")
			}
		})
	}
}

func BenchmarkVerify(b *testing.B) {
	snap := snapshots(b)["alfreda"]
	glu, _ := latestObs(snap, "Glucose")
	d := draft("physician", 0.8, "Routine review.", "A nurse will call you.",
		claim("Glucose "+fmtv(glu.Value)+" mg/dL on "+glu.Date+".", glu.Ref),
		claim("Patient reports feeling dizzy for 3 days and asks for a hydrochlorothiazide refill.", snap.Trigger.Ref().String()))
	v := ground.NewVerifier()
	b.ReportAllocs()
	for b.Loop() {
		v.Verify(snap, d, ground.Options{Now: now})
	}
}
