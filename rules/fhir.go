package rules

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// The FHIR shapes below are decoded leniently on purpose: the generated
// samply models reject a whole resource for one unknown code, and a safety
// layer must still judge the value of an Observation whose status or
// category uses a code newer than the model. Only the fields the rules need
// are read; the caller keeps the original bytes.

type coding struct {
	System  string `json:"system"`
	Code    string `json:"code"`
	Display string `json:"display"`
}

type codeableConcept struct {
	Coding []coding `json:"coding"`
	Text   string   `json:"text"`
}

type quantity struct {
	Value      *json.Number `json:"value"`
	Comparator string       `json:"comparator"`
	Unit       string       `json:"unit"`
	System     string       `json:"system"`
	Code       string       `json:"code"`
}

type refRange struct {
	Low  *quantity `json:"low"`
	High *quantity `json:"high"`
}

type obsValue struct {
	Code                 codeableConcept   `json:"code"`
	ValueQuantity        *quantity         `json:"valueQuantity"`
	ValueString          *string           `json:"valueString"`
	ValueInteger         *json.Number      `json:"valueInteger"`
	ValueCodeableConcept *codeableConcept  `json:"valueCodeableConcept"`
	DataAbsentReason     *codeableConcept  `json:"dataAbsentReason"`
	Interpretation       []codeableConcept `json:"interpretation"`
	ReferenceRange       []refRange        `json:"referenceRange"`
}

type observation struct {
	Status string `json:"status"`
	obsValue
	Component []obsValue `json:"component"`
}

type attachment struct {
	ContentType string `json:"contentType"`
	Data        string `json:"data"`
}

type communication struct {
	Status  string `json:"status"`
	Payload []struct {
		ContentString     *string         `json:"contentString"`
		ContentAttachment *attachment     `json:"contentAttachment"`
		ContentReference  json.RawMessage `json:"contentReference"`
	} `json:"payload"`
	Topic *codeableConcept `json:"topic"`
}

type qrAnswer struct {
	ValueInteger    *json.Number `json:"valueInteger"`
	ValueDecimal    *json.Number `json:"valueDecimal"`
	ValueString     *string      `json:"valueString"`
	ValueCoding     *coding      `json:"valueCoding"`
	ValueBoolean    *bool        `json:"valueBoolean"`
	ValueAttachment *attachment  `json:"valueAttachment"`
	Item            []qrItem     `json:"item"`
}

type qrItem struct {
	LinkID     string     `json:"linkId"`
	Definition string     `json:"definition"`
	Text       string     `json:"text"`
	Answer     []qrAnswer `json:"answer"`
	Item       []qrItem   `json:"item"`
}

type questionnaireResponse struct {
	Status string   `json:"status"`
	Item   []qrItem `json:"item"`
}

func isLOINC(system string) bool {
	s := strings.TrimSuffix(strings.TrimSpace(system), "/")
	return strings.EqualFold(s, LOINC) || s == "urn:oid:2.16.840.1.113883.6.1"
}

// interpretationRank orders lab interpretation codes: 3 critical, 2 abnormal,
// 1 normal or other, 0 none.
func interpretationRank(code string) int {
	switch code {
	case "HH", "LL", "AA":
		return 3
	case "H", "L", "A", "HU", "LU", "HX", "LX":
		return 2
	case "":
		return 0
	}
	return 1
}

// interpretationCode returns the most severe code among the concepts, reading
// text ("Critical high", "Abnormal") when no code is sent.
func interpretationCode(ccs []codeableConcept) string {
	best := ""
	consider := func(c string) {
		if interpretationRank(c) > interpretationRank(best) {
			best = c
		}
	}
	for _, cc := range ccs {
		for _, c := range cc.Coding {
			consider(strings.ToUpper(strings.TrimSpace(c.Code)))
		}
		t := strings.ToLower(cc.Text)
		switch {
		case t == "":
		case strings.Contains(t, "critical") || strings.Contains(t, "panic"):
			switch {
			case strings.Contains(t, "high"):
				consider("HH")
			case strings.Contains(t, "low"):
				consider("LL")
			default:
				consider("AA")
			}
		case strings.Contains(t, "high"):
			consider("H")
		case strings.Contains(t, "low"):
			consider("L")
		case strings.Contains(t, "abnormal"):
			consider("A")
		}
	}
	return best
}

// parseValueString reads "<2.0", ">= 1000", "6.9" into a comparator and number.
func parseValueString(s string) (comparator string, v float64, ok bool) {
	s = strings.TrimSpace(s)
	for _, c := range []string{"<=", ">=", "<", ">", "="} {
		if strings.HasPrefix(s, c) {
			comparator = c
			s = strings.TrimSpace(s[len(c):])
			break
		}
	}
	if comparator == "=" {
		comparator = ""
	}
	f, err := strconv.ParseFloat(strings.ReplaceAll(s, ",", ""), 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return "", 0, false
	}
	return comparator, f, true
}

func numberOf(n *json.Number) (float64, bool) {
	if n == nil {
		return 0, false
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

func formatNumber(v float64) string {
	r := math.Round(v*10000) / 10000
	return strconv.FormatFloat(r, 'f', -1, 64)
}

// unreadableScript reports whether text is mostly letters outside the Latin
// script the lexicon covers.
func unreadableScript(text string) bool {
	var letters, other int
	for _, r := range text {
		if unicode.IsLetter(r) {
			letters++
			if !unicode.Is(unicode.Latin, r) {
				other++
			}
		}
	}
	return other >= 3 && other*10 >= letters*3
}

// communicationText returns the readable text of a Communication and why any
// part could not be read ("" if all could).
func communicationText(c *communication) (string, string) {
	var parts []string
	unreadable := ""
	if c.Topic != nil && c.Topic.Text != "" {
		parts = append(parts, c.Topic.Text)
	}
	for _, p := range c.Payload {
		switch {
		case p.ContentString != nil:
			parts = append(parts, *p.ContentString)
		case p.ContentAttachment != nil:
			if t, ok := attachmentText(p.ContentAttachment); ok {
				parts = append(parts, t)
			} else {
				unreadable = "text the engine cannot read (attachment)"
			}
		default:
			unreadable = "text the engine cannot read (non-text payload)"
		}
	}
	return strings.Join(parts, "\n"), unreadable
}

func attachmentText(a *attachment) (string, bool) {
	ct := strings.ToLower(strings.TrimSpace(a.ContentType))
	if !strings.HasPrefix(ct, "text/plain") || a.Data == "" {
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(a.Data)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// questionnaireText collects answers recursively: valueString,
// valueCoding.display, and the question text of a true valueBoolean.
// selfHarmQuestion recognises a screening question about self-harm or
// suicide (PHQ-9 item 9, LOINC 44260-8; C-SSRS-style wording): its coded
// answer ("Several days", 1) carries the meaning, not its words.
var selfHarmQuestion = regexp.MustCompile(`(?i)44260-8|better off dead|hurting yourself|harm(ing)? yourself|kill(ing)? yourself|suicid|end your life|wish(ed)? you were dead`)

// negativeAnswer: the answers that mean "no" on such a question.
var negativeAnswer = regexp.MustCompile(`(?i)^\s*(not at all|no|never|none|0|la6568-5|false)\s*$`)

// selfHarmPositive reports whether an answer to a self-harm question is anything but "no".
func selfHarmPositive(a qrAnswer) bool {
	switch {
	case a.ValueCoding != nil:
		return !negativeAnswer.MatchString(a.ValueCoding.Code) && !negativeAnswer.MatchString(a.ValueCoding.Display)
	case a.ValueInteger != nil:
		return a.ValueInteger.String() != "0"
	case a.ValueDecimal != nil:
		f, err := a.ValueDecimal.Float64()
		return err != nil || f != 0
	case a.ValueBoolean != nil:
		return *a.ValueBoolean
	case a.ValueString != nil:
		return !negativeAnswer.MatchString(*a.ValueString)
	}
	return false
}

// selfHarmAnswerText is what a positive self-harm screening answer adds to the scanned text.
const selfHarmAnswerText = "self harm thoughts reported on a screening question"

func questionnaireText(items []qrItem, parts *[]string, unreadable *string) {
	for _, it := range items {
		isSelfHarm := selfHarmQuestion.MatchString(it.LinkID + " " + it.Definition + " " + it.Text)
		for _, a := range it.Answer {
			if isSelfHarm && selfHarmPositive(a) {
				*parts = append(*parts, selfHarmAnswerText)
			}
			switch {
			case a.ValueString != nil:
				*parts = append(*parts, *a.ValueString)
			case a.ValueCoding != nil && a.ValueCoding.Display != "":
				*parts = append(*parts, a.ValueCoding.Display)
			case a.ValueBoolean != nil && *a.ValueBoolean && it.Text != "":
				*parts = append(*parts, it.Text)
			case a.ValueAttachment != nil:
				if t, ok := attachmentText(a.ValueAttachment); ok {
					*parts = append(*parts, t)
				} else {
					*unreadable = "text the engine cannot read (attachment)"
				}
			}
			questionnaireText(a.Item, parts, unreadable)
		}
		questionnaireText(it.Item, parts, unreadable)
	}
}

// ageFromContext finds a Patient with a birthDate in ctx and returns the age
// in years at now. Resources are tried first by a cheap look at their first
// bytes (servers write resourceType first), then by a full scan, so a large
// context stays fast.
func ageFromContext(ctx []json.RawMessage, now time.Time) *float64 {
	if now.IsZero() {
		return nil
	}
	for pass := 0; pass < 2; pass++ {
		for _, raw := range ctx {
			head := raw
			if pass == 0 {
				head = raw[:min(len(raw), 48)]
				if !bytes.Contains(head, []byte(`"Patient"`)) {
					continue
				}
			} else if !bytes.Contains(raw, []byte(`"birthDate"`)) || !bytes.Contains(raw, []byte(`"Patient"`)) {
				continue
			}
			if age, ok := patientAge(raw, now); ok {
				return &age
			}
		}
	}
	return nil
}

func patientAge(raw json.RawMessage, now time.Time) (float64, bool) {
	var p struct {
		ResourceType string `json:"resourceType"`
		BirthDate    string `json:"birthDate"`
	}
	if json.Unmarshal(raw, &p) != nil || p.ResourceType != "Patient" || p.BirthDate == "" {
		return 0, false
	}
	var b time.Time
	var err error
	switch len(p.BirthDate) {
	case 4:
		b, err = time.Parse("2006", p.BirthDate)
	case 7:
		b, err = time.Parse("2006-01", p.BirthDate)
	default:
		b, err = time.Parse("2006-01-02", p.BirthDate[:min(len(p.BirthDate), 10)])
	}
	if err != nil || b.After(now) {
		return 0, false
	}
	return now.Sub(b).Hours() / 24 / 365.2425, true
}
