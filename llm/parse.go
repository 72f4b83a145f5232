package llm

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"github.com/vigil-health/vigil/rules"
)

// MaxOutputBytes bounds the model output ParseDraft accepts.
const MaxOutputBytes = 256 << 10

// wireDraft is the model's JSON, with pointers to tell missing from zero.
type wireDraft struct {
	Priority   *string      `json:"priority"`
	Route      *string      `json:"route"`
	Rationale  *string      `json:"rationale"`
	Claims     *[]wireClaim `json:"claims"`
	Confidence *float64     `json:"confidence"`
	ReplyDraft *string      `json:"reply_draft"`
}

type wireClaim struct {
	Text     *string   `json:"text"`
	Evidence *[]string `json:"evidence"`
}

// fieldName matches JSON member names that are safe to quote in an error.
var fieldName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,39}$`)

// ParseDraft parses and validates a model's answer against the draft schema.
//
// It is tolerant of presentation: surrounding whitespace, a Markdown code
// fence (```json … ```), or prose around exactly one JSON object are
// accepted. It is strict about content: members other than priority, route,
// rationale, claims, confidence and reply_draft (and text and evidence in a
// claim) are rejected, as are a missing member (reply_draft is optional and
// may be null or empty), an unknown priority, a route not in queues, no
// claims, a claim without text or evidence, and a confidence outside [0, 1].
// Errors are *OutputError and never quote the output.
func ParseDraft(raw []byte, queues []string) (Draft, error) {
	if len(raw) > MaxOutputBytes {
		return Draft{}, outputErr("output too large")
	}
	obj, err := findObject(raw)
	if err != nil {
		return Draft{}, err
	}
	var w wireDraft
	dec := json.NewDecoder(bytes.NewReader(obj))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&w); err != nil {
		return Draft{}, decodeReason(err)
	}
	switch {
	case w.Priority == nil:
		return Draft{}, outputErr("missing priority")
	case w.Route == nil:
		return Draft{}, outputErr("missing route")
	case w.Rationale == nil:
		return Draft{}, outputErr("missing rationale")
	case w.Claims == nil:
		return Draft{}, outputErr("missing claims")
	case w.Confidence == nil:
		return Draft{}, outputErr("missing confidence")
	}
	var d Draft
	p, err := rules.ParsePriority(strings.TrimSpace(*w.Priority))
	if err != nil {
		return Draft{}, outputErr("unknown priority")
	}
	d.Priority = p
	d.Route = strings.TrimSpace(*w.Route)
	if !slices.Contains(queues, d.Route) {
		return Draft{}, outputErr("unknown route")
	}
	d.Rationale = strings.TrimSpace(*w.Rationale)
	if d.Rationale == "" {
		return Draft{}, outputErr("empty rationale")
	}
	c := *w.Confidence
	if math.IsNaN(c) || c < 0 || c > 1 {
		return Draft{}, outputErr("confidence outside [0, 1]")
	}
	d.Confidence = c
	if w.ReplyDraft != nil {
		d.ReplyDraft = strings.TrimSpace(*w.ReplyDraft)
	}
	if len(*w.Claims) == 0 {
		return Draft{}, outputErr("no claims")
	}
	for i, wc := range *w.Claims {
		if wc.Text == nil || strings.TrimSpace(*wc.Text) == "" {
			return Draft{}, outputErr(fmt.Sprintf("claim %d has no text", i+1))
		}
		if wc.Evidence == nil || len(*wc.Evidence) == 0 {
			return Draft{}, outputErr(fmt.Sprintf("claim %d has no evidence", i+1))
		}
		cl := Claim{Text: strings.TrimSpace(*wc.Text)}
		for _, e := range *wc.Evidence {
			e = strings.TrimSpace(e)
			if e == "" {
				return Draft{}, outputErr(fmt.Sprintf("claim %d has an empty evidence reference", i+1))
			}
			cl.Evidence = append(cl.Evidence, e)
		}
		d.Claims = append(d.Claims, cl)
	}
	return d, nil
}

func decodeReason(err error) error {
	msg := err.Error()
	if name, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
		name = strings.Trim(name, `"`)
		if fieldName.MatchString(name) {
			return outputErr(fmt.Sprintf("extra field %q", name))
		}
		return outputErr("extra field")
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		if fieldName.MatchString(strings.ReplaceAll(te.Field, ".", "_")) {
			return outputErr(fmt.Sprintf("wrong JSON type for %s", te.Field))
		}
		return outputErr("wrong JSON type")
	}
	return outputErr("malformed JSON")
}

// findObject returns the single JSON object in raw, after stripping a code
// fence; prose around it is allowed, two or more objects are not.
func findObject(raw []byte) ([]byte, error) {
	s := bytes.TrimSpace(raw)
	if len(s) == 0 {
		return nil, outputErr("empty output")
	}
	if json.Valid(s) {
		if s[0] != '{' {
			return nil, outputErr("output is not a JSON object")
		}
		return s, nil
	}
	s = stripFence(s)
	var objs [][]byte
	for i := 0; i < len(s); i++ {
		if s[i] != '{' {
			continue
		}
		end := matchBrace(s, i)
		if end < 0 {
			break
		}
		cand := s[i : end+1]
		if json.Valid(cand) {
			objs = append(objs, cand)
			i = end
		}
	}
	switch len(objs) {
	case 0:
		return nil, outputErr("no parseable JSON object in output")
	case 1:
		return objs[0], nil
	default:
		return nil, outputErr("more than one JSON object in output")
	}
}

func stripFence(s []byte) []byte {
	start := bytes.Index(s, []byte("```"))
	if start < 0 {
		return s
	}
	rest := s[start+3:]
	if nl := bytes.IndexByte(rest, '\n'); nl >= 0 && nl < 20 {
		rest = rest[nl+1:] // skip the info string ("json")
	}
	if end := bytes.Index(rest, []byte("```")); end >= 0 {
		rest = rest[:end]
	}
	return bytes.TrimSpace(rest)
}

// matchBrace returns the index of the '}' closing the '{' at i, honouring
// JSON strings, or -1.
func matchBrace(s []byte, i int) int {
	depth, inStr := 0, false
	for j := i; j < len(s); j++ {
		c := s[j]
		if inStr {
			switch c {
			case '\\':
				j++
			case '"':
				inStr = false
			}
			continue
		}
		switch c {
		case '"':
			inStr = true
		case '{':
			depth++
		case '}':
			depth--
			if depth == 0 {
				return j
			}
		}
	}
	return -1
}
