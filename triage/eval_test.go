package triage

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/vigil-health/vigil/internal/fixtures"
	"github.com/vigil-health/vigil/internal/fixtures/evalcases"
	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/llm/llmtest"
	"github.com/vigil-health/vigil/rules"
)

// evalNow is after every bundled case's dates, so reports are reproducible.
var evalNow = time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)

const (
	evalPatientA = "6d23a95e-7e18-4201-90ec-9501fa89fbd2"
	evalPatientC = "c4cbfddf-6f87-4acd-a34b-670178c3e535"
)

func bundledCases(t *testing.T) []EvalCase {
	t.Helper()
	cases, err := LoadEvalCases(evalcases.FS(), ".")
	if err != nil {
		t.Fatalf("LoadEvalCases: %v", err)
	}
	return cases
}

func runEval(t *testing.T, cfg EvalConfig, cases []EvalCase) *EvalReport {
	t.Helper()
	if cfg.Records == nil {
		cfg.Records = fixtures.Synthea()
	}
	if cfg.Now.IsZero() {
		cfg.Now = evalNow
	}
	rep, err := Eval(context.Background(), cfg, cases)
	if err != nil {
		t.Fatalf("Eval: %v", err)
	}
	return rep
}

// checkConsistent recomputes every summary number of rep from its Results.
func checkConsistent(t *testing.T, rep *EvalReport) {
	t.Helper()
	if rep.Cases != len(rep.Results) {
		t.Fatalf("Cases = %d, results = %d", rep.Cases, len(rep.Results))
	}
	// Confusion matrix: sums to the case count; rows are the labels, columns the predictions; the diagonal is agreement.
	total, diag := 0, 0
	for i, row := range rep.Confusion.Counts {
		rowSum := 0
		for j, n := range row {
			total += n
			rowSum += n
			if i == j {
				diag += n
			}
			colWant := 0
			for _, r := range rep.Results {
				if r.Label.Priority == EvalPriorities[i] && r.Priority == EvalPriorities[j] {
					colWant++
				}
			}
			if n != colWant {
				t.Errorf("confusion[%s][%s] = %d, want %d", rep.Confusion.Labels[i], rep.Confusion.Labels[j], n, colWant)
			}
		}
		labelled := 0
		for _, r := range rep.Results {
			if r.Label.Priority == EvalPriorities[i] {
				labelled++
			}
		}
		if rowSum != labelled {
			t.Errorf("confusion row %s sums to %d, %d cases carry that label", rep.Confusion.Labels[i], rowSum, labelled)
		}
	}
	if total != rep.Cases {
		t.Errorf("confusion matrix sums to %d, want %d cases", total, rep.Cases)
	}
	if diag != rep.Agreement.Priority.Agree || rep.Agreement.Priority.Total != rep.Cases {
		t.Errorf("priority agreement %+v, confusion diagonal %d of %d", rep.Agreement.Priority, diag, rep.Cases)
	}
	var routeOK, dispOK, dispN, drafts, ungrounded, invalid, unavailable int
	disp := map[string]int{}
	for _, r := range rep.Results {
		disp[r.Disposition.String()]++
		if r.PriorityAgrees != (r.Priority == r.Label.Priority) || r.RouteAgrees != (r.Queue == r.Label.Route) {
			t.Errorf("case %s: agreement flags wrong: %+v", r.Name, r)
		}
		if r.RouteAgrees {
			routeOK++
		}
		if r.Label.Disposition != rules.DispositionNone {
			dispN++
			if r.DispositionAgrees == nil || *r.DispositionAgrees != (r.Disposition == r.Label.Disposition) {
				t.Errorf("case %s: disposition agreement wrong", r.Name)
			} else if *r.DispositionAgrees {
				dispOK++
			}
		} else if r.DispositionAgrees != nil {
			t.Errorf("case %s: disposition agreement set without a labelled disposition", r.Name)
		}
		switch r.DraftStatus {
		case "ok":
			drafts++
			if !r.Grounded {
				ungrounded++
				if r.Confidence != 0 {
					t.Errorf("case %s: ungrounded draft has effective confidence %v", r.Name, r.Confidence)
				}
				if r.Disposition == rules.Suggested {
					t.Errorf("case %s: ungrounded draft SUGGESTED", r.Name)
				}
			}
		case "invalid":
			invalid++
		case "unavailable":
			unavailable++
		}
		if r.DraftCorrect != (r.DraftPriority == r.Label.Priority && r.DraftRoute == r.Label.Route) {
			t.Errorf("case %s: DraftCorrect wrong", r.Name)
		}
		if r.Disposition == rules.Suggested && (r.Confidence < r.Threshold || !r.Grounded) {
			t.Errorf("case %s: SUGGESTED below threshold or ungrounded", r.Name)
		}
	}
	if got := rep.Agreement.Route; got.Agree != routeOK || got.Total != rep.Cases {
		t.Errorf("route agreement %+v, want %d/%d", got, routeOK, rep.Cases)
	}
	if got := rep.Agreement.Disposition; got.Agree != dispOK || got.Total != dispN {
		t.Errorf("disposition agreement %+v, want %d/%d", got, dispOK, dispN)
	}
	for k, v := range disp {
		if rep.Dispositions[k] != v {
			t.Errorf("dispositions[%s] = %d, want %d", k, rep.Dispositions[k], v)
		}
	}
	g := rep.Grounding
	if g.Drafts != drafts || g.Ungrounded != ungrounded || g.Invalid != invalid || g.Unavailable != unavailable {
		t.Errorf("grounding %+v, want drafts %d ungrounded %d invalid %d unavailable %d", g, drafts, ungrounded, invalid, unavailable)
	}
	if drafts > 0 && math.Abs(g.RejectionRate-float64(ungrounded)/float64(drafts)) > 1e-12 {
		t.Errorf("rejection rate %v, want %d/%d", g.RejectionRate, ungrounded, drafts)
	}
	// Calibration: the bins partition the drafts.
	binned := 0
	for i, b := range rep.Calibration {
		binned += b.Count
		if b.Correct > b.Count || (b.Count > 0 && math.Abs(b.Accuracy-float64(b.Correct)/float64(b.Count)) > 1e-12) {
			t.Errorf("bin %d: %+v", i, b)
		}
		if b.Count > 0 && (b.MeanConfidence < b.Low || b.MeanConfidence > b.High) {
			t.Errorf("bin %d: mean confidence %v outside [%v, %v]", i, b.MeanConfidence, b.Low, b.High)
		}
	}
	if binned != drafts {
		t.Errorf("calibration bins hold %d drafts, want %d", binned, drafts)
	}
	// Threshold search: brute force over every grounded draft's confidence.
	var best *EvalOperatingPoint
	var cands []float64
	for _, r := range rep.Results {
		if r.DraftStatus == "ok" && r.Grounded {
			cands = append(cands, r.Confidence)
		}
	}
	slices.Sort(cands)
	for _, th := range cands {
		cov, ok := 0, 0
		for _, r := range rep.Results {
			if r.DraftStatus == "ok" && r.Grounded && r.Confidence >= th {
				cov++
				if r.DraftCorrect {
					ok++
				}
			}
		}
		if cov > 0 && float64(ok)/float64(cov) >= rep.Target.Precision {
			best = &EvalOperatingPoint{Threshold: th, Covered: cov, Correct: ok}
			break
		}
	}
	switch {
	case best == nil && rep.Target.Reached:
		t.Errorf("target reported reached at %+v; brute force finds none", rep.Target.Point)
	case best != nil && (!rep.Target.Reached || rep.Target.Point == nil):
		t.Errorf("target not reported; brute force reaches it at %v", best.Threshold)
	case best != nil:
		p := rep.Target.Point
		if p.Threshold != best.Threshold || p.Covered != best.Covered || p.Correct != best.Correct ||
			math.Abs(p.Coverage-float64(best.Covered)/float64(rep.Cases)) > 1e-12 || p.Precision < rep.Target.Precision {
			t.Errorf("target point %+v, brute force %+v", *p, *best)
		}
	}
}

func TestEvalBundledCasesBaseline(t *testing.T) {
	t.Parallel()
	cases := bundledCases(t)
	if len(cases) < 30 {
		t.Fatalf("%d bundled cases, want at least 30", len(cases))
	}
	// The set covers every queue, the priorities a nurse uses and every trigger type.
	routes, prios, types := map[string]bool{}, map[rules.Priority]bool{}, map[string]bool{}
	for _, c := range cases {
		routes[c.Label.Route] = true
		prios[c.Label.Priority] = true
		var h struct{ ResourceType string }
		_ = json.Unmarshal(c.Trigger, &h)
		types[h.ResourceType] = true
	}
	for _, q := range []string{"oncall", "physician", "triage", "pharmacy", "front_desk"} {
		if !routes[q] {
			t.Errorf("no bundled case is labelled route %s", q)
		}
	}
	for _, p := range []rules.Priority{rules.Stat, rules.Urgent, rules.Routine} {
		if !prios[p] {
			t.Errorf("no bundled case is labelled priority %s", p)
		}
	}
	for _, typ := range []string{"Observation", "Communication", "QuestionnaireResponse"} {
		if !types[typ] {
			t.Errorf("no bundled case has a %s trigger", typ)
		}
	}

	rep := runEval(t, EvalConfig{}, cases)
	checkConsistent(t, rep)
	if rep.Drafter != "baseline" || rep.Model != "" {
		t.Errorf("drafter %q model %q, want baseline", rep.Drafter, rep.Model)
	}
	// The baseline always drafts, cites only the trigger, and is grounded.
	if g := rep.Grounding; g.Drafts != rep.Cases || g.Ungrounded != 0 || g.RejectionRate != 0 || g.Invalid+g.Unavailable != 0 {
		t.Errorf("baseline grounding %+v", g)
	}
	for _, r := range rep.Results {
		if r.Unavailable != "" {
			t.Errorf("case %s: record unavailable (%s): the case file names a missing resource", r.Name, r.Unavailable)
		}
		// The rules decide what the nurse labelled ESCALATED from a lab value, and every critical-value
		// case is escalated whatever the drafter said.
		if strings.HasPrefix(r.File, "crit-") && r.Disposition != rules.Escalated {
			t.Errorf("case %s: critical value decided %s", r.Name, r.Disposition)
		}
		if strings.HasPrefix(r.File, "abn-") && r.Disposition != rules.Held {
			t.Errorf("case %s: abnormal result decided %s", r.Name, r.Disposition)
		}
		if r.Baseline != true {
			t.Errorf("case %s: draft not marked baseline", r.Name)
		}
	}
	// The baseline's fixed confidence table is what fills the calibration bins.
	if rep.Calibration[4].Count == 0 || math.Abs(rep.Calibration[4].MeanConfidence-llm.BaselineConfidenceRefill) > 1e-9 {
		t.Errorf("top bin %+v: want the baseline's administrative drafts at %v", rep.Calibration[4], llm.BaselineConfidenceRefill)
	}
	t.Logf("bundled: %d cases, priority %d/%d, route %d/%d, disposition %d/%d",
		rep.Cases, rep.Agreement.Priority.Agree, rep.Cases, rep.Agreement.Route.Agree, rep.Cases,
		rep.Agreement.Disposition.Agree, rep.Agreement.Disposition.Total)
}

// evalCaseJSON builds one case file.
func evalCaseJSON(name, patient, trigger, label string, context ...string) string {
	ctx := ""
	if len(context) > 0 {
		ctx = `,"context":[` + strings.Join(context, ",") + `]`
	}
	p := ""
	if patient != "" {
		p = `"patient":"Patient/` + patient + `",`
	}
	return `{"name":"` + name + `",` + p + `"trigger":` + trigger + ctx + `,"label":` + label + `}`
}

func potassiumJSON(id, patient string, value float64, day string) string {
	return fmt.Sprintf(`{"resourceType":"Observation","id":%q,"status":"final",
		"category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],
		"code":{"coding":[{"system":"http://loinc.org","code":"2823-3","display":"Potassium"}],"text":"Potassium"},
		"subject":{"reference":"Patient/%s"},"effectiveDateTime":"%sT08:00:00+00:00","issued":"%sT10:00:00+00:00",
		"valueQuantity":{"value":%v,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"},
		"referenceRange":[{"low":{"value":3.5,"unit":"mmol/L"},"high":{"value":5.1,"unit":"mmol/L"}}]}`, id, patient, day, day, value)
}

func messageJSON(id, patient, text string) string {
	b, _ := json.Marshal(text)
	return fmt.Sprintf(`{"resourceType":"Communication","id":%q,"status":"completed","subject":{"reference":"Patient/%s"},
		"sender":{"reference":"Patient/%s"},"sent":"2026-12-04T09:00:00+00:00","payload":[{"contentString":%s}]}`, id, patient, patient, b)
}

func parseCases(t *testing.T, files ...string) []EvalCase {
	t.Helper()
	fsys := fstest.MapFS{}
	for i, f := range files {
		fsys[fmt.Sprintf("case-%02d.json", i)] = &fstest.MapFile{Data: []byte(f)}
	}
	cases, err := LoadEvalCases(fsys, ".")
	if err != nil {
		t.Fatalf("LoadEvalCases: %v", err)
	}
	return cases
}

// Three cases whose outcome is known by hand:
//
//	critical K 6.9, labelled stat/oncall/ESCALATED → ESCALATED stat oncall (agrees);
//	  baseline draft routine/physician 0.5 × 0.75 (disagrees with the rules) = 0.375: draft wrong
//	refill message, labelled routine/pharmacy → SUGGESTED routine pharmacy (agrees); draft right at 0.85
//	normal K 4.2, labelled urgent/physician/HELD (a stricter nurse) → MANUAL_TRIAGE routine triage:
//	  priority, route and disposition disagree; draft routine/physician at 0.5: wrong priority
func TestEvalKnownOutcomes(t *testing.T) {
	t.Parallel()
	crit := evalCaseJSON("critical potassium", evalPatientA, potassiumJSON("t-k-crit", evalPatientA, 6.9, "2026-12-04"),
		`{"priority":"stat","route":"oncall","disposition":"ESCALATED"}`)
	refill := evalCaseJSON("refill", evalPatientA, messageJSON("t-refill", evalPatientA, "Please send a refill of my hydrochlorothiazide to the pharmacy."),
		`{"priority":"routine","route":"pharmacy"}`)
	normal := evalCaseJSON("normal potassium, strict label", evalPatientC, potassiumJSON("t-k-norm", evalPatientC, 4.2, "2026-12-04"),
		`{"priority":"urgent","route":"physician","disposition":"HELD"}`)
	rep := runEval(t, EvalConfig{}, parseCases(t, crit, refill, normal))
	checkConsistent(t, rep)

	type want struct {
		disp       rules.Disposition
		prio       rules.Priority
		queue      string
		conf       float64
		draftRight bool
	}
	wants := []want{
		{rules.Escalated, rules.Stat, "oncall", 0.375, false},
		{rules.Suggested, rules.Routine, "pharmacy", 0.85, true},
		{rules.ManualTriage, rules.Routine, "triage", 0.5, false},
	}
	for i, w := range wants {
		r := rep.Results[i]
		if r.Disposition != w.disp || r.Priority != w.prio || r.Queue != w.queue || math.Abs(r.Confidence-w.conf) > 1e-9 || r.DraftCorrect != w.draftRight {
			t.Errorf("case %s: got %s %s %s conf %v draft right %v; want %+v", r.Name, r.Disposition, r.Priority, r.Queue, r.Confidence, r.DraftCorrect, w)
		}
	}
	if !slices.Contains(rep.Results[0].PreRules, "critical-potassium-high") {
		t.Errorf("critical case pre-rules %v", rep.Results[0].PreRules)
	}
	ag := rep.Agreement
	if ag.Priority != ratio(2, 3) || ag.Route != ratio(2, 3) || ag.Disposition != ratio(1, 2) {
		t.Errorf("agreement %+v, want priority 2/3, route 2/3, disposition 1/2", ag)
	}
	wantConf := [][]int{
		{1, 0, 0, 0}, // stat
		{0, 0, 0, 0}, // asap
		{0, 0, 0, 1}, // urgent
		{0, 0, 0, 1}, // routine
	}
	for i := range wantConf {
		if !slices.Equal(rep.Confusion.Counts[i], wantConf[i]) {
			t.Errorf("confusion row %s = %v, want %v", rep.Confusion.Labels[i], rep.Confusion.Counts[i], wantConf[i])
		}
	}
	wantBins := [][2]int{{0, 0}, {1, 0}, {1, 0}, {0, 0}, {1, 1}} // count, correct
	for i, b := range rep.Calibration {
		if b.Count != wantBins[i][0] || b.Correct != wantBins[i][1] {
			t.Errorf("bin [%v, %v): %d/%d, want %d/%d", b.Low, b.High, b.Correct, b.Count, wantBins[i][1], wantBins[i][0])
		}
	}
	// 0.375 → 1/3, 0.5 → 1/2, 0.85 → 1/1: the smallest threshold reaching 0.95 is 0.85, covering 1 of 3 cases.
	if p := rep.Target.Point; !rep.Target.Reached || p == nil || p.Threshold != 0.85 || p.Covered != 1 || p.Precision != 1 || math.Abs(p.Coverage-1.0/3) > 1e-12 {
		t.Errorf("target %+v point %+v", rep.Target, p)
	}
	if at := rep.AtThreshold; at.Threshold != 0.8 || at.Covered != 1 || at.Precision != 1 {
		t.Errorf("at threshold %+v", at)
	}

	// A lower target is reached earlier: 0.5 precision at t = 0.5 (1 of 2).
	rep = runEval(t, EvalConfig{TargetPrecision: 0.5}, parseCases(t, crit, refill, normal))
	if p := rep.Target.Point; p == nil || p.Threshold != 0.5 || p.Covered != 2 || p.Correct != 1 {
		t.Errorf("target 0.5: %+v", p)
	}
	// No correct draft at all: not reached.
	rep = runEval(t, EvalConfig{}, parseCases(t, crit, normal))
	checkConsistent(t, rep)
	if rep.Target.Reached || rep.Target.Point != nil {
		t.Errorf("target reached with no correct draft: %+v", rep.Target.Point)
	}
}

func openAIDrafter(t *testing.T, h llmtest.Handler) (llm.Drafter, *llmtest.Server) {
	t.Helper()
	srv := llmtest.New(t, h)
	d, err := llm.NewOpenAI(llm.OpenAIConfig{BaseURL: srv.URL, Model: "eval-model", AllowInsecureLoopback: true,
		MaxAttempts: 1, BreakerThreshold: 1 << 20, Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return d, srv
}

func TestEvalModelGrounding(t *testing.T) {
	t.Parallel()
	cases := bundledCases(t)

	hd, hsrv := openAIDrafter(t, llmtest.Hallucinate("physician"))
	hall := runEval(t, EvalConfig{Drafter: hd}, cases)
	checkConsistent(t, hall)
	if hsrv.Calls() != len(cases) {
		t.Errorf("model called %d times for %d cases", hsrv.Calls(), len(cases))
	}
	if g := hall.Grounding; g.Drafts != len(cases) || g.Ungrounded != g.Drafts || g.RejectionRate != 1 {
		t.Errorf("hallucinating model: grounding %+v, want every draft rejected", g)
	}
	if hall.Drafter != "openai" || !strings.HasPrefix(hall.Model, "eval-model") {
		t.Errorf("drafter %q model %q", hall.Drafter, hall.Model)
	}
	for _, r := range hall.Results {
		if r.Disposition == rules.Suggested || !slices.Contains(r.Flags, string(rules.FlagUngrounded)) || r.Baseline {
			t.Errorf("case %s: hallucinated draft gave %s flags %v", r.Name, r.Disposition, r.Flags)
		}
	}
	if hall.Target.Reached || hall.Calibration[0].Count != len(cases) {
		t.Errorf("ungrounded drafts must sit at confidence 0 and reach no target: %+v %+v", hall.Calibration[0], hall.Target)
	}

	fd, _ := openAIDrafter(t, llmtest.Faithful("triage"))
	faith := runEval(t, EvalConfig{Drafter: fd}, cases)
	checkConsistent(t, faith)
	if g := faith.Grounding; g.Drafts != len(cases) || g.RejectionRate >= hall.Grounding.RejectionRate || g.RejectionRate > 0.5 {
		t.Errorf("faithful model: grounding %+v, want a rejection rate well below the hallucinating model's", g)
	}
	t.Logf("rejection rate: hallucinating %.2f, faithful %.2f", hall.Grounding.RejectionRate, faith.Grounding.RejectionRate)

	// Cases evaluated in parallel give the same report, in the cases' order.
	par := runEval(t, EvalConfig{Drafter: fd, Parallel: 4}, cases)
	a, _ := json.Marshal(faith)
	b, _ := json.Marshal(par)
	if !bytes.Equal(a, b) {
		t.Error("the parallel evaluation differs from the sequential one")
	}
}

func TestEvalModelFailuresCounted(t *testing.T) {
	t.Parallel()
	cases := parseCases(t,
		evalCaseJSON("critical potassium", evalPatientA, potassiumJSON("t-k-crit", evalPatientA, 6.9, "2026-12-04"),
			`{"priority":"stat","route":"oncall","disposition":"ESCALATED"}`),
		evalCaseJSON("refill", evalPatientA, messageJSON("t-refill", evalPatientA, "Please send a refill of my hydrochlorothiazide."),
			`{"priority":"routine","route":"pharmacy"}`))
	for _, tc := range []struct {
		name                 string
		h                    llmtest.Handler
		invalid, unavailable int
	}{
		{"garbage", llmtest.Fixed(llmtest.Garbage()), 2, 0},
		{"prose", llmtest.Fixed(llmtest.Answer("I think this is routine.")), 2, 0},
		{"down", llmtest.Fixed(llmtest.Status(503, "")), 0, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, _ := openAIDrafter(t, tc.h)
			rep := runEval(t, EvalConfig{Drafter: d}, cases)
			checkConsistent(t, rep)
			g := rep.Grounding
			if g.Invalid != tc.invalid || g.Unavailable != tc.unavailable || g.Drafts != 0 {
				t.Errorf("grounding %+v, want invalid %d unavailable %d", g, tc.invalid, tc.unavailable)
			}
			// The rules still escalate; nothing is suggested without a draft.
			if rep.Results[0].Disposition != rules.Escalated || rep.Results[1].Disposition != rules.ManualTriage {
				t.Errorf("dispositions %s, %s", rep.Results[0].Disposition, rep.Results[1].Disposition)
			}
			if !slices.Contains(rep.Results[1].Flags, string(rules.FlagLLMUnavailable)) {
				t.Errorf("flags %v, want llm_unavailable", rep.Results[1].Flags)
			}
		})
	}
}

func TestEvalCasesAreIsolated(t *testing.T) {
	t.Parallel()
	prior := potassiumJSON("t-k-prior", evalPatientC, 4.3, "2026-09-14")
	withCtx := evalCaseJSON("with prior", evalPatientC, potassiumJSON("t-k-a", evalPatientC, 4.6, "2026-12-04"),
		`{"priority":"routine","route":"physician"}`, prior)
	msg := evalCaseJSON("message", evalPatientC, messageJSON("t-msg", evalPatientC, "Can I reschedule my appointment?"),
		`{"priority":"routine","route":"front_desk"}`)
	without := evalCaseJSON("without prior", evalPatientC, potassiumJSON("t-k-b", evalPatientC, 4.6, "2026-12-04"),
		`{"priority":"routine","route":"physician"}`)

	alone := runEval(t, EvalConfig{}, parseCases(t, without))
	all := runEval(t, EvalConfig{}, parseCases(t, withCtx, msg, without))
	base := alone.Results[0].SnapshotContext
	if base == 0 {
		t.Fatal("the Synthea record gave an empty snapshot context")
	}
	if got := all.Results[0].SnapshotContext; got != base+1 {
		t.Errorf("case with one context resource: snapshot context %d, want %d", got, base+1)
	}
	// Neither the earlier case's context nor its trigger (a message of the same patient) leaks into a later case.
	if got := all.Results[2].SnapshotContext; got != base {
		t.Errorf("later case sees %d context resources, alone %d", got, base)
	}
}

func TestLoadEvalCasesRejectsBadFiles(t *testing.T) {
	t.Parallel()
	trig := potassiumJSON("t-k", evalPatientA, 4.2, "2026-12-04")
	good := evalCaseJSON("good", evalPatientA, trig, `{"priority":"routine","route":"physician"}`)
	for name, file := range map[string]string{
		"not json":        `{"name":`,
		"unknown field":   `{"name":"x","trigger":` + trig + `,"label":{"priority":"routine","route":"triage"},"labels":{}}`,
		"no name":         evalCaseJSON("", evalPatientA, trig, `{"priority":"routine","route":"triage"}`),
		"no trigger id":   evalCaseJSON("x", "", `{"resourceType":"Observation"}`, `{"priority":"routine","route":"triage"}`),
		"bad priority":    evalCaseJSON("x", "", trig, `{"priority":"soon","route":"triage"}`),
		"no priority":     evalCaseJSON("x", "", trig, `{"route":"triage"}`),
		"no route":        evalCaseJSON("x", "", trig, `{"priority":"routine"}`),
		"bad disposition": evalCaseJSON("x", "", trig, `{"priority":"routine","route":"triage","disposition":"LATER"}`),
		"bad patient":     `{"name":"x","patient":"Practitioner/1","trigger":` + trig + `,"label":{"priority":"routine","route":"triage"}}`,
		"bad context":     evalCaseJSON("x", "", trig, `{"priority":"routine","route":"triage"}`, `[1]`),
		"duplicate name":  good,
	} {
		fsys := fstest.MapFS{"a.json": {Data: []byte(good)}, "b.json": {Data: []byte(file)}}
		if _, err := LoadEvalCases(fsys, "."); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), "b.json") && name != "duplicate name" {
			t.Errorf("%s: error %q does not name the file", name, err)
		}
	}
	if _, err := LoadEvalCases(fstest.MapFS{"README.md": {Data: []byte("x")}}, "."); err == nil {
		t.Error("a directory without case files was accepted")
	}

	// Checked against the run: a route that is not a queue, a patient the trigger does not name.
	ctx := context.Background()
	cfg := EvalConfig{Records: fixtures.Synthea(), Now: evalNow}
	bad := parseCases(t, evalCaseJSON("x", evalPatientA, trig, `{"priority":"routine","route":"lab"}`))
	if _, err := Eval(ctx, cfg, bad); err == nil || !strings.Contains(err.Error(), "lab") {
		t.Errorf("unknown route: %v", err)
	}
	bad = parseCases(t, evalCaseJSON("x", evalPatientC, trig, `{"priority":"routine","route":"triage"}`))
	if _, err := Eval(ctx, cfg, bad); err == nil || !strings.Contains(err.Error(), "does not name") {
		t.Errorf("patient mismatch: %v", err)
	}
	if _, err := Eval(ctx, EvalConfig{}, bad); err == nil {
		t.Error("Eval without records accepted")
	}
	// A trigger whose patient is not in the records is what production calls "record unavailable".
	orphan := parseCases(t, evalCaseJSON("orphan", "", potassiumJSON("t-k-orphan", "no-such-patient", 6.9, "2026-12-04"),
		`{"priority":"stat","route":"oncall"}`))
	rep, err := Eval(ctx, cfg, orphan)
	if err != nil {
		t.Fatal(err)
	}
	if r := rep.Results[0]; r.Disposition != rules.ManualTriage || r.Unavailable == "" || !slices.Contains(r.Flags, string(rules.FlagRecordUnavailable)) {
		t.Errorf("orphan trigger: %+v", r)
	}
}
