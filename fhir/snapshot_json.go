package fhir

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
)

// SnapshotEncodingVersion is the version of the snapshot hash input and of
// the MarshalJSON form.
const SnapshotEncodingVersion = 1

// snapshotHashPrefix starts the hash input; it names the encoding version.
const snapshotHashPrefix = "vigil-fhir-snapshot-v1\n"

// HashEntries is the snapshot hash: the hex sha256 of
//
//	"vigil-fhir-snapshot-v1\n" || JSON array of entries
//
// where each entry is encoded exactly as
// {"type":…,"id":…,"versionId":…,"sha256":…} (members in that order, no
// spaces, encoding/json string escaping without HTML escaping), in the order
// given (Snapshot.Entries: trigger, patient, context by type then id).
func HashEntries(entries []Entry) string {
	if entries == nil {
		entries = []Entry{}
	}
	b, err := marshalNoEscape(entries)
	if err != nil { // cannot happen: Entry holds only strings
		panic(err)
	}
	return Hash(append([]byte(snapshotHashPrefix), b...))
}

// wireResource is a Resource in a marshalled snapshot. Raw is base64 so the
// exact bytes survive any later re-encoding of the JSON.
type wireResource struct {
	Type        string `json:"resourceType"`
	ID          string `json:"id"`
	VersionID   string `json:"versionId,omitempty"`
	LastUpdated string `json:"lastUpdated,omitempty"`
	SHA256      string `json:"sha256"`
	Raw         []byte `json:"raw"`
}

type wireSnapshot struct {
	Version int             `json:"v"`
	Hash    string          `json:"hash"`
	Trigger *wireResource   `json:"trigger"`
	Patient *wireResource   `json:"patient,omitempty"`
	Context []*wireResource `json:"context"`
}

func toWire(r *Resource) *wireResource {
	if r == nil {
		return nil
	}
	return &wireResource{Type: r.Type, ID: r.ID, VersionID: r.VersionID, LastUpdated: r.LastUpdated, SHA256: r.SHA256, Raw: r.Raw}
}

// MarshalJSON encodes the snapshot reproducibly: {"v":1,"hash",
// "trigger","patient","context"}, each resource with its pins and its exact
// bytes base64-encoded under "raw". The same snapshot always gives the same
// bytes. It fails (ErrInvalid) when Hash does not match the entries.
func (s *Snapshot) MarshalJSON() ([]byte, error) {
	if s.Trigger == nil {
		return nil, fmt.Errorf("fhir: marshal snapshot: no trigger: %w", ErrInvalid)
	}
	if HashEntries(s.Entries()) != s.Hash {
		return nil, fmt.Errorf("fhir: marshal snapshot: Hash does not match the entries: %w", ErrInvalid)
	}
	w := wireSnapshot{Version: SnapshotEncodingVersion, Hash: s.Hash, Trigger: toWire(s.Trigger), Context: []*wireResource{}}
	if s.Patient != nil && !sameResource(s.Patient, s.Trigger) {
		w.Patient = toWire(s.Patient)
	}
	for _, r := range s.Context {
		w.Context = append(w.Context, toWire(r))
	}
	return marshalNoEscape(w)
}

// UnmarshalSnapshot decodes MarshalJSON's output and verifies it: each
// resource's sha256 against its raw bytes, its type, id and (when the raw
// bytes carry one) versionId against the raw resource, the context order and
// the overall Hash. Any mismatch gives an error wrapping ErrInvalid.
func UnmarshalSnapshot(b []byte) (*Snapshot, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var w wireSnapshot
	if err := dec.Decode(&w); err != nil {
		return nil, fmt.Errorf("fhir: unmarshal snapshot: %s: %w", jsonErrorDetail(err), ErrInvalid)
	}
	if dec.More() {
		return nil, fmt.Errorf("fhir: unmarshal snapshot: data after the snapshot: %w", ErrInvalid)
	}
	if w.Version != SnapshotEncodingVersion {
		return nil, fmt.Errorf("fhir: unmarshal snapshot: unsupported version %d: %w", w.Version, ErrInvalid)
	}
	if w.Trigger == nil {
		return nil, fmt.Errorf("fhir: unmarshal snapshot: no trigger: %w", ErrInvalid)
	}
	s := &Snapshot{Hash: w.Hash}
	var err error
	if s.Trigger, err = fromWire(w.Trigger, "trigger"); err != nil {
		return nil, err
	}
	if w.Patient != nil {
		if s.Patient, err = fromWire(w.Patient, "patient"); err != nil {
			return nil, err
		}
		if s.Patient.Type != "Patient" || sameResource(s.Patient, s.Trigger) {
			return nil, fmt.Errorf("fhir: unmarshal snapshot: patient entry is not a separate Patient: %w", ErrInvalid)
		}
	} else if s.Trigger.Type == "Patient" {
		s.Patient = s.Trigger
	}
	seen := map[string]bool{s.Trigger.Type + "/" + s.Trigger.ID: true}
	if s.Patient != nil {
		seen["Patient/"+s.Patient.ID] = true
	}
	for i, wr := range w.Context {
		r, err := fromWire(wr, fmt.Sprintf("context entry %d", i))
		if err != nil {
			return nil, err
		}
		k := r.Type + "/" + r.ID
		if seen[k] {
			return nil, fmt.Errorf("fhir: unmarshal snapshot: context entry %d is a duplicate: %w", i, ErrInvalid)
		}
		seen[k] = true
		if i > 0 {
			p := s.Context[i-1]
			if c := strings.Compare(p.Type, r.Type); c > 0 || c == 0 && p.ID > r.ID {
				return nil, fmt.Errorf("fhir: unmarshal snapshot: context entry %d is out of order: %w", i, ErrInvalid)
			}
		}
		s.Context = append(s.Context, r)
	}
	if got := HashEntries(s.Entries()); got != s.Hash {
		return nil, fmt.Errorf("fhir: unmarshal snapshot: snapshot hash does not match its entries: %w", ErrInvalid)
	}
	return s, nil
}

func fromWire(w *wireResource, what string) (*Resource, error) {
	if w == nil {
		return nil, fmt.Errorf("fhir: unmarshal snapshot: %s is null: %w", what, ErrInvalid)
	}
	if Hash(w.Raw) != w.SHA256 {
		return nil, fmt.Errorf("fhir: unmarshal snapshot: %s: sha256 does not match its raw bytes: %w", what, ErrInvalid)
	}
	r, err := newResource(w.Raw)
	if err != nil {
		return nil, fmt.Errorf("fhir: unmarshal snapshot: %s: %w", what, err)
	}
	if r.Type != w.Type || r.ID != w.ID {
		return nil, fmt.Errorf("fhir: unmarshal snapshot: %s: type or id does not match its raw bytes: %w", what, ErrInvalid)
	}
	if r.VersionID != "" && r.VersionID != w.VersionID {
		return nil, fmt.Errorf("fhir: unmarshal snapshot: %s: versionId does not match its raw bytes: %w", what, ErrInvalid)
	}
	if w.VersionID != "" && !validID(w.VersionID) {
		return nil, fmt.Errorf("fhir: unmarshal snapshot: %s: malformed versionId: %w", what, ErrInvalid)
	}
	r.VersionID, r.LastUpdated = w.VersionID, w.LastUpdated
	return r, nil
}
