package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"time"
)

// Expectation is what a golden case expects. Empty fields are not checked.
// Disposition is an upper-case name or "NONE"; Rules, when present, is the
// exact set of rule ids that must fire (an empty list: none may fire).
type Expectation struct {
	Disposition string   `json:"disposition,omitempty"`
	Priority    string   `json:"priority,omitempty"`
	Rules       []string `json:"rules,omitempty"`
	NoRules     bool     `json:"no_rules,omitempty"` // no rule may fire
	Flags       []string `json:"flags,omitempty"`    // flags that must be set
	Escalates   *bool    `json:"escalates,omitempty"`
}

// Case is one golden case: an Input and what the pack must make of it.
type Case struct {
	Name   string
	Input  Input
	Expect Expectation
}

type caseFile struct {
	Name                   string            `json:"name"`
	Trigger                json.RawMessage   `json:"trigger"`
	Context                []json.RawMessage `json:"context"`
	AgeYears               *float64          `json:"age_years"`
	PreviouslyCommunicated bool              `json:"previously_communicated"`
	Now                    string            `json:"now"`
	Tenant                 *struct {
		CodeMap   map[string]string `json:"code_map"`
		Overrides []struct {
			Analyte     string   `json:"analyte"`
			MinAgeYears *float64 `json:"min_age_years"`
			MaxAgeYears *float64 `json:"max_age_years"`
			Low         *float64 `json:"low"`
			High        *float64 `json:"high"`
			Unit        string   `json:"unit"`
		} `json:"overrides"`
	} `json:"tenant"`
	Expect Expectation `json:"expect"`
}

// LoadCases reads every *.json file in dir of fsys (in name order) as a
// golden case: {"name", "trigger", "context", "age_years",
// "previously_communicated", "now" (RFC 3339), "tenant": {"code_map",
// "overrides"}, "expect": {"disposition", "priority", "rules", "no_rules",
// "flags", "escalates"}}.
func LoadCases(fsys fs.FS, dir string) ([]Case, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("rules: load cases: %w", err)
	}
	var cases []Case
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".json") {
			continue
		}
		b, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("rules: load case %s: %w", e.Name(), err)
		}
		var cf caseFile
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&cf); err != nil {
			return nil, fmt.Errorf("rules: load case %s: %w", e.Name(), err)
		}
		if len(cf.Trigger) == 0 {
			return nil, fmt.Errorf("rules: load case %s: no trigger", e.Name())
		}
		c := Case{Name: cf.Name, Expect: cf.Expect, Input: Input{Trigger: cf.Trigger, Context: cf.Context,
			PatientAgeYears: cf.AgeYears, PreviouslyCommunicated: cf.PreviouslyCommunicated}}
		if c.Name == "" {
			c.Name = strings.TrimSuffix(e.Name(), ".json")
		}
		if cf.Now != "" {
			if c.Input.Now, err = time.Parse(time.RFC3339, cf.Now); err != nil {
				return nil, fmt.Errorf("rules: load case %s: now: %w", e.Name(), err)
			}
		}
		if cf.Tenant != nil {
			c.Input.Tenant.CodeMap = cf.Tenant.CodeMap
			for _, o := range cf.Tenant.Overrides {
				c.Input.Tenant.Overrides = append(c.Input.Tenant.Overrides, ThresholdOverride(o))
			}
		}
		cases = append(cases, c)
	}
	return cases, nil
}

// CaseResult is the result of one golden case.
type CaseResult struct {
	Name string
	Pass bool
	Got  Outcome
	Want Expectation
	Diff string // what differed, one finding per line; "" when Pass
}

// RunCases evaluates every case with p and compares with its expectation.
func RunCases(p *Pack, cases []Case) []CaseResult {
	out := make([]CaseResult, 0, len(cases))
	for _, c := range cases {
		got, err := p.Evaluate(c.Input)
		r := CaseResult{Name: c.Name, Got: got, Want: c.Expect}
		var diffs []string
		if err != nil {
			diffs = append(diffs, "evaluate: "+err.Error())
		} else {
			diffs = check(got, c.Expect)
		}
		r.Diff = strings.Join(diffs, "\n")
		r.Pass = len(diffs) == 0
		out = append(out, r)
	}
	return out
}

func check(got Outcome, want Expectation) []string {
	var diffs []string
	if want.Disposition != "" {
		g := got.Disposition.String()
		if g == "" {
			g = "NONE"
		}
		if !strings.EqualFold(g, want.Disposition) {
			diffs = append(diffs, fmt.Sprintf("disposition: got %s, want %s", g, want.Disposition))
		}
	}
	if want.Priority != "" {
		g := got.Priority.String()
		if g == "" {
			g = "none"
		}
		if !strings.EqualFold(g, want.Priority) {
			diffs = append(diffs, fmt.Sprintf("priority: got %s, want %s", g, want.Priority))
		}
	}
	ids := ruleIDs(got)
	if want.Rules != nil || want.NoRules {
		w := slices.Clone(want.Rules)
		slices.Sort(w)
		if !slices.Equal(ids, w) {
			diffs = append(diffs, fmt.Sprintf("rules: got %v, want %v", ids, w))
		}
	}
	for _, f := range want.Flags {
		if !got.Flags.Has(Flag(f)) {
			diffs = append(diffs, fmt.Sprintf("flags: %s missing (got %v)", f, got.Flags))
		}
	}
	if want.Escalates != nil && got.Escalates() != *want.Escalates {
		diffs = append(diffs, fmt.Sprintf("escalates: got %v, want %v", got.Escalates(), *want.Escalates))
	}
	return diffs
}

func ruleIDs(o Outcome) []string {
	ids := []string{}
	for _, h := range o.Hits {
		ids = append(ids, h.RuleID)
	}
	slices.Sort(ids)
	return ids
}

// CaseDiff is a case whose outcome differs between two packs.
type CaseDiff struct {
	Name     string
	Old, New Outcome
	Diff     string
}

// DiffPacks evaluates every case with both packs and returns the cases whose
// disposition, priority, flags, queue or fired rules differ, in case order.
func DiffPacks(old, new *Pack, cases []Case) []CaseDiff {
	var out []CaseDiff
	for _, c := range cases {
		o, errO := old.Evaluate(c.Input)
		n, errN := new.Evaluate(c.Input)
		var d []string
		if (errO == nil) != (errN == nil) {
			d = append(d, fmt.Sprintf("error: old %v, new %v", errO, errN))
		}
		if o.Disposition != n.Disposition {
			d = append(d, fmt.Sprintf("disposition: %s -> %s", o.Disposition, n.Disposition))
		}
		if o.Priority != n.Priority {
			d = append(d, fmt.Sprintf("priority: %s -> %s", o.Priority, n.Priority))
		}
		if !slices.Equal(o.Flags, n.Flags) {
			d = append(d, fmt.Sprintf("flags: %v -> %v", o.Flags, n.Flags))
		}
		if o.Queue != n.Queue {
			d = append(d, fmt.Sprintf("queue: %s -> %s", o.Queue, n.Queue))
		}
		if oi, ni := ruleIDs(o), ruleIDs(n); !slices.Equal(oi, ni) {
			d = append(d, fmt.Sprintf("rules: %v -> %v", oi, ni))
		}
		if len(d) > 0 {
			out = append(out, CaseDiff{Name: c.Name, Old: o, New: n, Diff: strings.Join(d, "\n")})
		}
	}
	return out
}

// ErrTriggerNotFound is returned by EvalBundle when no entry has the trigger id.
var ErrTriggerNotFound = errors.New("rules: trigger not found in bundle")

// EvalBundle evaluates a FHIR Bundle (or a single resource). The trigger is
// the entry whose resource id, "Type/id" or fullUrl equals triggerID, or the
// first entry when triggerID is empty; every other entry is context. A single
// resource is itself the trigger.
func EvalBundle(p *Pack, bundle []byte, triggerID string, now time.Time, tenant TenantConfig) (Outcome, error) {
	var head struct {
		ResourceType string `json:"resourceType"`
		Entry        []struct {
			FullURL  string          `json:"fullUrl"`
			Resource json.RawMessage `json:"resource"`
		} `json:"entry"`
	}
	if err := json.Unmarshal(bundle, &head); err != nil {
		return Outcome{}, fmt.Errorf("%w: %w", ErrNotResource, err)
	}
	in := Input{Now: now, Tenant: tenant}
	if head.ResourceType != "Bundle" {
		in.Trigger = bundle
		return p.Evaluate(in)
	}
	idx := -1
	for i, e := range head.Entry {
		if len(e.Resource) == 0 {
			continue
		}
		if triggerID == "" {
			idx = i
			break
		}
		var r struct {
			ResourceType string `json:"resourceType"`
			ID           string `json:"id"`
		}
		_ = json.Unmarshal(e.Resource, &r)
		if r.ID == triggerID || r.ResourceType+"/"+r.ID == triggerID || (e.FullURL != "" && e.FullURL == triggerID) {
			idx = i
			break
		}
	}
	if idx < 0 {
		return Outcome{PackVersion: p.version, PackSHA256: p.sha}, ErrTriggerNotFound
	}
	in.Trigger = head.Entry[idx].Resource
	for i, e := range head.Entry {
		if i != idx && len(e.Resource) > 0 {
			in.Context = append(in.Context, e.Resource)
		}
	}
	return p.Evaluate(in)
}
