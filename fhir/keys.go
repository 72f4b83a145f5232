package fhir

import (
	"bytes"
	"encoding/json"
)

// PatientRefOf returns the Patient a resource is about: its own reference
// (unversioned) for a Patient, else the first of subject, patient, sender and
// for that references a Patient (a version in the reference is kept).
func PatientRefOf(r *Resource) (Ref, bool) {
	if r == nil {
		return Ref{}, false
	}
	if r.Type == "Patient" {
		if !validID(r.ID) {
			return Ref{}, false
		}
		return Ref{Type: "Patient", ID: r.ID}, true
	}
	f := decodeClinical(r.Raw)
	for _, ref := range []*reference{f.Subject, f.Patient, f.Sender, f.For} {
		if p, ok := ref.patientRef(); ok {
			return p, true
		}
	}
	return Ref{}, false
}

// DecisionKey identifies the version of a resource a decision is made on:
// its versionId when it has one, else "sha256:" + the hex sha256 of its
// canonical JSON without the top-level meta (object keys sorted, no
// insignificant whitespace, numbers as written, strings re-escaped by
// encoding/json without HTML escaping), so a metadata-only change keeps the
// key. Raw that is not a JSON object falls back to "sha256:" + Hash(Raw).
func DecisionKey(r *Resource) string {
	if r == nil {
		return ""
	}
	if r.VersionID != "" {
		return r.VersionID
	}
	return "sha256:" + contentHash(r.Raw)
}

func contentHash(raw []byte) string {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil || dec.More() {
		return Hash(raw)
	}
	delete(m, "meta")
	b, err := marshalNoEscape(m)
	if err != nil {
		return Hash(raw)
	}
	return Hash(b)
}
