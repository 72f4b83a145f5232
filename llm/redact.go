package llm

import (
	"encoding/json"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/vigil-health/vigil/fhir"
)

// Redaction placeholders.
const (
	redName    = "[NAME]"
	redID      = "[ID]"
	redPhone   = "[PHONE]"
	redEmail   = "[EMAIL]"
	redAddress = "[ADDRESS]"
	redDOB     = "[DOB]"
)

// Redactor removes direct identifiers from free text. Build one with
// NewRedactor; it is immutable and safe for concurrent use.
type Redactor struct {
	email   *regexp.Regexp
	phone   *regexp.Regexp
	ssn     *regexp.Regexp
	mrn     *regexp.Regexp
	uuid    *regexp.Regexp
	longNum *regexp.Regexp
	dob     *regexp.Regexp
	street  *regexp.Regexp
}

// NewRedactor compiles the generic patterns.
func NewRedactor() *Redactor {
	return &Redactor{
		email: regexp.MustCompile(`(?i)[a-z0-9._%+\-]+@[a-z0-9.\-]+\.[a-z]{2,}`),
		// North-American style numbers: (555) 397-1190, 555-397-1190, 555.397.1190, +1 555 397 1190.
		phone: regexp.MustCompile(`(?:\+?1[\s.\-]?)?\(?\b\d{3}\)?[\s.\-]\d{3}[\s.\-]\d{4}\b`),
		ssn:   regexp.MustCompile(`\b\d{3}-\d{2}-\d{4}\b`),
		// "MRN: 12345", "MRN#A-123", "medical record number 5551234".
		mrn:     regexp.MustCompile(`(?i)\b(?:mrn|medical record (?:number|no\.?)|record (?:number|no\.?)|patient id)\s*[:#]?\s*[A-Za-z0-9\-]{3,}`),
		uuid:    regexp.MustCompile(`(?i)\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b`),
		longNum: regexp.MustCompile(`\b\d{7,}\b`),
		dob:     regexp.MustCompile(`(?i)\b(?:dob|d\.o\.b\.?|date of birth|born(?: on)?)\s*[:\-]?\s*(?:\d{1,4}[/\-.]\d{1,2}[/\-.]\d{1,4}|[a-z]{3,9}\.? \d{1,2}(?:st|nd|rd|th)?,? \d{4}|\d{1,2} [a-z]{3,9}\.? \d{4})`),
		street:  regexp.MustCompile(`(?i)\b\d{1,6}\s+(?:[a-z]+\s+){1,3}(?:street|st|avenue|ave|road|rd|lane|ln|drive|dr|boulevard|blvd|court|ct|way|place|pl|meadow|terrace|circle)\b\.?`),
	}
}

// Redact removes the given identifiers (names, MRNs, phone numbers, e-mail
// addresses, address parts, birth dates in any common format, as returned by
// PatientIdentifiers) and generic identifier patterns (phone, e-mail, SSN,
// MRN-like ids, UUIDs, long digit runs, street addresses, "DOB …") from text.
// It compiles its patterns on every call; hold a Redactor to reuse them.
func Redact(text string, identifiers []string) string {
	return NewRedactor().Redact(text, identifiers)
}

// Redact: see the package-level Redact.
func (r *Redactor) Redact(text string, identifiers []string) string {
	return r.For(identifiers)(text)
}

// For compiles the identifier patterns once and returns a function that
// redacts any number of texts with them (a prompt redacts every item of a
// snapshot with the same patient's identifiers).
func (r *Redactor) For(identifiers []string) func(string) string {
	// Specific identifiers first, longest first so "Alfreda Wyman" goes before "Alfreda".
	ids := slices.Clone(identifiers)
	slices.SortFunc(ids, func(a, b string) int { return len(b) - len(a) })
	type idPattern struct {
		re          *regexp.Regexp
		placeholder string
	}
	var pats []idPattern
	for _, id := range ids {
		id = strings.TrimSpace(id)
		if len([]rune(id)) < 2 {
			continue
		}
		if re := identifierPattern(id); re != nil {
			pats = append(pats, idPattern{re, placeholderFor(id)})
		}
	}
	return func(text string) string {
		if text == "" {
			return text
		}
		for _, p := range pats {
			text = p.re.ReplaceAllString(text, p.placeholder)
		}
		text = r.dob.ReplaceAllString(text, redDOB)
		text = r.email.ReplaceAllString(text, redEmail)
		text = r.mrn.ReplaceAllString(text, redID)
		text = r.uuid.ReplaceAllString(text, redID)
		text = r.ssn.ReplaceAllString(text, redID)
		text = r.phone.ReplaceAllString(text, redPhone)
		text = r.longNum.ReplaceAllString(text, redID)
		text = r.street.ReplaceAllString(text, redAddress)
		return text
	}
}

func placeholderFor(id string) string {
	switch {
	case strings.Contains(id, "@"):
		return redEmail
	case isDateLike(id):
		return redDOB
	case digitCount(id) >= 7 && !strings.ContainsFunc(id, unicode.IsLetter):
		return redPhone
	case digitCount(id) > 0:
		return redID
	default:
		return redName
	}
}

func isDateLike(s string) bool {
	for _, layout := range dateLayouts {
		if _, err := time.Parse(layout, s); err == nil {
			return true
		}
	}
	return false
}

func digitCount(s string) int {
	n := 0
	for _, c := range s {
		if unicode.IsDigit(c) {
			n++
		}
	}
	return n
}

// identifierPattern matches one identifier case-insensitively on word
// boundaries. Identifiers made mostly of digits (phones, MRNs, SSNs) match
// with any separators between the digits, so "555-397-1190" also catches
// "(555) 397 1190" and "5553971190".
func identifierPattern(id string) *regexp.Regexp {
	letters := 0
	for _, c := range id {
		if unicode.IsLetter(c) {
			letters++
		}
	}
	d := digitCount(id)
	if d >= 7 && letters == 0 && !isDateLike(id) {
		var b strings.Builder
		first := true
		for _, c := range id {
			if !unicode.IsDigit(c) {
				continue
			}
			if !first {
				b.WriteString(`[\s().\-]{0,3}`)
			}
			first = false
			b.WriteRune(c)
		}
		return regexp.MustCompile(`(?:\+?1[\s.\-]?)?\(?` + b.String() + `\b`)
	}
	q := regexp.QuoteMeta(id)
	q = strings.ReplaceAll(q, `\ `, `\s+`)
	q = strings.ReplaceAll(q, " ", `\s+`)
	pre, post := `\b`, `\b`
	if r := []rune(id); !isWord(r[0]) {
		pre = ""
	}
	if r := []rune(id); !isWord(r[len(r)-1]) {
		post = ""
	}
	re, err := regexp.Compile(`(?i)` + pre + q + post)
	if err != nil {
		return nil
	}
	return re
}

func isWord(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// dateLayouts are the formats a birth date is looked for in.
var dateLayouts = []string{"2006-01-02", "01/02/2006", "1/2/2006", "January 2, 2006", "Jan 2, 2006", "2 January 2006", "01-02-2006", "January 2 2006"}

// patientFields is the part of a Patient resource PatientIdentifiers reads.
type patientFields struct {
	Name []struct {
		Text   string   `json:"text"`
		Family string   `json:"family"`
		Given  []string `json:"given"`
	} `json:"name"`
	Telecom []struct {
		Value string `json:"value"`
	} `json:"telecom"`
	Identifier []struct {
		Value string `json:"value"`
	} `json:"identifier"`
	Address []struct {
		Text       string   `json:"text"`
		Line       []string `json:"line"`
		City       string   `json:"city"`
		PostalCode string   `json:"postalCode"`
	} `json:"address"`
	BirthDate string `json:"birthDate"`
	Gender    string `json:"gender"`
	Extension []struct {
		URL         string `json:"url"`
		ValueString string `json:"valueString"`
	} `json:"extension"`
	Contact []struct {
		Name *struct {
			Family string   `json:"family"`
			Given  []string `json:"given"`
		} `json:"name"`
		Telecom []struct {
			Value string `json:"value"`
		} `json:"telecom"`
	} `json:"contact"`
}

// PatientIdentifiers lists the direct identifiers of a Patient resource for
// Redact: every name part and full name (also with Synthea's trailing digits
// removed), telecom values, identifier values, address lines, cities and
// postal codes, the mother's maiden name, contacts' names and telecoms, and
// the birth date in the formats people write. It returns nil for nil.
func PatientIdentifiers(p *fhir.Resource) []string {
	if p == nil || p.Type != "Patient" {
		return nil
	}
	var f patientFields
	if err := json.Unmarshal(p.Raw, &f); err != nil {
		return nil
	}
	var out []string
	addName := func(given []string, family string) {
		parts := slices.Clone(given)
		if family != "" {
			parts = append(parts, family)
		}
		for _, x := range parts {
			out = append(out, x, strings.TrimRightFunc(x, unicode.IsDigit))
		}
		if len(parts) > 1 {
			out = append(out, strings.Join(parts, " "))
			stripped := make([]string, len(parts))
			for i, x := range parts {
				stripped[i] = strings.TrimRightFunc(x, unicode.IsDigit)
			}
			out = append(out, strings.Join(stripped, " "))
			if family != "" {
				out = append(out, stripped[len(stripped)-1]+", "+stripped[0])
			}
		}
	}
	for _, n := range f.Name {
		out = append(out, n.Text)
		addName(n.Given, n.Family)
	}
	for _, t := range f.Telecom {
		out = append(out, t.Value)
	}
	for _, id := range f.Identifier {
		out = append(out, id.Value)
	}
	for _, a := range f.Address {
		out = append(out, a.Text, a.PostalCode)
		out = append(out, a.Line...)
		if a.City != "" {
			out = append(out, a.City)
		}
	}
	for _, e := range f.Extension {
		if strings.HasSuffix(e.URL, "patient-mothersMaidenName") {
			out = append(out, e.ValueString)
			out = append(out, strings.Fields(e.ValueString)...)
		}
	}
	for _, c := range f.Contact {
		if c.Name != nil {
			addName(c.Name.Given, c.Name.Family)
		}
		for _, t := range c.Telecom {
			out = append(out, t.Value)
		}
	}
	if bd, err := time.Parse("2006-01-02", f.BirthDate); err == nil {
		for _, layout := range dateLayouts {
			out = append(out, bd.Format(layout))
		}
		out = append(out, bd.Format("02/01/2006"), bd.Format("1/2/06"), bd.Format("01/02/06"), bd.Format("Jan. 2, 2006"))
	}
	// Drop empties, duplicates and fragments too short to be safe to match.
	var clean []string
	for _, x := range out {
		x = strings.TrimSpace(x)
		if len([]rune(x)) >= 2 && !slices.Contains(clean, x) {
			clean = append(clean, x)
		}
	}
	return clean
}
