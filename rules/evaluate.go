package rules

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/expr-lang/expr/vm"
)

// TenantConfig is per-tenant rule configuration, supplied by the caller with
// every Input (it is part of what a decision replays).
type TenantConfig struct {
	// CodeMap links local codes to pack analytes: "system|code" -> analyte name.
	CodeMap map[string]string
	// Overrides replace critical limits; they win over the pack's own
	// (age-banded) overrides, and within the tenant an age band wins.
	Overrides []ThresholdOverride
}

// ThresholdOverride replaces an analyte's critical low and/or high limit,
// optionally for an age band [MinAgeYears, MaxAgeYears). Unit is the unit of
// Low and High (the analyte's canonical unit when empty).
type ThresholdOverride struct {
	Analyte                  string
	MinAgeYears, MaxAgeYears *float64
	Low, High                *float64
	Unit                     string
}

// Input is one evaluation: the trigger and what the caller knows about it.
type Input struct {
	Trigger                json.RawMessage   // the trigger resource, exact bytes
	Context                []json.RawMessage // the rest of the snapshot (may be empty)
	PatientAgeYears        *float64          // nil: taken from a Patient in Context, if any
	PreviouslyCommunicated bool              // the patient was already told this result
	Now                    time.Time         // the only clock rules see
	Tenant                 TenantConfig
}

// Value is one fact that made a rule fire: a lab value (normalised and as
// sent) or a red-flag match.
type Value struct {
	Analyte, System, Code string
	Value                 *float64 // in Unit (canonical) when the unit was understood, else as sent
	Unit                  string   // normalised UCUM unit; "" when not understood
	OriginalValue         string
	OriginalUnit          string
	Comparator            string
	Interpretation        string
	Limit                 *float64 // the limit crossed (critical or reference), in Unit
	Category              string   // red-flag category
	Phrase                string   // matched phrase
}

// Hit is one rule that fired, with every fact that fired it.
type Hit struct {
	RuleID, RuleVersion string
	Kind                Kind
	Disposition         Disposition
	Priority            Priority
	Flags               Flags
	Queue               string
	Message             string
	Values              []Value
}

// Outcome is the result of evaluating a pack on one trigger. Hits are in
// pack rule order; Disposition and Priority are the maxima over the hits,
// Flags their union and Queue the queue of the most severe hit.
type Outcome struct {
	PackVersion, PackSHA256 string
	Hits                    []Hit
	Disposition             Disposition
	Priority                Priority
	Flags                   Flags
	Queue                   string
	Reasons                 []string
}

// Escalates reports whether any critical or red-flag rule fired (the
// pipeline commits the escalation before any LLM call when it does).
func (o Outcome) Escalates() bool {
	for _, h := range o.Hits {
		if h.Kind == KindCritical || h.Kind == KindRedFlag {
			return true
		}
	}
	return false
}

// Floor is the least a decision may be: nothing downstream may lower the
// disposition or priority or drop a flag.
type Floor struct {
	Disposition Disposition
	Priority    Priority
	Flags       Flags
	Queue       string
}

// Floor returns the outcome as a floor.
func (o Outcome) Floor() Floor {
	return Floor{Disposition: o.Disposition, Priority: o.Priority, Flags: slices.Clone(o.Flags), Queue: o.Queue}
}

// Raise returns max(f, draft): the larger disposition and priority, the union
// of flags, and the floor's queue unless the draft's disposition is more
// severe (a draft may raise, never lower).
func (f Floor) Raise(draft Floor) Floor {
	out := Floor{Disposition: MaxDisposition(f.Disposition, draft.Disposition), Priority: MaxPriority(f.Priority, draft.Priority),
		Flags: f.Flags.Union(draft.Flags...), Queue: f.Queue}
	if draft.Disposition > f.Disposition || out.Queue == "" {
		out.Queue = draft.Queue
	}
	return out
}

// MaxDisposition returns the most severe of ds (DispositionNone for none).
func MaxDisposition(ds ...Disposition) Disposition {
	m := DispositionNone
	for _, d := range ds {
		m = max(m, d)
	}
	return m
}

// MaxPriority returns the most urgent of ps (PriorityNone for none).
func MaxPriority(ps ...Priority) Priority {
	m := PriorityNone
	for _, p := range ps {
		m = max(m, p)
	}
	return m
}

// ErrNotResource is returned (wrapped) when a trigger is not a JSON object
// with a resourceType.
var ErrNotResource = errors.New("rules: trigger is not a FHIR resource")

type fact struct {
	env   Env
	value *Value
	msg   messageData
}

type tenantTables struct {
	codeMap   map[string]string
	overrides []bandOverride
}

// ValidateTenant checks a tenant configuration against the pack (analyte
// names and units); Evaluate returns the same error for a bad one.
func (p *Pack) ValidateTenant(tc TenantConfig) error {
	_, err := p.tenant(tc)
	return err
}

func (p *Pack) tenant(tc TenantConfig) (tenantTables, error) {
	tt := tenantTables{codeMap: tc.CodeMap}
	for k, a := range tc.CodeMap {
		if p.analytes.byName[a] == nil {
			return tt, fmt.Errorf("rules: tenant code map: key %q names unknown analyte %q", k, a)
		}
	}
	for _, o := range tc.Overrides {
		bo, err := p.analytes.override(o)
		if err != nil {
			return tt, fmt.Errorf("rules: tenant override: %w", err)
		}
		tt.overrides = append(tt.overrides, bo)
	}
	return tt, nil
}

// Evaluate runs every rule of the pack on the trigger. It returns an error
// only when the trigger is not a JSON resource or the tenant configuration is
// invalid; unsupported resource types give an empty Outcome, and resources
// whose fields have unexpected shapes give a MANUAL_TRIAGE guard.
func (p *Pack) Evaluate(in Input) (Outcome, error) {
	out := Outcome{PackVersion: p.version, PackSHA256: p.sha}
	trimmed := bytes.TrimSpace(in.Trigger)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return out, ErrNotResource
	}
	var head struct {
		ResourceType string `json:"resourceType"`
	}
	if err := json.Unmarshal(trimmed, &head); err != nil {
		return out, fmt.Errorf("%w: %w", ErrNotResource, err)
	}
	if head.ResourceType == "" {
		return out, fmt.Errorf("%w: no resourceType", ErrNotResource)
	}
	tt, err := p.tenant(in.Tenant)
	if err != nil {
		return out, err
	}
	base := Env{Resource: head.ResourceType, PreviouslyCommunicated: in.PreviouslyCommunicated}
	var facts []fact
	switch head.ResourceType {
	case "Observation":
		facts = p.observationFacts(trimmed, in, base, tt)
	case "Communication":
		var c communication
		if err := json.Unmarshal(trimmed, &c); err != nil {
			facts = shapeGuard(base)
			break
		}
		if ignoredStatus(c.Status) {
			break
		}
		base.Status = c.Status
		text, unreadable := communicationText(&c)
		facts = p.textFacts(base, text, unreadable)
	case "QuestionnaireResponse":
		var q questionnaireResponse
		if err := json.Unmarshal(trimmed, &q); err != nil {
			facts = shapeGuard(base)
			break
		}
		if ignoredStatus(q.Status) {
			break
		}
		base.Status = q.Status
		var parts []string
		unreadable := ""
		questionnaireText(q.Item, &parts, &unreadable)
		facts = p.textFacts(base, strings.Join(parts, "\n"), unreadable)
	default:
		return out, nil
	}
	return p.run(out, facts)
}

func ignoredStatus(s string) bool { return s == "entered-in-error" || s == "cancelled" }

func shapeGuard(base Env) []fact {
	base.Fact = FactResource
	base.Unreadable = true
	base.UnreadableReason = "resource does not have the FHIR R4 shape the engine reads"
	return []fact{{env: base, msg: messageData{Reason: base.UnreadableReason}}}
}

func (p *Pack) textFacts(base Env, text, unreadable string) []fact {
	switch {
	case unreadable != "":
	case unreadableScript(text):
		unreadable = "text the engine cannot read (script not covered by the red-flag lexicon)"
	case p.lex.foreign(text):
		unreadable = "text the engine cannot read (language may not be covered by the red-flag lexicon)"
	}
	res := base
	res.Fact = FactResource
	res.Unreadable = unreadable != ""
	res.UnreadableReason = unreadable
	facts := []fact{{env: res, msg: messageData{Reason: unreadable}}}
	for _, rf := range p.lex.scan(text) {
		e := base
		e.Fact = FactRedFlag
		e.Category, e.Phrase = rf.Category, rf.Phrase
		facts = append(facts, fact{env: e, value: &Value{Category: rf.Category, Phrase: rf.Phrase},
			msg: messageData{Category: rf.Category, Phrase: rf.Phrase}})
	}
	return facts
}

func (p *Pack) observationFacts(raw []byte, in Input, base Env, tt tenantTables) []fact {
	var o observation
	if err := json.Unmarshal(raw, &o); err != nil {
		return shapeGuard(base)
	}
	if ignoredStatus(o.Status) {
		return nil
	}
	base.Status = o.Status
	res := base
	res.Fact = FactResource
	res.Amended = o.Status == "amended" || o.Status == "corrected"
	facts := []fact{{env: res}}
	age := in.PatientAgeYears
	ageLooked := age != nil
	vals := append([]obsValue{o.obsValue}, o.Component...)
	for _, v := range vals {
		a, sys, code := p.resolve(v.Code, tt)
		if a != nil && age == nil && !ageLooked && p.analytes.hasAgeBands(a.name, tt.overrides) {
			age, ageLooked = ageFromContext(in.Context, in.Now), true
		}
		facts = append(facts, p.valueFact(base, v, a, sys, code, age, tt))
	}
	if age != nil {
		for i := range facts {
			facts[i].env.AgeYears, facts[i].env.HasAge = *age, true
		}
	}
	return facts
}

// resolve finds the analyte of a code: the first coding known to the tenant
// code map or to the pack's LOINC value sets.
func (p *Pack) resolve(cc codeableConcept, tt tenantTables) (*analyte, string, string) {
	for _, c := range cc.Coding {
		if name, ok := tt.codeMap[c.System+"|"+c.Code]; ok {
			return p.analytes.byName[name], c.System, c.Code
		}
		if isLOINC(c.System) {
			if name, ok := p.analytes.byLOINC[strings.TrimSpace(c.Code)]; ok {
				return p.analytes.byName[name], c.System, c.Code
			}
		}
	}
	if len(cc.Coding) > 0 {
		return nil, cc.Coding[0].System, cc.Coding[0].Code
	}
	return nil, "", ""
}

func (p *Pack) valueFact(base Env, v obsValue, a *analyte, sys, code string, age *float64, tt tenantTables) fact {
	e := base
	e.Fact = FactValue
	e.System, e.Code = sys, code
	e.Interpretation = interpretationCode(v.Interpretation)
	val := &Value{System: sys, Code: code, Interpretation: e.Interpretation}
	md := messageData{System: sys, Code: code, Interpretation: e.Interpretation}
	if a != nil {
		e.Analyte = a.name
		val.Analyte = a.name
		md.Analyte, md.Display = a.name, a.display
	} else if len(v.Code.Coding) > 0 {
		md.Display = v.Code.Coding[0].Display
	}
	if md.Display == "" {
		md.Display = v.Code.Text
	}
	if md.Display == "" {
		md.Display = code
	}

	// The reported number.
	var rawUnit, rawUnitAlt string
	switch {
	case v.ValueQuantity != nil:
		if f, ok := numberOf(v.ValueQuantity.Value); ok {
			e.HasValue, e.Value = true, f
			e.Comparator = v.ValueQuantity.Comparator
		}
		rawUnit, rawUnitAlt = v.ValueQuantity.Code, v.ValueQuantity.Unit
	case v.ValueInteger != nil:
		if f, ok := numberOf(v.ValueInteger); ok {
			e.HasValue, e.Value = true, f
		}
	case v.ValueString != nil:
		if c, f, ok := parseValueString(*v.ValueString); ok {
			e.HasValue, e.Value, e.Comparator = true, f, c
		} else {
			e.ValueUnreadable = a != nil
		}
	case v.ValueCodeableConcept != nil:
		e.Coded = true
	}
	e.DataAbsent = v.DataAbsentReason != nil && !e.HasValue
	if rawUnit == "" {
		rawUnit, rawUnitAlt = rawUnitAlt, ""
	}
	e.UnitMissing = rawUnit == ""
	if e.HasValue {
		f := e.Value
		val.OriginalValue = e.Comparator + formatNumber(f)
		val.OriginalUnit = rawUnit
		val.Comparator = e.Comparator
		md.OriginalValue, md.OriginalUnit, md.Comparator = val.OriginalValue, rawUnit, e.Comparator
		e.Unit = rawUnit
		factor := 1.0
		if a != nil {
			factor, e.UnitKnown = a.unitFactor(rawUnit, rawUnitAlt)
			if e.UnitKnown {
				e.Value = f * factor
				e.Unit = a.unit
			}
		}
		nv := e.Value
		val.Value = &nv
		if e.UnitKnown || a == nil {
			val.Unit = e.Unit
		}
		if a != nil && !e.UnitKnown {
			val.Unit = ""
		}
		md.Value, md.Unit = e.Comparator+formatNumber(e.Value), e.Unit
		iv := valueInterval(e.Value, e.Comparator)

		// Reference range (first one with a limit), converted when possible.
		for _, rr := range v.ReferenceRange {
			lo, okLo := p.refLimit(rr.Low, a, rawUnit, e.UnitKnown)
			hi, okHi := p.refLimit(rr.High, a, rawUnit, e.UnitKnown)
			if !okLo && !okHi {
				continue
			}
			e.RefLow, e.HasRefLow, e.RefHigh, e.HasRefHigh = lo, okLo, hi, okHi
			break
		}
		md.RefRange = refRangeText(&e, rawUnit)
		if e.HasRefLow && iv.below(e.RefLow, false) != triNo {
			e.OutsideRef = true
			val.Limit = ptr(e.RefLow)
		}
		if e.HasRefHigh && iv.above(e.RefHigh, false) != triNo {
			e.OutsideRef = true
			val.Limit = ptr(e.RefHigh)
		}

		// Critical limits.
		if a != nil && e.UnitKnown {
			low, high := p.analytes.limits(a, age, tt.overrides)
			if a.highFromRef && e.HasRefHigh {
				high = ptr(e.RefHigh)
			}
			if low != nil {
				e.CriticalLow, e.HasCriticalLow = *low, true
				switch iv.below(*low, a.lowIncl) {
				case triYes:
					e.BelowCriticalLow = true
					val.Limit = ptr(*low)
				case triMaybe:
					e.CriticalIndeterminate = true
					val.Limit = ptr(*low)
				}
			}
			if high != nil {
				e.CriticalHigh, e.HasCriticalHigh = *high, true
				switch iv.above(*high, a.highIncl) {
				case triYes:
					e.AboveCriticalHigh = true
					val.Limit = ptr(*high)
				case triMaybe:
					e.CriticalIndeterminate = true
					val.Limit = ptr(*high)
				}
			}
		}
		if val.Limit != nil {
			md.Limit = formatNumber(*val.Limit)
		}
	}
	return fact{env: e, value: val, msg: md}
}

func ptr(f float64) *float64 { return &f }

// unitFactor returns the factor from the sent unit (UCUM code, else the
// human-readable unit) to the canonical unit.
func (a *analyte) unitFactor(code, alt string) (float64, bool) {
	if code == "" && alt == "" {
		return 1, a.dimensionless
	}
	for _, u := range []string{code, alt} {
		if u == "" {
			continue
		}
		if f, ok := a.units[normUnit(u)]; ok {
			return f, true
		}
	}
	return 0, false
}

// refLimit converts one reference-range limit to the value's unit.
func (p *Pack) refLimit(q *quantity, a *analyte, valueUnit string, unitKnown bool) (float64, bool) {
	if q == nil {
		return 0, false
	}
	f, ok := numberOf(q.Value)
	if !ok {
		return 0, false
	}
	ru, ruAlt := q.Code, q.Unit
	if ru == "" {
		ru, ruAlt = ruAlt, ""
	}
	if ru == "" { // a range without a unit is in the value's unit
		if a != nil && unitKnown {
			fac, _ := a.unitFactor(valueUnit, "")
			return f * fac, true
		}
		return f, true
	}
	if a != nil && unitKnown {
		if fac, ok := a.unitFactor(ru, ruAlt); ok {
			return f * fac, true
		}
		return 0, false
	}
	if normUnit(ru) == normUnit(valueUnit) || (ruAlt != "" && normUnit(ruAlt) == normUnit(valueUnit)) {
		return f, true
	}
	return 0, false
}

// run evaluates every rule on every fact and folds the hits into out.
func (p *Pack) run(out Outcome, facts []fact) (Outcome, error) {
	if len(facts) == 0 {
		return out, nil
	}
	machine := p.vms.Get().(*vm.VM)
	defer p.vms.Put(machine)
	hits := make([]*Hit, len(p.rules))
	msgs := make([][]string, len(p.rules))
	for fi := range facts {
		f := &facts[fi]
		env := &f.env
		for ri := range p.rules {
			r := &p.rules[ri]
			if !r.sel.admits(env) {
				continue
			}
			res, err := machine.Run(r.prog, env)
			if err != nil {
				return out, fmt.Errorf("rules: rule %q: run: %w", r.ID, errors.New(safeRunError(err)))
			}
			if fired, _ := res.(bool); !fired {
				continue
			}
			h := hits[ri]
			if h == nil {
				h = &Hit{RuleID: r.ID, RuleVersion: r.Version, Kind: r.Kind, Disposition: r.Disposition,
					Priority: r.Priority, Flags: slices.Clone(r.Flags), Queue: r.Queue}
				hits[ri] = h
			}
			if f.value != nil {
				h.Values = append(h.Values, *f.value)
			}
			var b strings.Builder
			if err := r.tmpl.Execute(&b, f.msg); err != nil {
				return out, fmt.Errorf("rules: rule %q: message: %w", r.ID, errors.New("template failed"))
			}
			if m := b.String(); !slices.Contains(msgs[ri], m) {
				msgs[ri] = append(msgs[ri], m)
			}
		}
	}
	var top *Hit
	for ri, h := range hits {
		if h != nil {
			h.Message = strings.Join(msgs[ri], "; ")
		}
	}
	// Most severe first, so the first reason is the one that decided.
	order := make([]int, 0, len(hits))
	for ri, h := range hits {
		if h != nil {
			order = append(order, ri)
		}
	}
	sort.SliceStable(order, func(a, b int) bool {
		ha, hb := hits[order[a]], hits[order[b]]
		if ha.Disposition != hb.Disposition {
			return ha.Disposition > hb.Disposition
		}
		return ha.Priority > hb.Priority
	})
	for _, ri := range order {
		h := hits[ri]
		out.Hits = append(out.Hits, *h)
		out.Disposition = MaxDisposition(out.Disposition, h.Disposition)
		out.Priority = MaxPriority(out.Priority, h.Priority)
		out.Flags = out.Flags.Union(h.Flags...)
		out.Reasons = append(out.Reasons, h.Message)
		if h.Queue != "" && (top == nil || h.Disposition > top.Disposition ||
			(h.Disposition == top.Disposition && h.Priority > top.Priority)) {
			top = h
		}
	}
	if top != nil {
		out.Queue = top.Queue
	}
	return out, nil
}

// refRangeText renders the reference range in the unit the engine compares in.
func refRangeText(e *Env, unit string) string {
	switch {
	case e.HasRefLow && e.HasRefHigh:
		return formatNumber(e.RefLow) + "–" + formatNumber(e.RefHigh) + " " + unit
	case e.HasRefHigh:
		return "≤ " + formatNumber(e.RefHigh) + " " + unit
	case e.HasRefLow:
		return "≥ " + formatNumber(e.RefLow) + " " + unit
	}
	return ""
}

// safeRunError keeps the kind of a VM failure but never its values.
func safeRunError(err error) string {
	if strings.Contains(err.Error(), "memory budget") {
		return "memory budget exceeded"
	}
	return "evaluation failed"
}
