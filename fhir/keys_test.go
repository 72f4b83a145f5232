package fhir

import (
	"testing"
)

func res(t *testing.T, raw string) *Resource {
	t.Helper()
	r, err := newResource([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDecisionKey(t *testing.T) {
	t.Parallel()
	base := `{"resourceType":"Observation","id":"o1","status":"final","valueQuantity":{"value":6.50,"unit":"g/dL"}}`
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"meta added", base, `{"resourceType":"Observation","id":"o1","meta":{"lastUpdated":"2026-01-01T00:00:00Z","tag":[{"code":"x"}]},"status":"final","valueQuantity":{"value":6.50,"unit":"g/dL"}}`, true},
		{"key order and whitespace", base, `{ "id":"o1", "resourceType":"Observation","valueQuantity":{"unit":"g/dL","value":6.50},"status":"final"}`, true},
		{"value changed", base, `{"resourceType":"Observation","id":"o1","status":"final","valueQuantity":{"value":6.6,"unit":"g/dL"}}`, false},
		{"status changed", base, `{"resourceType":"Observation","id":"o1","status":"amended","valueQuantity":{"value":6.50,"unit":"g/dL"}}`, false},
		{"nested meta is content", `{"resourceType":"Observation","id":"o1","contained":[{"resourceType":"Patient","id":"p","meta":{"versionId":"1"}}]}`,
			`{"resourceType":"Observation","id":"o1","contained":[{"resourceType":"Patient","id":"p","meta":{"versionId":"2"}}]}`, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, b := DecisionKey(res(t, tt.a)), DecisionKey(res(t, tt.b))
			if (a == b) != tt.same || len(a) != len("sha256:")+64 {
				t.Fatalf("keys %s / %s, same = %v, want %v", a, b, a == b, tt.same)
			}
		})
	}
	if got := DecisionKey(res(t, `{"resourceType":"Observation","id":"o1","meta":{"versionId":"3"}}`)); got != "3" {
		t.Fatalf("versioned key = %q", got)
	}
}

func TestPatientRefOf(t *testing.T) {
	t.Parallel()
	tests := []struct {
		raw  string
		want string // "" = none
	}{
		{`{"resourceType":"Patient","id":"p1"}`, "Patient/p1"},
		{`{"resourceType":"Observation","id":"o","subject":{"reference":"Patient/p1"}}`, "Patient/p1"},
		{`{"resourceType":"Observation","id":"o","subject":{"reference":"Group/g"}}`, ""},
		{`{"resourceType":"AllergyIntolerance","id":"a","patient":{"reference":"https://ehr.example/fhir/Patient/p2/_history/4"}}`, "Patient/p2/_history/4"},
		{`{"resourceType":"Communication","id":"c","sender":{"reference":"Patient/p3"},"recipient":[{"reference":"Practitioner/d"}]}`, "Patient/p3"},
		{`{"resourceType":"Communication","id":"c","subject":{"reference":"Patient/p4"},"sender":{"reference":"Practitioner/d"}}`, "Patient/p4"},
		{`{"resourceType":"Task","id":"t","for":{"reference":"Patient/p5"}}`, "Patient/p5"},
		{`{"resourceType":"Observation","id":"o","subject":{"reference":"urn:uuid:abc"}}`, ""},
		{`{"resourceType":"Observation","id":"o","subject":"Patient/p1"}`, ""},
		{`{"resourceType":"Observation","id":"o","subject":7,"patient":{"reference":"Patient/p6"}}`, "Patient/p6"},
	}
	for _, tt := range tests {
		got, ok := PatientRefOf(res(t, tt.raw))
		if (tt.want == "") == ok || (ok && got.String() != tt.want) {
			t.Errorf("PatientRefOf(%s) = %v, %v; want %q", tt.raw, got, ok, tt.want)
		}
	}
}

func TestParseRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want string // "" = error
	}{
		{"Patient/1", "Patient/1"},
		{" Observation/a-b.c/_history/2 ", "Observation/a-b.c/_history/2"},
		{"https://ehr.example/fhir/R4/Patient/1", "Patient/1"},
		{"https://ehr.example/fhir/Patient/1/_history/3?x=y", "Patient/1/_history/3"},
		{"Patient", ""}, {"", ""}, {"patient/1", ""}, {"Patient/..", ""}, {"Patient/a b", ""},
		{"urn:uuid:1234", ""}, {"#contained", ""}, {"Patient/1/_history", ""},
	}
	for _, tt := range tests {
		r, err := ParseRef(tt.in)
		if (tt.want == "") != (err != nil) || (err == nil && r.String() != tt.want) {
			t.Errorf("ParseRef(%q) = %v, %v; want %q", tt.in, r, err, tt.want)
		}
	}
}
