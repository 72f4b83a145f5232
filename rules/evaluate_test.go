package rules

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestGoldenCases(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	cases, err := LoadCases(os.DirFS("testdata"), "cases")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 8 {
		t.Fatalf("%d golden cases, want >= 8", len(cases))
	}
	for _, r := range RunCases(p, cases) {
		if !r.Pass {
			t.Errorf("%s:\n%s\nreasons: %v", r.Name, r.Diff, r.Got.Reasons)
		}
	}
	if d := DiffPacks(p, mustDefault(t), cases); len(d) != 0 {
		t.Errorf("DiffPacks of a pack with itself: %v", d)
	}
}

// obsJSON builds an Observation with the given extra fields.
func obsJSON(code string, fields string) json.RawMessage {
	s := `{"resourceType":"Observation","id":"o1","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"` + code + `"}]}`
	if fields != "" {
		s += "," + fields
	}
	return json.RawMessage(s + "}")
}

func qty(v string, unit string) string {
	if unit == "" {
		return `"valueQuantity":{"value":` + v + `}`
	}
	return `"valueQuantity":{"value":` + v + `,"unit":"` + unit + `","system":"http://unitsofmeasure.org","code":"` + unit + `"}`
}

func f64(v float64) *float64 { return &v }

func TestEvaluateObservations(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	tests := []struct {
		name    string
		trigger json.RawMessage
		in      func(*Input)
		disp    Disposition
		rules   []string
		flags   []Flag
	}{
		{"potassium critical", obsJSON("6298-4", qty("6.9", "mmol/L")), nil, Escalated, []string{"critical-potassium-high"}, []Flag{FlagPhysicianHold}},
		{"potassium mEq/L same as mmol/L", obsJSON("2823-3", qty("2.5", "mEq/L")), nil, Escalated, []string{"critical-potassium-low"}, nil},
		{"sodium synthea code", obsJSON("2947-0", qty("118", "mmol/L")), nil, Escalated, []string{"critical-sodium-low"}, nil},
		{"glucose mmol/L converted", obsJSON("2339-0", qty("28", "mmol/L")), nil, Escalated, []string{"critical-glucose-high"}, nil},
		{"glucose 400 mg/dL not critical", obsJSON("2345-7", qty("400", "mg/dL")), nil, DispositionNone, nil, nil},
		{"hemoglobin g/L converted", obsJSON("718-7", qty("65", "g/L")), nil, Escalated, []string{"critical-hemoglobin-low"}, nil},
		{"platelets 10*9/L", obsJSON("777-3", qty("15", "10*9/L")), nil, Escalated, []string{"critical-platelets-low"}, nil},
		{"platelets K/uL", obsJSON("777-3", qty("1200", "K/uL")), nil, Escalated, []string{"critical-platelets-high"}, nil},
		{"wbc 10^3/uL", obsJSON("6690-2", qty("1.5", "10^3/uL")), nil, Escalated, []string{"critical-wbc-low"}, nil},
		{"calcium mmol/L converted", obsJSON("17861-6", qty("3.5", "mmol/L")), nil, Escalated, []string{"critical-calcium-total-high"}, nil},
		{"magnesium mmol/L converted", obsJSON("19123-9", qty("0.3", "mmol/L")), nil, Escalated, []string{"critical-magnesium-low"}, nil},
		{"lactate at limit is critical (>=)", obsJSON("2524-7", qty("3.5", "mmol/L")), nil, Escalated, []string{"critical-lactate-high"}, nil},
		{"comparator < below high is not critical", obsJSON("6298-4", `"valueQuantity":{"value":2.0,"comparator":"<","unit":"mmol/L"}`), nil, Escalated, []string{"critical-potassium-low"}, nil},
		{"comparator > above high is critical", obsJSON("6298-4", `"valueQuantity":{"value":6.5,"comparator":">","unit":"mmol/L"}`), nil, Escalated, []string{"critical-potassium-high"}, nil},
		{"comparator > 5 is indeterminate", obsJSON("6298-4", `"valueQuantity":{"value":5,"comparator":">","unit":"mmol/L"}`), nil, ManualTriage, []string{"guard-indeterminate-value"}, nil},
		{"valueString <2.0", obsJSON("6298-4", `"valueString":"<2.0"`), nil, ManualTriage, []string{"guard-unknown-unit"}, []Flag{FlagUnknownUnit}},
		{"valueString >1000 INR dimensionless", obsJSON("6301-6", `"valueString":">1000"`), nil, Escalated, []string{"critical-inr-high"}, nil},
		{"valueString text on table analyte", obsJSON("6298-4", `"valueString":"hemolyzed, see note"`), nil, ManualTriage, []string{"guard-unreadable-value"}, nil},
		{"no value", obsJSON("6298-4", ""), nil, DispositionNone, nil, nil},
		{"no value but HH", obsJSON("6298-4", `"interpretation":[{"coding":[{"code":"HH"}]}]`), nil, Escalated, []string{"critical-lab-flag"}, nil},
		{"dataAbsentReason", obsJSON("6298-4", `"dataAbsentReason":{"coding":[{"code":"error"}]}`), nil, DispositionNone, nil, nil},
		{"valueCodeableConcept", obsJSON("94500-6", `"valueCodeableConcept":{"coding":[{"system":"http://snomed.info/sct","code":"260373001"}]}`), nil, DispositionNone, nil, nil},
		{"valueCodeableConcept with A", obsJSON("94500-6", `"valueCodeableConcept":{"text":"Detected"},"interpretation":[{"coding":[{"code":"A"}]}]`), nil, Held, []string{"abnormal-lab-flag"}, []Flag{FlagPhysicianHold}},
		{"preliminary is evaluated", []byte(strings.Replace(string(obsJSON("6298-4", qty("7", "mmol/L"))), `"final"`, `"preliminary"`, 1)), nil, Escalated, []string{"critical-potassium-high"}, nil},
		{"cancelled is ignored", []byte(strings.Replace(string(obsJSON("6298-4", qty("7", "mmol/L"))), `"final"`, `"cancelled"`, 1)), nil, DispositionNone, nil, nil},
		{"entered-in-error is ignored", []byte(strings.Replace(string(obsJSON("6298-4", qty("7", "mmol/L")+`,"interpretation":[{"coding":[{"code":"HH"}]}]`)), `"final"`, `"entered-in-error"`, 1)), nil, DispositionNone, nil, nil},
		{"unknown status code still evaluated", []byte(strings.Replace(string(obsJSON("6298-4", qty("7", "mmol/L"))), `"final"`, `"brand-new-status"`, 1)), nil, Escalated, []string{"critical-potassium-high"}, nil},
		{"missing unit", obsJSON("6298-4", qty("7", "")), nil, ManualTriage, []string{"guard-unknown-unit"}, []Flag{FlagUnknownUnit}},
		{"missing unit on pH is fine", obsJSON("2744-1", qty("7.1", "")), nil, Escalated, []string{"critical-ph-arterial-low"}, nil},
		{"unknown unit but LL escalates", obsJSON("6298-4", qty("2", "zorks")+`,"interpretation":[{"coding":[{"code":"LL"}]}]`), nil, Escalated, []string{"critical-lab-flag", "guard-unknown-unit"}, []Flag{FlagUnknownUnit, FlagPhysicianHold}},
		{"several codings, LOINC second", json.RawMessage(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"urn:local","code":"K+"},{"system":"http://loinc.org","code":"6298-4"}]},` + qty("6.9", "mmol/L") + `}`), nil, Escalated, []string{"critical-potassium-high"}, nil},
		{"tenant code map", json.RawMessage(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"urn:lab","code":"KPOT"}]},` + qty("6.9", "mmol/L") + `}`),
			func(in *Input) { in.Tenant.CodeMap = map[string]string{"urn:lab|KPOT": "potassium"} }, Escalated, []string{"critical-potassium-high"}, nil},
		{"tenant override raises limit", obsJSON("6298-4", qty("6.4", "mmol/L")),
			func(in *Input) { in.Tenant.Overrides = []ThresholdOverride{{Analyte: "potassium", High: f64(6.5)}} }, DispositionNone, nil, nil},
		{"tenant override in other unit", obsJSON("2345-7", qty("300", "mg/dL")),
			func(in *Input) {
				in.Tenant.Overrides = []ThresholdOverride{{Analyte: "glucose", High: f64(15), Unit: "mmol/L"}}
			}, Escalated, []string{"critical-glucose-high"}, nil},
		{"pediatric glucose band", obsJSON("2345-7", qty("45", "mg/dL")), func(in *Input) { in.PatientAgeYears = f64(0.01) }, DispositionNone, nil, nil},
		{"adult glucose 45 critical", obsJSON("2345-7", qty("45", "mg/dL")), func(in *Input) { in.PatientAgeYears = f64(40) }, Escalated, []string{"critical-glucose-low"}, nil},
		{"age from Patient in context", obsJSON("2345-7", qty("45", "mg/dL")), func(in *Input) {
			in.Now = time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
			in.Context = []json.RawMessage{json.RawMessage(`{"resourceType":"Patient","id":"p","birthDate":"2026-11-30"}`)}
		}, DispositionNone, nil, nil},
		{"H held", obsJSON("4548-4", qty("8.1", "%")+`,"interpretation":[{"coding":[{"code":"H"}]}]`), nil, Held, []string{"abnormal-lab-flag"}, []Flag{FlagPhysicianHold}},
		{"interpretation text only", obsJSON("4548-4", qty("8.1", "%")+`,"interpretation":[{"text":"Critical high"}]`), nil, Escalated, []string{"critical-lab-flag"}, nil},
		{"outside own range, no interpretation", obsJSON("1742-6", qty("80", "U/L")+`,"referenceRange":[{"low":{"value":7,"unit":"U/L"},"high":{"value":56,"unit":"U/L"}}]`), nil, Held, []string{"abnormal-outside-reference-range"}, nil},
		{"inside own range", obsJSON("1742-6", qty("30", "U/L")+`,"referenceRange":[{"low":{"value":7,"unit":"U/L"},"high":{"value":56,"unit":"U/L"}}]`), nil, DispositionNone, nil, nil},
		{"interpretation N beats range", obsJSON("1742-6", qty("80", "U/L")+`,"interpretation":[{"coding":[{"code":"N"}]}],"referenceRange":[{"high":{"value":56,"unit":"U/L"}}]`), nil, DispositionNone, nil, nil},
		{"troponin per-assay default", obsJSON("67151-1", qty("20", "ng/L")), nil, Escalated, []string{"critical-troponin-high"}, nil},
		{"troponin ng/mL converted, below URL", obsJSON("10839-9", qty("0.02", "ng/mL")), nil, DispositionNone, nil, nil},
		{"troponin below detection", obsJSON("89579-7", `"valueQuantity":{"value":3,"comparator":"<","unit":"ng/L"}`), nil, DispositionNone, nil, nil},
		{"bp diastolic alone", obsJSON("8462-4", qty("125", "mm[Hg]")), nil, Escalated, []string{"critical-diastolic-bp-high"}, nil},
		{"bp panel normal", json.RawMessage(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},` + qty("128", "mm[Hg]") + `},{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},` + qty("82", "mm[Hg]") + `}]}`), nil, DispositionNone, nil, nil},
		{"bp panel diastolic 120", json.RawMessage(`{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},` + qty("170", "mm[Hg]") + `},{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},` + qty("120", "mm[Hg]") + `}]}`), nil, Escalated, []string{"critical-diastolic-bp-high"}, nil},
		{"amended, not yet communicated", []byte(strings.Replace(string(obsJSON("2951-2", qty("140", "mmol/L"))), `"final"`, `"corrected"`, 1)), nil, DispositionNone, nil, nil},
		{"amended and communicated", []byte(strings.Replace(string(obsJSON("2951-2", qty("140", "mmol/L"))), `"final"`, `"corrected"`, 1)), func(in *Input) { in.PreviouslyCommunicated = true }, Held, []string{"abnormal-amended-result"}, nil},
		{"malformed shape", json.RawMessage(`{"resourceType":"Observation","status":"final","interpretation":"HH"}`), nil, ManualTriage, []string{"guard-unreadable-text"}, nil},
		{"unsupported resource", json.RawMessage(`{"resourceType":"Condition","id":"c"}`), nil, DispositionNone, nil, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			in := Input{Trigger: tc.trigger}
			if tc.in != nil {
				tc.in(&in)
			}
			out, err := p.Evaluate(in)
			if err != nil {
				t.Fatal(err)
			}
			if got := ruleIDs(out); !slices.Equal(got, sorted(tc.rules)) {
				t.Errorf("rules %v, want %v (reasons %q)", got, tc.rules, out.Reasons)
			}
			if out.Disposition != tc.disp {
				t.Errorf("disposition %s, want %s", out.Disposition, tc.disp)
			}
			for _, f := range tc.flags {
				if !out.Flags.Has(f) {
					t.Errorf("flag %s missing: %v", f, out.Flags)
				}
			}
			if out.PackSHA256 != p.SHA256() || out.PackVersion != p.Version() {
				t.Error("outcome does not carry the pack version and hash")
			}
		})
	}
}

func sorted(xs []string) []string {
	out := append([]string{}, xs...)
	slices.Sort(out)
	return out
}

func TestEvaluateText(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	b64 := base64.StdEncoding.EncodeToString([]byte("I can't breathe"))
	tests := []struct {
		name    string
		trigger string
		disp    Disposition
		rules   []string
	}{
		{"message red flag", `{"resourceType":"Communication","status":"completed","payload":[{"contentString":"hi"},{"contentString":"my chest hurts"}]}`, Escalated, []string{"redflag-chest-pain"}},
		{"topic is scanned too", `{"resourceType":"Communication","status":"completed","topic":{"text":"passed out"},"payload":[{"contentString":"see subject"}]}`, Escalated, []string{"redflag-fainting-collapse"}},
		{"benign message", `{"resourceType":"Communication","status":"completed","payload":[{"contentString":"refill for my inhaler please"}]}`, DispositionNone, nil},
		{"image attachment", `{"resourceType":"Communication","status":"completed","payload":[{"contentString":"see photo"},{"contentAttachment":{"contentType":"image/png","url":"x"}}]}`, ManualTriage, []string{"guard-unreadable-text"}},
		{"text attachment is read", `{"resourceType":"Communication","status":"completed","payload":[{"contentAttachment":{"contentType":"text/plain","data":"` + b64 + `"}}]}`, Escalated, []string{"redflag-breathing"}},
		{"reference payload", `{"resourceType":"Communication","status":"completed","payload":[{"contentReference":{"reference":"DocumentReference/1"}}]}`, ManualTriage, []string{"guard-unreadable-text"}},
		{"attachment plus red flag", `{"resourceType":"Communication","status":"completed","payload":[{"contentString":"vomiting blood"},{"contentAttachment":{"contentType":"image/png"}}]}`, Escalated, []string{"guard-unreadable-text", "redflag-bleeding"}},
		{"script not covered", `{"resourceType":"Communication","status":"completed","payload":[{"contentString":"У меня сильная боль в груди"}]}`, ManualTriage, []string{"guard-unreadable-text"}},
		{"entered-in-error message ignored", `{"resourceType":"Communication","status":"entered-in-error","payload":[{"contentString":"chest pain"}]}`, DispositionNone, nil},
		{"questionnaire nested answer", `{"resourceType":"QuestionnaireResponse","status":"completed","item":[{"linkId":"1","text":"Symptoms","item":[{"linkId":"1.1","text":"Describe","answer":[{"valueString":"worst headache of my life"}]}]}]}`, Escalated, []string{"redflag-severe-headache"}},
		{"questionnaire yes/no", `{"resourceType":"QuestionnaireResponse","status":"completed","item":[{"linkId":"1","text":"Are you having thoughts of harming yourself?","answer":[{"valueBoolean":true}]},{"linkId":"2","text":"Any chest pain?","answer":[{"valueBoolean":false}]}]}`, Escalated, []string{"redflag-self-harm"}},
		{"questionnaire coding display", `{"resourceType":"QuestionnaireResponse","status":"completed","item":[{"linkId":"1","answer":[{"valueCoding":{"code":"x","display":"Seizure"}}]}]}`, Escalated, []string{"redflag-seizure"}},
		{"questionnaire benign", `{"resourceType":"QuestionnaireResponse","status":"completed","item":[{"linkId":"1","text":"Any chest pain?","answer":[{"valueBoolean":false}]},{"linkId":"2","answer":[{"valueString":"just a cold"}]}]}`, DispositionNone, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			out, err := p.Evaluate(Input{Trigger: json.RawMessage(tc.trigger)})
			if err != nil {
				t.Fatal(err)
			}
			if got := ruleIDs(out); !slices.Equal(got, sorted(tc.rules)) {
				t.Errorf("rules %v, want %v (reasons %q)", got, tc.rules, out.Reasons)
			}
			if out.Disposition != tc.disp {
				t.Errorf("disposition %s, want %s", out.Disposition, tc.disp)
			}
			for _, h := range out.Hits {
				if h.Kind == KindRedFlag {
					for _, v := range h.Values {
						if v.Category == "" || v.Phrase == "" {
							t.Errorf("red-flag hit %s does not name category and phrase", h.RuleID)
						}
					}
				}
			}
		})
	}
}

func TestEvaluateErrors(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	for _, trig := range []string{"", "not json", "[1,2]", `{"id":"x"}`, `{"resourceType":`} {
		if _, err := p.Evaluate(Input{Trigger: json.RawMessage(trig)}); !errors.Is(err, ErrNotResource) {
			t.Errorf("%q: err %v, want ErrNotResource", trig, err)
		}
	}
	_, err := p.Evaluate(Input{Trigger: obsJSON("6298-4", ""), Tenant: TenantConfig{Overrides: []ThresholdOverride{{Analyte: "potassium", High: f64(7), Unit: "bogus"}}}})
	if err == nil || strings.Contains(err.Error(), "7") {
		t.Errorf("bad tenant override: %v", err)
	}
	if err := p.ValidateTenant(TenantConfig{CodeMap: map[string]string{"a|b": "unobtainium"}}); err == nil {
		t.Error("unknown analyte in code map accepted")
	}
}

func TestOutcomeFloor(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	out, err := p.Evaluate(Input{Trigger: obsJSON("6298-4", qty("6.9", "mmol/L"))})
	if err != nil {
		t.Fatal(err)
	}
	if !out.Escalates() || out.Queue != "oncall" || out.Priority != Stat {
		t.Fatalf("outcome %+v", out)
	}
	f := out.Floor()
	draft := Floor{Disposition: Suggested, Priority: Routine, Flags: Flags{FlagLowConfidence}, Queue: "pharmacy"}
	got := f.Raise(draft)
	if got.Disposition != Escalated || got.Priority != Stat || got.Queue != "oncall" || !got.Flags.Has(FlagLowConfidence) || !got.Flags.Has(FlagPhysicianHold) {
		t.Errorf("Raise lowered the floor: %+v", got)
	}
	if MaxDisposition() != DispositionNone || MaxDisposition(Held, Escalated, Suggested) != Escalated {
		t.Error("MaxDisposition")
	}
	if MaxPriority(Urgent, Routine) != Urgent || MaxPriority() != PriorityNone {
		t.Error("MaxPriority")
	}
	// A guard plus a hold: the hold's queue wins.
	out, _ = p.Evaluate(Input{Trigger: obsJSON("6298-4", qty("4", "zorks")+`,"interpretation":[{"coding":[{"code":"H"}]}]`)})
	if out.Disposition != Held || out.Queue != "physician" || !out.Flags.Has(FlagUnknownUnit) {
		t.Errorf("outcome %+v", out)
	}
}

func TestReplayIsDeterministic(t *testing.T) {
	t.Parallel()
	in := Input{Trigger: json.RawMessage(`{"resourceType":"Communication","status":"completed","payload":[{"contentString":"chest pain and I passed out, also vomiting blood"}]}`)}
	a, err := mustDefault(t).Evaluate(in)
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		b, _ := mustDefault(t).Evaluate(in)
		ja, _ := json.Marshal(a)
		jb, _ := json.Marshal(b)
		if string(ja) != string(jb) {
			t.Fatalf("replay differs:\n%s\n%s", ja, jb)
		}
	}
}

func TestEvalBundle(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	bundle := `{"resourceType":"Bundle","type":"collection","entry":[
	 {"fullUrl":"urn:uuid:1","resource":{"resourceType":"Patient","id":"p1","birthDate":"2026-11-20"}},
	 {"fullUrl":"urn:uuid:2","resource":` + string(obsJSON("2345-7", qty("45", "mg/dL"))) + `},
	 {"fullUrl":"urn:uuid:3","resource":{"resourceType":"Observation","id":"o3","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"6298-4"}]},` + qty("7.5", "mmol/L") + `}}]}`
	now := time.Date(2026, 12, 4, 0, 0, 0, 0, time.UTC)
	out, err := EvalBundle(p, []byte(bundle), "Observation/o3", now, TenantConfig{})
	if err != nil || !slices.Equal(ruleIDs(out), []string{"critical-potassium-high"}) {
		t.Fatalf("o3: %v %v", ruleIDs(out), err)
	}
	// The neonate's glucose 45 is above the neonatal low limit (40).
	out, err = EvalBundle(p, []byte(bundle), "urn:uuid:2", now, TenantConfig{})
	if err != nil || len(out.Hits) != 0 {
		t.Fatalf("o1: %v %v", ruleIDs(out), err)
	}
	out, err = EvalBundle(p, []byte(bundle), "", now, TenantConfig{})
	if err != nil || len(out.Hits) != 0 {
		t.Fatalf("first entry (Patient): %v %v", ruleIDs(out), err)
	}
	if _, err := EvalBundle(p, []byte(bundle), "nope", now, TenantConfig{}); !errors.Is(err, ErrTriggerNotFound) {
		t.Fatalf("missing trigger: %v", err)
	}
	out, err = EvalBundle(p, obsJSON("6298-4", qty("7.5", "mmol/L")), "", now, TenantConfig{})
	if err != nil || !out.Escalates() {
		t.Fatalf("single resource: %v %v", ruleIDs(out), err)
	}
}

// TestSyntheaFixtures evaluates every Observation of the shared Synthea
// bundles (when present) and checks that Synthea's potassium, sodium and
// glucose codes resolve to analytes and that nothing errors.
func TestSyntheaFixtures(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob("../../shared/fixtures/synthea/*.json")
	if len(files) == 0 {
		t.Skip("no Synthea fixtures at ../../shared/fixtures/synthea")
	}
	p := mustDefault(t)
	seen := map[string]int{}
	for _, fn := range files {
		b, err := os.ReadFile(fn)
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
			var rt struct {
				ResourceType string `json:"resourceType"`
			}
			if json.Unmarshal(e.Resource, &rt) != nil || rt.ResourceType != "Observation" {
				continue
			}
			out, err := p.Evaluate(Input{Trigger: e.Resource})
			if err != nil {
				t.Fatalf("%s: %v", filepath.Base(fn), err)
			}
			for _, h := range out.Hits {
				for _, v := range h.Values {
					seen[v.Code]++
				}
				if h.RuleID == "guard-unknown-unit" {
					t.Errorf("Synthea unit not understood: %s %s", h.Values[0].Code, h.Values[0].OriginalUnit)
				}
			}
			var o observation
			_ = json.Unmarshal(e.Resource, &o)
			for _, c := range o.Code.Coding {
				if c.Code == "6298-4" || c.Code == "2947-0" || c.Code == "2339-0" {
					a, _, _ := p.resolve(o.Code, tenantTables{})
					if a == nil {
						t.Errorf("Synthea code %s did not resolve", c.Code)
					}
					seen["resolved "+c.Code]++
				}
			}
		}
	}
	t.Logf("Synthea: %v", fmt.Sprint(seen))
}

func TestConcurrentEvaluate(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	inputs := []Input{benchInput(),
		{Trigger: json.RawMessage(`{"resourceType":"Communication","status":"completed","payload":[{"contentString":"no fever but I can't breathe"}]}`)}}
	want := make([]Outcome, len(inputs))
	for i, in := range inputs {
		want[i], _ = p.Evaluate(in)
	}
	done := make(chan error)
	for g := range 4 {
		go func() {
			for k := range 50 {
				i := (g + k) % len(inputs)
				got, err := p.Evaluate(inputs[i])
				if err != nil || got.Disposition != want[i].Disposition || len(got.Hits) != len(want[i].Hits) {
					done <- fmt.Errorf("goroutine %d: outcome differs", g)
					return
				}
			}
			done <- nil
		}()
	}
	for range 4 {
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

func TestSelector(t *testing.T) {
	t.Parallel()
	tests := []struct {
		when string
		want selector
	}{
		{`Fact == "value" && Analyte == "potassium" && AboveCriticalHigh`, selector{fact: "value", analyte: "potassium"}},
		{`Fact == "value" && HasValue || Amended`, selector{}},
		{`Fact == "red_flag" and (Category == "x" or Category == "y")`, selector{fact: "red_flag"}},
		{`not (Fact == "value")`, selector{}},
		{`Fact != "value"`, selector{}},
	}
	for _, tc := range tests {
		if got := selectorOf(tc.when); got != tc.want {
			t.Errorf("%s: got %+v, want %+v", tc.when, got, tc.want)
		}
	}
}
