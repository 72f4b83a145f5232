package llm_test

import (
	"context"
	"strings"
	"testing"

	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/rules"
)

func TestRedact(t *testing.T) {
	t.Parallel()
	ids := []string{"Alfreda", "Wyman", "Alfreda Wyman", "555-397-1190", "3287b938-4670-47eb-91e5-e0ce3df71405", "1980-10-28", "10/28/1980", "October 28, 1980", "924 Osinski Meadow"}
	tests := []struct {
		name   string
		in     string
		gone   []string
		kept   []string
		useIDs bool
	}{
		{"name and phone", "This is alfreda WYMAN, call (555) 397-1190.", []string{"alfreda", "WYMAN", "397"}, []string{"call"}, true},
		{"phone digits only", "my cell 5553971190", []string{"5553971190"}, []string{"my cell"}, true},
		{"generic phone", "call 617.555.0134 please", []string{"617.555.0134"}, []string{"please"}, false},
		{"email", "mail me at a.b-c@example.co.uk", []string{"a.b-c@example.co.uk"}, []string{"mail me"}, false},
		{"ssn", "SSN 123-45-6789", []string{"123-45-6789"}, nil, false},
		{"mrn label", "MRN: A1234567 and record number 998877", []string{"A1234567", "998877"}, nil, false},
		{"dob label", "DOB 3/4/1950, born March 4, 1950", []string{"3/4/1950", "1950"}, nil, false},
		{"birth date formats", "born 1980-10-28 (10/28/1980)", []string{"1980-10-28", "10/28/1980"}, nil, true},
		{"street address", "I live at 12 Elm Street now", []string{"12 Elm Street"}, []string{"I live at"}, false},
		{"clinical numbers kept", "glucose 250 mg/dL and BP 150/95 since 2019-03-04, 3 days", nil, []string{"250 mg/dL", "150/95", "2019-03-04", "3 days"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var use []string
			if tt.useIDs {
				use = ids
			}
			got := llm.Redact(tt.in, use)
			for _, g := range tt.gone {
				if strings.Contains(got, g) {
					t.Errorf("%q survived redaction", g)
				}
			}
			for _, k := range tt.kept {
				if !strings.Contains(got, k) {
					t.Errorf("%q was redacted", k)
				}
			}
		})
	}
}

func TestPatientIdentifiers(t *testing.T) {
	t.Parallel()
	snap := snapshotWith(t, message("hello"))
	ids := llm.PatientIdentifiers(snap.Patient)
	for _, want := range []string{patientName, patientFam, patientTel, patientMRN, patientSSN, patientDOB, "10/28/1980", "October 28, 1980", "924 Osinski Meadow"} {
		found := false
		for _, id := range ids {
			if id == want {
				found = true
			}
		}
		if !found {
			t.Errorf("identifier %q not extracted", want)
		}
	}
}

func TestBaseline(t *testing.T) {
	t.Parallel()
	obs := `{"resourceType":"Observation","id":"obs-%[1]s","status":"final","code":{"text":"Glucose"},"subject":{"reference":"Patient/` + patientID + `"},"effectiveDateTime":"2021-01-14T08:00:00Z","valueQuantity":{"value":100,"unit":"mg/dL"}}`
	qr := `{"resourceType":"QuestionnaireResponse","id":"qr-%[1]s","status":"completed","subject":{"reference":"Patient/` + patientID + `"},"authored":"2021-01-14T08:00:00Z"}`
	tests := []struct {
		name   string
		trig   string
		queues []string
		route  string
		conf   float64
	}{
		{"refill", message("Can you renew my prescription?"), queues, "pharmacy", llm.BaselineConfidenceRefill},
		{"scheduling", message("I need to reschedule my appointment"), queues, "front_desk", llm.BaselineConfidenceScheduling},
		{"other message", message("I have a question about my results"), queues, "triage", llm.BaselineConfidenceMessage},
		{"observation", obs, queues, "physician", llm.BaselineConfidenceResult},
		{"questionnaire", qr, queues, "triage", llm.BaselineConfidenceQuestionnaire},
		{"route not configured falls back to triage", message("refill please"), []string{"triage"}, "triage", llm.BaselineConfidenceRefill},
	}
	b := llm.NewBaseline()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			snap := snapshotWith(t, tt.trig)
			res, err := b.Draft(context.Background(), llm.Request{Snapshot: snap, Queues: tt.queues, Now: now})
			if err != nil {
				t.Fatal(err)
			}
			d := res.Draft
			if d.Route != tt.route || d.Confidence != tt.conf || !d.Baseline || d.Priority != rules.Routine ||
				len(d.Claims) != 1 || d.Claims[0].Evidence[0] != snap.Trigger.Ref().String() || res.Call.Drafter != "baseline" {
				t.Fatalf("baseline draft = %+v", d)
			}
		})
	}
}
