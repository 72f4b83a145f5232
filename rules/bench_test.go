package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"testing"
	"time"
)

// benchInput is one potassium trigger with a 500-resource context (older
// labs, vitals, conditions, medications and the Patient last), and no age
// given, so the age-banded potassium limits make Evaluate look for the
// Patient.
func benchInput() Input {
	ctx := make([]json.RawMessage, 0, 500)
	for i := range 499 {
		var r string
		switch i % 4 {
		case 0:
			r = fmt.Sprintf(`{"resourceType":"Observation","id":"o%d","status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"2951-2","display":"Sodium"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-01-%02dT08:00:00Z","valueQuantity":{"value":%d,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"}}`, i, i%28+1, 135+i%8)
		case 1:
			r = fmt.Sprintf(`{"resourceType":"Observation","id":"v%d","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"85354-9"}]},"component":[{"code":{"coding":[{"system":"http://loinc.org","code":"8480-6"}]},"valueQuantity":{"value":%d,"unit":"mm[Hg]"}},{"code":{"coding":[{"system":"http://loinc.org","code":"8462-4"}]},"valueQuantity":{"value":80,"unit":"mm[Hg]"}}]}`, i, 110+i%30)
		case 2:
			r = fmt.Sprintf(`{"resourceType":"Condition","id":"c%d","clinicalStatus":{"coding":[{"code":"active"}]},"code":{"coding":[{"system":"http://snomed.info/sct","code":"44054006","display":"Diabetes"}]},"subject":{"reference":"Patient/p1"}}`, i)
		default:
			r = fmt.Sprintf(`{"resourceType":"MedicationRequest","id":"m%d","status":"active","intent":"order","medicationCodeableConcept":{"coding":[{"system":"http://www.nlm.nih.gov/research/umls/rxnorm","code":"860975"}]},"subject":{"reference":"Patient/p1"}}`, i)
		}
		ctx = append(ctx, json.RawMessage(r))
	}
	ctx = append(ctx, json.RawMessage(`{"resourceType":"Patient","id":"p1","birthDate":"1960-05-01","gender":"female"}`))
	return Input{
		Trigger: json.RawMessage(`{"resourceType":"Observation","id":"k1","meta":{"versionId":"1"},"status":"final","category":[{"coding":[{"system":"http://terminology.hl7.org/CodeSystem/observation-category","code":"laboratory"}]}],"code":{"coding":[{"system":"http://loinc.org","code":"6298-4","display":"Potassium [Moles/volume] in Blood"}]},"subject":{"reference":"Patient/p1"},"effectiveDateTime":"2026-12-04T08:00:00Z","valueQuantity":{"value":6.9,"unit":"mmol/L","system":"http://unitsofmeasure.org","code":"mmol/L"},"referenceRange":[{"low":{"value":3.5,"unit":"mmol/L"},"high":{"value":5.1,"unit":"mmol/L"}}]}`),
		Context: ctx,
		Now:     time.Date(2026, 12, 4, 9, 0, 0, 0, time.UTC),
	}
}

// BenchmarkEvaluate runs the full default pack on one trigger.
func BenchmarkEvaluate(b *testing.B) {
	p := mustDefault(b)
	in := benchInput()
	b.ReportAllocs()
	for b.Loop() {
		out, err := p.Evaluate(in)
		if err != nil || !out.Escalates() {
			b.Fatal("no escalation", err)
		}
	}
}

// plainLimits is the hand-written equivalent of the critical table.
type plainLimit struct{ low, high float64 }

// plainEvaluate is a plain Go implementation of the same thresholds: decode
// the trigger, map the LOINC code, convert the unit, compare, and look for
// the Patient's age in the context.
func plainEvaluate(in Input) (bool, error) {
	var o struct {
		Status string `json:"status"`
		Code   struct {
			Coding []struct{ System, Code string } `json:"coding"`
		} `json:"code"`
		ValueQuantity *struct {
			Value      float64 `json:"value"`
			Comparator string  `json:"comparator"`
			Unit       string  `json:"unit"`
			Code       string  `json:"code"`
		} `json:"valueQuantity"`
		Interpretation []struct {
			Coding []struct{ Code string } `json:"coding"`
		} `json:"interpretation"`
	}
	if err := json.Unmarshal(in.Trigger, &o); err != nil {
		return false, err
	}
	if o.Status == "cancelled" || o.Status == "entered-in-error" {
		return false, nil
	}
	for _, it := range o.Interpretation {
		for _, c := range it.Coding {
			if c.Code == "HH" || c.Code == "LL" || c.Code == "AA" {
				return true, nil
			}
		}
	}
	if o.ValueQuantity == nil {
		return false, nil
	}
	var analyte string
	for _, c := range o.Code.Coding {
		switch c.Code {
		case "2823-3", "6298-4":
			analyte = "potassium"
		case "2951-2", "2947-0":
			analyte = "sodium"
		case "2345-7", "2339-0", "41653-7":
			analyte = "glucose"
		}
	}
	lim := map[string]plainLimit{"potassium": {2.8, 6.2}, "sodium": {120, 160}, "glucose": {50, 450}}[analyte]
	v := o.ValueQuantity.Value
	switch u := o.ValueQuantity.Code; {
	case analyte == "glucose" && u == "mmol/L":
		v *= 18.016
	case u == "mmol/L" || u == "mEq/L" || u == "mg/dL":
	default:
		return false, nil
	}
	if in.PatientAgeYears == nil {
		for _, r := range in.Context {
			if !bytes.Contains(r[:min(len(r), 48)], []byte(`"Patient"`)) {
				continue
			}
			var p struct{ ResourceType, BirthDate string }
			if json.Unmarshal(r, &p) == nil && p.ResourceType == "Patient" {
				break
			}
		}
	}
	return analyte != "" && (v < lim.low || v > lim.high), nil
}

// BenchmarkPlainGo is the baseline for BenchmarkEvaluate.
func BenchmarkPlainGo(b *testing.B) {
	in := benchInput()
	b.ReportAllocs()
	for b.Loop() {
		ok, err := plainEvaluate(in)
		if err != nil || !ok {
			b.Fatal("no escalation", err)
		}
	}
}
