package fhir

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
)

// invalidf returns an error wrapping ErrInvalid. The message must never carry
// resource content.
func invalidf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), ErrInvalid)
}

// jsonErrorDetail describes a JSON decoding error without quoting the input.
func jsonErrorDetail(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("unexpected JSON %s at byte %d", te.Value, te.Offset)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	default:
		return "malformed JSON"
	}
}

// resourceHeader is the part of any resource this package reads generically.
type resourceHeader struct {
	ResourceType string `json:"resourceType"`
	ID           string `json:"id"`
	Meta         *resourceMeta
}

type resourceMeta struct {
	VersionID   string
	LastUpdated string
}

// parseHeader reads resourceType, id and meta.versionId/lastUpdated with
// exact (case-sensitive) member names, rejecting duplicate members, so that
// what is pinned is what any FHIR parser would read.
func parseHeader(raw []byte) (resourceHeader, error) {
	var h resourceHeader
	if !isJSONObject(raw) {
		return h, invalidf("fhir: resource is not a JSON object")
	}
	ms, err := objectMembers(raw)
	if err != nil {
		return h, fmt.Errorf("fhir: resource: %w", err)
	}
	for _, m := range ms {
		switch m.key {
		case "resourceType":
			h.ResourceType, _ = stringValue(m.val)
		case "id":
			var ok bool
			if h.ID, ok = stringValue(m.val); !ok {
				return h, invalidf("fhir: resource id is not a string")
			}
		case "meta":
			if !isJSONObject(m.val) {
				continue
			}
			mm, err := objectMembers(m.val)
			if err != nil {
				return h, fmt.Errorf("fhir: resource meta: %w", err)
			}
			h.Meta = &resourceMeta{}
			for _, x := range mm {
				switch x.key {
				case "versionId":
					h.Meta.VersionID, _ = stringValue(x.val)
				case "lastUpdated":
					h.Meta.LastUpdated, _ = stringValue(x.val)
				}
			}
		}
	}
	if !validType(h.ResourceType) {
		return h, invalidf("fhir: resource has no valid resourceType")
	}
	if h.ID != "" && !validID(h.ID) {
		return h, invalidf("fhir: %s has a malformed id", h.ResourceType)
	}
	if h.Meta != nil && h.Meta.VersionID != "" && !validID(h.Meta.VersionID) {
		return h, invalidf("fhir: %s has a malformed meta.versionId", h.ResourceType)
	}
	return h, nil
}

// stringValue decodes a JSON string.
func stringValue(v json.RawMessage) (string, bool) {
	var s string
	if len(v) == 0 || v[0] != '"' || json.Unmarshal(v, &s) != nil {
		return "", false
	}
	return s, true
}

// newResource builds a Resource from raw bytes, copying them. The resource
// must carry a resourceType and an id.
func newResource(raw []byte) (*Resource, error) {
	h, err := parseHeader(raw)
	if err != nil {
		return nil, err
	}
	if h.ID == "" {
		return nil, invalidf("fhir: %s has no id", h.ResourceType)
	}
	r := &Resource{
		Type:   h.ResourceType,
		ID:     h.ID,
		SHA256: Hash(raw),
		Raw:    append(json.RawMessage(nil), raw...),
	}
	if h.Meta != nil {
		r.VersionID = h.Meta.VersionID
		r.LastUpdated = h.Meta.LastUpdated
	}
	return r, nil
}

func isJSONObject(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	return len(b) > 0 && b[0] == '{'
}

// member is one name/value pair of a JSON object, value kept verbatim.
type member struct {
	key string
	val json.RawMessage
}

// objectMembers splits a JSON object into its members, in document order.
func objectMembers(raw []byte) ([]member, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	tok, err := dec.Token()
	if err != nil {
		return nil, invalidf("fhir: %s", jsonErrorDetail(err))
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return nil, invalidf("fhir: not a JSON object")
	}
	var ms []member
	seen := map[string]bool{}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, invalidf("fhir: %s", jsonErrorDetail(err))
		}
		key, ok := tok.(string)
		if !ok {
			return nil, invalidf("fhir: malformed JSON object")
		}
		if seen[key] {
			return nil, invalidf("fhir: duplicate JSON member")
		}
		seen[key] = true
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nil, invalidf("fhir: %s", jsonErrorDetail(err))
		}
		ms = append(ms, member{key: key, val: v})
	}
	if _, err := dec.Token(); err != nil {
		return nil, invalidf("fhir: %s", jsonErrorDetail(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, invalidf("fhir: data after the JSON object")
	}
	return ms, nil
}

// encodeMembers writes members as a compact JSON object.
func encodeMembers(ms []member) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteByte('{')
	for i, m := range ms {
		if i > 0 {
			buf.WriteByte(',')
		}
		k, err := marshalNoEscape(m.key)
		if err != nil {
			return nil, err
		}
		buf.Write(k)
		buf.WriteByte(':')
		if err := json.Compact(&buf, m.val); err != nil {
			return nil, invalidf("fhir: %s", jsonErrorDetail(err))
		}
	}
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// setMember replaces the member named key, or inserts it after the member
// named after (or at the end when there is none).
func setMember(ms []member, key string, val json.RawMessage, after string) []member {
	for i := range ms {
		if ms[i].key == key {
			ms[i].val = val
			return ms
		}
	}
	for i := range ms {
		if ms[i].key == after {
			ms = append(ms[:i+1], append([]member{{key: key, val: val}}, ms[i+1:]...)...)
			return ms
		}
	}
	return append(ms, member{key: key, val: val})
}

// marshalNoEscape is json.Marshal without HTML escaping, without the trailing newline.
func marshalNoEscape(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("fhir: encode: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// reference is a FHIR Reference (only the part this package reads).
type reference struct {
	Reference string `json:"reference"`
}

// patientRef parses a reference and reports whether it names a Patient.
func (r *reference) patientRef() (Ref, bool) {
	if r == nil || r.Reference == "" {
		return Ref{}, false
	}
	ref, err := ParseRef(r.Reference)
	if err != nil || ref.Type != "Patient" {
		return Ref{}, false
	}
	return ref, true
}

// key returns the unversioned Type/id of a reference, or "" if it does not parse.
func (r *reference) key() string {
	if r == nil || r.Reference == "" {
		return ""
	}
	ref, err := ParseRef(r.Reference)
	if err != nil {
		return ""
	}
	return ref.Unversioned().String()
}

// coding and codeableConcept are the parts of those types this package reads.
type coding struct {
	System string `json:"system"`
	Code   string `json:"code"`
}

type codeableConcept struct {
	Coding []coding `json:"coding"`
}

func (c *codeableConcept) hasCode(codes ...string) bool {
	if c == nil {
		return false
	}
	for _, cd := range c.Coding {
		for _, want := range codes {
			if strings.EqualFold(cd.Code, want) {
				return true
			}
		}
	}
	return false
}

// clinicalFields are the fields used to index, filter and order resources.
// Decoding is lenient: a field of an unexpected JSON type is left empty.
type clinicalFields struct {
	Status             string           `json:"status"`
	Subject            *reference       `json:"subject"`
	Patient            *reference       `json:"patient"`
	Sender             *reference       `json:"sender"`
	For                *reference       `json:"for"`
	ClinicalStatus     *codeableConcept `json:"clinicalStatus"`
	VerificationStatus *codeableConcept `json:"verificationStatus"`
	EffectiveDateTime  string           `json:"effectiveDateTime"`
	EffectiveInstant   string           `json:"effectiveInstant"`
	EffectivePeriod    *struct {
		Start string `json:"start"`
		End   string `json:"end"`
	} `json:"effectivePeriod"`
	Issued   string `json:"issued"`
	Sent     string `json:"sent"`
	Received string `json:"received"`
}

// decodeClinical decodes what it can; type mismatches leave fields empty.
func decodeClinical(raw []byte) clinicalFields {
	var f clinicalFields
	if err := json.Unmarshal(raw, &f); err != nil {
		// Fall back field by field so one odd field does not hide the rest.
		var ms map[string]json.RawMessage
		if json.Unmarshal(raw, &ms) != nil {
			return clinicalFields{}
		}
		f = clinicalFields{}
		for k, v := range ms {
			one, err := json.Marshal(map[string]json.RawMessage{k: v})
			if err != nil {
				continue
			}
			var g clinicalFields
			if json.Unmarshal(one, &g) == nil {
				mergeClinical(&f, &g)
			}
		}
	}
	return f
}

func mergeClinical(dst, src *clinicalFields) {
	if src.Status != "" {
		dst.Status = src.Status
	}
	if src.Subject != nil {
		dst.Subject = src.Subject
	}
	if src.Patient != nil {
		dst.Patient = src.Patient
	}
	if src.Sender != nil {
		dst.Sender = src.Sender
	}
	if src.For != nil {
		dst.For = src.For
	}
	if src.ClinicalStatus != nil {
		dst.ClinicalStatus = src.ClinicalStatus
	}
	if src.VerificationStatus != nil {
		dst.VerificationStatus = src.VerificationStatus
	}
	if src.EffectiveDateTime != "" {
		dst.EffectiveDateTime = src.EffectiveDateTime
	}
	if src.EffectiveInstant != "" {
		dst.EffectiveInstant = src.EffectiveInstant
	}
	if src.EffectivePeriod != nil {
		dst.EffectivePeriod = src.EffectivePeriod
	}
	if src.Issued != "" {
		dst.Issued = src.Issued
	}
	if src.Sent != "" {
		dst.Sent = src.Sent
	}
	if src.Received != "" {
		dst.Received = src.Received
	}
}
