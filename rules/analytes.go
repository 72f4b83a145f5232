package rules

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"

	"sigs.k8s.io/yaml"
)

// LOINC is the code system of the pack's analyte value sets.
const LOINC = "http://loinc.org"

type analyteYAML struct {
	Name          string             `json:"name"`
	Display       string             `json:"display"`
	Codes         []string           `json:"codes"`
	Unit          string             `json:"unit"`
	Units         map[string]float64 `json:"units"`
	Dimensionless bool               `json:"dimensionless"`
	Low           *float64           `json:"low"`
	High          *float64           `json:"high"`
	LowInclusive  bool               `json:"low_inclusive"`
	HighInclusive bool               `json:"high_inclusive"`
	// HighFromReferenceRange: the critical high limit is the Observation's
	// own referenceRange.high when sent (troponin's 99th-percentile URL);
	// High is then the per-assay fallback.
	HighFromReferenceRange bool `json:"high_from_reference_range"`
}

type overrideYAML struct {
	Analyte     string   `json:"analyte"`
	MinAgeYears *float64 `json:"min_age_years"`
	MaxAgeYears *float64 `json:"max_age_years"`
	Low         *float64 `json:"low"`
	High        *float64 `json:"high"`
	Unit        string   `json:"unit"`
	Note        string   `json:"note"`
}

type analytesYAML struct {
	Analytes  []analyteYAML  `json:"analytes"`
	Overrides []overrideYAML `json:"overrides"`
}

type analyte struct {
	name, display, unit string
	units               map[string]float64 // normalised unit key -> factor to canonical
	dimensionless       bool
	low, high           *float64
	lowIncl, highIncl   bool
	highFromRef         bool
}

type bandOverride struct {
	analyte   string
	minAge    *float64
	maxAge    *float64
	low, high *float64 // canonical unit
}

type analyteTable struct {
	byName    map[string]*analyte
	byLOINC   map[string]string
	overrides []bandOverride
}

// normUnit canonicalises a unit string for lookup: case-folded, no spaces,
// micro signs as u, "^" as "*", and a leading "x10*" or "10e" exponent
// written as "10*".
func normUnit(u string) string {
	var b strings.Builder
	b.Grow(len(u))
	for _, r := range u {
		switch {
		case r == ' ' || r == '\t':
		case r == 'µ' || r == 'μ':
			b.WriteByte('u')
		case r == '^':
			b.WriteByte('*')
		case r == '×':
			b.WriteByte('x')
		case r >= 'A' && r <= 'Z':
			b.WriteRune(r + ('a' - 'A'))
		default:
			b.WriteRune(r)
		}
	}
	out := b.String()
	out = strings.TrimPrefix(out, "x")
	if strings.HasPrefix(out, "10e") {
		out = "10*" + out[3:]
	}
	return out
}

func (c *compiler) compileAnalytes(src []byte) *analyteTable {
	var ay analytesYAML
	if err := yaml.UnmarshalStrict(src, &ay); err != nil {
		c.fail(analytesFile, "", yamlErrLine(err), 0, fmt.Errorf("parse: %w", err))
		return nil
	}
	lines := strings.Split(string(src), "\n")
	t := &analyteTable{byName: map[string]*analyte{}, byLOINC: map[string]string{}}
	from := 0
	for _, a := range ay.Analytes {
		line := findKeyLine(lines, from, "name", a.Name)
		if line > 0 {
			from = line
		}
		fail := func(err error) { c.fail(analytesFile, "", line, 0, fmt.Errorf("analyte %q: %w", a.Name, err)) }
		if a.Name == "" {
			fail(errors.New("name is required"))
			continue
		}
		if _, dup := t.byName[a.Name]; dup {
			fail(errors.New("duplicate analyte"))
			continue
		}
		if a.Unit == "" {
			fail(errors.New("unit is required"))
		}
		if len(a.Codes) == 0 {
			fail(errors.New("codes are required"))
		}
		an := &analyte{name: a.Name, display: a.Display, unit: a.Unit, units: map[string]float64{normUnit(a.Unit): 1},
			dimensionless: a.Dimensionless, low: a.Low, high: a.High, lowIncl: a.LowInclusive, highIncl: a.HighInclusive,
			highFromRef: a.HighFromReferenceRange}
		if an.display == "" {
			an.display = a.Name
		}
		for _, u := range slices.Sorted(maps.Keys(a.Units)) {
			f := a.Units[u]
			if f <= 0 || math.IsNaN(f) || math.IsInf(f, 0) {
				fail(fmt.Errorf("unit %q: factor must be positive", u))
				continue
			}
			an.units[normUnit(u)] = f
		}
		for _, code := range a.Codes {
			if prev, dup := t.byLOINC[code]; dup {
				fail(fmt.Errorf("code %s already belongs to %q", code, prev))
				continue
			}
			t.byLOINC[code] = a.Name
		}
		t.byName[a.Name] = an
	}
	from = 0
	for _, o := range ay.Overrides {
		line := findKeyLine(lines, from, "analyte", o.Analyte)
		if line > 0 {
			from = line
		}
		bo, err := t.override(ThresholdOverride{Analyte: o.Analyte, MinAgeYears: o.MinAgeYears, MaxAgeYears: o.MaxAgeYears,
			Low: o.Low, High: o.High, Unit: o.Unit})
		if err != nil {
			c.fail(analytesFile, "", line, 0, fmt.Errorf("override: %w", err))
			continue
		}
		t.overrides = append(t.overrides, bo)
	}
	return t
}

// override validates o and converts its limits to the analyte's canonical unit.
func (t *analyteTable) override(o ThresholdOverride) (bandOverride, error) {
	a := t.byName[o.Analyte]
	if a == nil {
		return bandOverride{}, fmt.Errorf("unknown analyte %q", o.Analyte)
	}
	if o.Low == nil && o.High == nil {
		return bandOverride{}, fmt.Errorf("analyte %q: override sets neither low nor high", o.Analyte)
	}
	if o.MinAgeYears != nil && o.MaxAgeYears != nil && *o.MaxAgeYears <= *o.MinAgeYears {
		return bandOverride{}, fmt.Errorf("analyte %q: empty age band", o.Analyte)
	}
	f := 1.0
	if o.Unit != "" || !a.dimensionless {
		u := o.Unit
		if u == "" {
			u = a.unit
		}
		var ok bool
		f, ok = a.units[normUnit(u)]
		if !ok {
			return bandOverride{}, fmt.Errorf("analyte %q: override unit %q is not understood", o.Analyte, u)
		}
	}
	conv := func(v *float64) *float64 {
		if v == nil {
			return nil
		}
		x := *v * f
		return &x
	}
	return bandOverride{analyte: o.Analyte, minAge: o.MinAgeYears, maxAge: o.MaxAgeYears, low: conv(o.Low), high: conv(o.High)}, nil
}

// hasAgeBands reports whether any pack or tenant override for the analyte
// depends on age.
func (t *analyteTable) hasAgeBands(name string, tenant []bandOverride) bool {
	for _, o := range slices.Concat(t.overrides, tenant) {
		if o.analyte == name && (o.minAge != nil || o.maxAge != nil) {
			return true
		}
	}
	return false
}

// limits returns the critical low and high limits in canonical units after
// overrides. Precedence, later wins: table, pack all-ages, pack age band,
// tenant all-ages, tenant age band. Bands are [min, max) in years; a band
// never applies when the age is unknown.
func (t *analyteTable) limits(a *analyte, age *float64, tenant []bandOverride) (low, high *float64) {
	low, high = a.low, a.high
	apply := func(list []bandOverride, banded bool) {
		for _, o := range list {
			if o.analyte != a.name || (o.minAge != nil || o.maxAge != nil) != banded {
				continue
			}
			if banded {
				if age == nil || (o.minAge != nil && *age < *o.minAge) || (o.maxAge != nil && *age >= *o.maxAge) {
					continue
				}
			}
			if o.low != nil {
				low = o.low
			}
			if o.high != nil {
				high = o.high
			}
		}
	}
	apply(t.overrides, false)
	apply(t.overrides, true)
	apply(tenant, false)
	apply(tenant, true)
	return low, high
}

// interval is the set of true values a reported value with a comparator
// allows: [lo, hi] with open ends where loOpen/hiOpen.
type interval struct {
	lo, hi         float64
	loOpen, hiOpen bool
}

func valueInterval(v float64, comparator string) interval {
	switch comparator {
	case "<":
		return interval{lo: math.Min(0, v), hi: v, hiOpen: true}
	case "<=":
		return interval{lo: math.Min(0, v), hi: v}
	case ">":
		return interval{lo: v, hi: math.Inf(1), loOpen: true}
	case ">=":
		return interval{lo: v, hi: math.Inf(1)}
	}
	return interval{lo: v, hi: v}
}

// tri is a three-valued comparison result.
type tri int

const (
	triNo tri = iota
	triMaybe
	triYes
)

// above reports whether the values in iv exceed limit (>= when inclusive).
func (iv interval) above(limit float64, inclusive bool) tri {
	in := func(x float64, open bool) bool { // is the end x (open or not) inside the region?
		if inclusive {
			return x > limit || (x == limit && !open)
		}
		return x > limit
	}
	allIn := iv.lo > limit || (iv.lo == limit && (iv.loOpen || inclusive))
	if allIn {
		return triYes
	}
	// Some value in the region iff the top end reaches into it.
	if in(iv.hi, iv.hiOpen) || (iv.hi > limit) {
		return triMaybe
	}
	return triNo
}

// below reports whether the values in iv fall under limit (<= when inclusive).
func (iv interval) below(limit float64, inclusive bool) tri {
	neg := interval{lo: -iv.hi, hi: -iv.lo, loOpen: iv.hiOpen, hiOpen: iv.loOpen}
	return neg.above(-limit, inclusive)
}
