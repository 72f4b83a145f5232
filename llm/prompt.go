package llm

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/vigil-health/vigil/fhir"
)

// Prompt template identity, recorded in every CallRecord.
const (
	PromptID      = "triage-draft"
	PromptVersion = "v1"
)

//go:embed prompts/*.txt
var promptFS embed.FS

// Prompt is a rendered prompt. System and User are PHI (de-identified, but
// still derived from a patient's record): never log them.
type Prompt struct {
	ID, Version string
	System      string
	User        string
	// Pseudonyms maps each pseudonym ("R1") to the pinned reference it stands for.
	Pseudonyms map[string]string
	// Excluded counts resources left out for an excluded sensitivity label.
	Excluded int
}

// promptBuilder holds the parsed template and the redactor.
type promptBuilder struct {
	tmpl     *template.Template
	redactor *Redactor
}

func newPromptBuilder() (*promptBuilder, error) {
	name := "prompts/" + PromptID + "." + PromptVersion + ".txt"
	b, err := promptFS.ReadFile(name)
	if err != nil {
		return nil, fmt.Errorf("llm: prompt template %s.%s: %w", PromptID, PromptVersion, err)
	}
	t, err := template.New(PromptID).Parse(string(b))
	if err != nil {
		return nil, fmt.Errorf("llm: prompt template %s.%s: %w", PromptID, PromptVersion, err)
	}
	return &promptBuilder{tmpl: t, redactor: NewRedactor()}, nil
}

// BuildPrompt renders the prompt for req: the versioned system template and
// a user message holding the minimum-necessary, de-identified, pseudonymised
// view of req.Snapshot (see the package documentation).
func BuildPrompt(req Request) (*Prompt, error) {
	pb, err := newPromptBuilder()
	if err != nil {
		return nil, err
	}
	return pb.build(req)
}

func validateRequest(req Request) error {
	switch {
	case req.Snapshot == nil || req.Snapshot.Trigger == nil:
		return fmt.Errorf("llm: request has no snapshot trigger: %w", ErrBadRequest)
	case len(req.Queues) == 0:
		return fmt.Errorf("llm: request has no queues: %w", ErrBadRequest)
	}
	return nil
}

// view is the user message.
type view struct {
	Task      string      `json:"task"`
	Patient   viewPatient `json:"patient"`
	Trigger   string      `json:"trigger"`
	Resources []viewItem  `json:"resources"`
}

type viewPatient struct {
	AgeYears *int   `json:"age_years,omitempty"`
	Gender   string `json:"gender,omitempty"`
}

type viewItem struct {
	Ref            string   `json:"ref"`
	Type           string   `json:"type"`
	Category       string   `json:"category,omitempty"`
	Status         string   `json:"status,omitempty"`
	Date           string   `json:"date,omitempty"`
	What           string   `json:"what,omitempty"`
	Value          string   `json:"value,omitempty"`
	Components     []string `json:"components,omitempty"`
	Interpretation []string `json:"interpretation,omitempty"`
	ReferenceRange string   `json:"reference_range,omitempty"`
	Text           string   `json:"text,omitempty"`
}

func (pb *promptBuilder) build(req Request) (*Prompt, error) {
	if err := validateRequest(req); err != nil {
		return nil, err
	}
	snap := req.Snapshot
	ids := PatientIdentifiers(snap.Patient)
	red := pb.redactor.For(ids)
	if excluded(snap.Trigger, req.ExcludedLabels) {
		return nil, fmt.Errorf("llm: build prompt: %w", ErrExcluded)
	}
	p := &Prompt{ID: PromptID, Version: PromptVersion, Pseudonyms: map[string]string{}}
	v := view{Task: "Draft a triage suggestion for the trigger."}
	v.Patient = patientView(snap.Patient, req)
	type entry struct {
		res  *fhir.Resource
		item viewItem
	}
	var entries []entry
	for _, r := range snap.Resources() {
		if r.Type == "Patient" {
			continue
		}
		if excluded(r, req.ExcludedLabels) {
			p.Excluded++
			continue
		}
		entries = append(entries, entry{r, pb.item(r, red)})
	}
	// The trigger first, then the context by type and newest first, so the
	// model reads the most recent values first. Stable, so reproducible.
	slices.SortStableFunc(entries, func(a, b entry) int {
		at, bt := a.res == snap.Trigger, b.res == snap.Trigger
		switch {
		case at != bt:
			if at {
				return -1
			}
			return 1
		case a.item.Type != b.item.Type:
			return strings.Compare(a.item.Type, b.item.Type)
		}
		return strings.Compare(b.item.Date, a.item.Date)
	})
	for i, e := range entries {
		pseudo := "R" + strconv.Itoa(i+1)
		p.Pseudonyms[pseudo] = e.res.Ref().String()
		e.item.Ref = pseudo
		if e.res == snap.Trigger {
			v.Trigger = pseudo
		}
		v.Resources = append(v.Resources, e.item)
	}
	var ub bytes.Buffer
	enc := json.NewEncoder(&ub)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("llm: build prompt: encode view: %w", err)
	}
	p.User = strings.TrimSpace(ub.String())
	quoted := make([]string, len(req.Queues))
	for i, q := range req.Queues {
		quoted[i] = strconv.Quote(q)
	}
	var sb strings.Builder
	if err := pb.tmpl.Execute(&sb, struct{ Queues string }{strings.Join(quoted, ", ")}); err != nil {
		return nil, fmt.Errorf("llm: build prompt: render template: %w", err)
	}
	p.System = sb.String()
	return p, nil
}

// excluded reports whether r carries a meta.security code in labels.
func excluded(r *fhir.Resource, labels []string) bool {
	if len(labels) == 0 || r == nil {
		return false
	}
	var m struct {
		Meta struct {
			Security []struct {
				Code string `json:"code"`
			} `json:"security"`
		} `json:"meta"`
	}
	if err := json.Unmarshal(r.Raw, &m); err != nil {
		return true // cannot tell: do not send
	}
	for _, s := range m.Meta.Security {
		for _, l := range labels {
			if strings.EqualFold(strings.TrimSpace(s.Code), strings.TrimSpace(l)) {
				return true
			}
		}
	}
	return false
}

func patientView(p *fhir.Resource, req Request) viewPatient {
	var out viewPatient
	if req.PatientAgeYears != nil && *req.PatientAgeYears >= 0 {
		a := int(math.Floor(*req.PatientAgeYears))
		out.AgeYears = &a
	}
	if p == nil {
		return out
	}
	var f struct {
		BirthDate string `json:"birthDate"`
		Gender    string `json:"gender"`
	}
	_ = json.Unmarshal(p.Raw, &f)
	switch f.Gender {
	case "male", "female", "other", "unknown":
		out.Gender = f.Gender
	}
	if out.AgeYears == nil && !req.Now.IsZero() {
		if a, ok := AgeYears(f.BirthDate, req.Now); ok {
			out.AgeYears = &a
		}
	}
	return out
}

// AgeYears returns the age in whole years on now of someone born on
// birthDate (FHIR date: YYYY, YYYY-MM or YYYY-MM-DD).
func AgeYears(birthDate string, now time.Time) (int, bool) {
	var bd time.Time
	var err error
	for _, layout := range []string{"2006-01-02", "2006-01", "2006"} {
		if bd, err = time.Parse(layout, birthDate); err == nil {
			break
		}
	}
	if err != nil || now.Before(bd) {
		return 0, false
	}
	now = now.UTC()
	age := now.Year() - bd.Year()
	if now.Month() < bd.Month() || (now.Month() == bd.Month() && now.Day() < bd.Day()) {
		age--
	}
	return age, true
}

// Lenient decoding of the fields the view reads.
type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

type concept struct {
	Coding []coding `json:"coding"`
	Text   string   `json:"text"`
}

func (c *concept) label() string {
	if c == nil {
		return ""
	}
	if c.Text != "" {
		return c.Text
	}
	for _, cd := range c.Coding {
		if cd.Display != "" {
			return cd.Display
		}
	}
	for _, cd := range c.Coding {
		if cd.Code != "" {
			return cd.Code
		}
	}
	return ""
}

type quantity struct {
	Value      json.Number `json:"value"`
	Comparator string      `json:"comparator"`
	Unit       string      `json:"unit"`
	Code       string      `json:"code"`
}

func (q *quantity) String() string {
	if q == nil || q.Value == "" {
		return ""
	}
	u := q.Unit
	if u == "" {
		u = q.Code
	}
	return strings.TrimSpace(q.Comparator + FormatValue(q.Value) + " " + u)
}

type qrAnswer struct {
	ValueString   *string      `json:"valueString"`
	ValueInteger  *json.Number `json:"valueInteger"`
	ValueDecimal  *json.Number `json:"valueDecimal"`
	ValueBoolean  *bool        `json:"valueBoolean"`
	ValueDate     string       `json:"valueDate"`
	ValueCoding   *coding      `json:"valueCoding"`
	ValueQuantity *quantity    `json:"valueQuantity"`
}

type qrItem struct {
	LinkID string     `json:"linkId"`
	Text   string     `json:"text"`
	Answer []qrAnswer `json:"answer"`
	Item   []qrItem   `json:"item"`
}

type resourceFields struct {
	Status               string    `json:"status"`
	Category             []concept `json:"category"`
	Code                 *concept  `json:"code"`
	ValueQuantity        *quantity `json:"valueQuantity"`
	ValueString          *string   `json:"valueString"`
	ValueCodeableConcept *concept  `json:"valueCodeableConcept"`
	Interpretation       []concept `json:"interpretation"`
	ReferenceRange       []struct {
		Low  *quantity `json:"low"`
		High *quantity `json:"high"`
		Text string    `json:"text"`
	} `json:"referenceRange"`
	Component []struct {
		Code                 *concept  `json:"code"`
		ValueQuantity        *quantity `json:"valueQuantity"`
		ValueString          *string   `json:"valueString"`
		ValueCodeableConcept *concept  `json:"valueCodeableConcept"`
	} `json:"component"`
	EffectiveDateTime         string   `json:"effectiveDateTime"`
	EffectiveInstant          string   `json:"effectiveInstant"`
	Issued                    string   `json:"issued"`
	AuthoredOn                string   `json:"authoredOn"`
	Authored                  string   `json:"authored"`
	OnsetDateTime             string   `json:"onsetDateTime"`
	RecordedDate              string   `json:"recordedDate"`
	Sent                      string   `json:"sent"`
	Received                  string   `json:"received"`
	MedicationCodeableConcept *concept `json:"medicationCodeableConcept"`
	DosageInstruction         []struct {
		Text string `json:"text"`
	} `json:"dosageInstruction"`
	ClinicalStatus *concept `json:"clinicalStatus"`
	Criticality    string   `json:"criticality"`
	Payload        []struct {
		ContentString string `json:"contentString"`
	} `json:"payload"`
	Item []qrItem `json:"item"`
}

// decodeFields decodes what it can; a member of an unexpected JSON type is skipped.
func decodeFields(raw []byte) resourceFields {
	var f resourceFields
	if json.Unmarshal(raw, &f) == nil {
		return f
	}
	f = resourceFields{}
	var ms map[string]json.RawMessage
	if json.Unmarshal(raw, &ms) != nil {
		return f
	}
	for k, v := range ms {
		one, err := json.Marshal(map[string]json.RawMessage{k: v})
		if err != nil {
			continue
		}
		_ = json.Unmarshal(one, &f) // fields decoded so far are kept on error
	}
	return f
}

func dateOnly(s string) string {
	if len(s) >= 10 && s[4] == '-' && s[7] == '-' {
		return s[:10]
	}
	return s
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func (pb *promptBuilder) item(r *fhir.Resource, red func(string) string) viewItem {
	f := decodeFields(r.Raw)
	it := viewItem{Type: r.Type, Status: f.Status}
	if len(f.Category) > 0 {
		it.Category = f.Category[0].label()
	}
	switch r.Type {
	case "Observation":
		it.What = f.Code.label()
		it.Date = dateOnly(firstNonEmpty(f.EffectiveDateTime, f.EffectiveInstant, f.Issued))
		switch {
		case f.ValueQuantity != nil:
			it.Value = f.ValueQuantity.String()
		case f.ValueCodeableConcept != nil:
			it.Value = f.ValueCodeableConcept.label()
		case f.ValueString != nil:
			it.Text = red(*f.ValueString)
		}
		for _, c := range f.Component {
			val := ""
			switch {
			case c.ValueQuantity != nil:
				val = c.ValueQuantity.String()
			case c.ValueCodeableConcept != nil:
				val = c.ValueCodeableConcept.label()
			case c.ValueString != nil:
				val = red(*c.ValueString)
			}
			it.Components = append(it.Components, c.Code.label()+": "+val)
		}
		for _, in := range f.Interpretation {
			for _, cd := range in.Coding {
				it.Interpretation = append(it.Interpretation, cd.Code)
			}
		}
		if len(f.ReferenceRange) > 0 {
			rr := f.ReferenceRange[0]
			switch {
			case rr.Low != nil || rr.High != nil:
				it.ReferenceRange = strings.TrimSpace(rr.Low.String() + " - " + rr.High.String())
			default:
				it.ReferenceRange = red(rr.Text)
			}
		}
	case "Condition":
		it.What = f.Code.label()
		it.Date = dateOnly(firstNonEmpty(f.OnsetDateTime, f.RecordedDate))
		if f.ClinicalStatus != nil {
			it.Status = f.ClinicalStatus.label()
		}
	case "MedicationRequest", "MedicationStatement":
		it.What = f.MedicationCodeableConcept.label()
		it.Date = dateOnly(f.AuthoredOn)
		var ds []string
		for _, d := range f.DosageInstruction {
			if d.Text != "" {
				ds = append(ds, red(d.Text))
			}
		}
		it.Text = strings.Join(ds, "; ")
	case "AllergyIntolerance":
		it.What = f.Code.label()
		it.Date = dateOnly(firstNonEmpty(f.RecordedDate, f.OnsetDateTime))
		if f.ClinicalStatus != nil {
			it.Status = f.ClinicalStatus.label()
		}
		if f.Criticality != "" {
			it.Value = "criticality " + f.Criticality
		}
	case "Communication":
		it.Date = dateOnly(firstNonEmpty(f.Sent, f.Received))
		var ps []string
		for _, p := range f.Payload {
			if p.ContentString != "" {
				ps = append(ps, red(p.ContentString))
			}
		}
		it.Text = strings.Join(ps, "\n")
	case "QuestionnaireResponse":
		it.Date = dateOnly(f.Authored)
		var lines []string
		var walk func([]qrItem)
		walk = func(items []qrItem) {
			for _, q := range items {
				var ans []string
				for _, a := range q.Answer {
					ans = append(ans, answerText(a, red))
				}
				if len(ans) > 0 {
					lines = append(lines, red(firstNonEmpty(q.Text, q.LinkID))+": "+strings.Join(ans, ", "))
				}
				walk(q.Item)
			}
		}
		walk(f.Item)
		it.Text = strings.Join(lines, "\n")
	default:
		it.What = f.Code.label()
		it.Date = dateOnly(firstNonEmpty(f.EffectiveDateTime, f.Issued, f.RecordedDate, f.AuthoredOn))
	}
	it.What = red(it.What)
	slices.Sort(it.Interpretation)
	return it
}

func answerText(a qrAnswer, red func(string) string) string {
	switch {
	case a.ValueString != nil:
		return red(*a.ValueString)
	case a.ValueInteger != nil:
		return a.ValueInteger.String()
	case a.ValueDecimal != nil:
		return FormatValue(*a.ValueDecimal)
	case a.ValueBoolean != nil:
		return strconv.FormatBool(*a.ValueBoolean)
	case a.ValueDate != "":
		return a.ValueDate
	case a.ValueCoding != nil:
		return firstNonEmpty(a.ValueCoding.Display, a.ValueCoding.Code)
	case a.ValueQuantity != nil:
		return a.ValueQuantity.String()
	}
	return ""
}

// FormatValue renders a FHIR decimal for the prompt: as written when it has
// at most three decimals, else rounded to four significant digits (at least
// one decimal), so simulated or instrument noise is not sent as precision.
func FormatValue(n json.Number) string {
	s := n.String()
	_, frac, ok := strings.Cut(s, ".")
	if !ok || len(frac) <= 3 || strings.ContainsAny(s, "eE") {
		return s
	}
	v, err := n.Float64()
	if err != nil {
		return s
	}
	intDigits := 1
	if a := math.Abs(v); a >= 1 {
		intDigits = int(math.Floor(math.Log10(a))) + 1
	}
	dec := 4 - intDigits
	if dec < 1 {
		dec = 1
	}
	if math.Abs(v) < 1 && v != 0 {
		// keep four significant digits below 1 (e.g. 0.01234)
		dec = 3 - int(math.Floor(math.Log10(math.Abs(v))))
	}
	return strconv.FormatFloat(v, 'f', dec, 64)
}
