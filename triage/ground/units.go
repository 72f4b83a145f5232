package ground

import (
	"math"
	"strings"
)

// unitSynonyms maps lower-cased unit spellings to a canonical UCUM-like unit.
func unitSynonyms() map[string]string {
	return map[string]string{
		"mg/dl": "mg/dL", "mg/100ml": "mg/dL",
		"g/dl": "g/dL", "g/l": "g/L", "mg/l": "mg/L",
		"mmol/l": "mmol/L", "meq/l": "mmol/L", "mmol/liter": "mmol/L",
		"umol/l": "umol/L", "µmol/l": "umol/L", "μmol/l": "umol/L",
		"ng/ml": "ng/mL", "mg/ml": "mg/mL", "ng/l": "ng/L", "pg/ml": "pg/mL", "ug/ml": "ug/mL",
		"u/l": "U/L", "iu/l": "U/L",
		"%": "%", "percent": "%",
		"mm[hg]": "mm[Hg]", "mmhg": "mm[Hg]", "mm hg": "mm[Hg]",
		"kg": "kg", "kgs": "kg", "kilograms": "kg",
		"lb": "[lb_av]", "lbs": "[lb_av]", "[lb_av]": "[lb_av]", "pounds": "[lb_av]",
		"cm": "cm", "centimeters": "cm",
		"[in_i]": "[in_i]", "inches": "[in_i]",
		"kg/m2": "kg/m2", "kg/m^2": "kg/m2", "kg/m²": "kg/m2",
		"/min": "/min", "beats/min": "/min", "{beats}/min": "/min", "bpm": "/min", "breaths/min": "/min",
		"{breaths}/min": "/min", "beats per minute": "/min", "breaths per minute": "/min",
		"cel": "Cel", "°c": "Cel", "degc": "Cel", "deg c": "Cel",
		"[degf]": "[degF]", "°f": "[degF]", "degf": "[degF]", "deg f": "[degF]",
		"10*3/ul": "10*3/uL", "10^3/ul": "10*3/uL", "x10^3/ul": "10*3/uL", "x 10^3/ul": "10*3/uL",
		"k/ul": "10*3/uL", "thou/ul": "10*3/uL", "10*9/l": "10*3/uL", "10^9/l": "10*3/uL", "x10^9/l": "10*3/uL",
		"10*6/ul": "10*6/uL", "10^6/ul": "10*6/uL", "x10^6/ul": "10*6/uL", "m/ul": "10*6/uL",
		"10*12/l": "10*6/uL", "10^12/l": "10*6/uL", "x10^12/l": "10*6/uL",
		"fl": "fL", "pg": "pg",
		"ml/min/{1.73_m2}": "mL/min/{1.73_m2}", "ml/min/1.73m2": "mL/min/{1.73_m2}", "ml/min/1.73 m2": "mL/min/{1.73_m2}",
		"ml/min/1.73m^2": "mL/min/{1.73_m2}", "ml/min": "mL/min/{1.73_m2}",
		"mg": "mg", "mcg": "ug", "µg": "ug", "ug": "ug", "g": "g",
		"ml":    "mL",
		"units": "[iU]", "unit": "[iU]", "iu": "[iU]", "[iu]": "[iU]",
		"{inr}": "{INR}", "inr": "{INR}", "[ph]": "[pH]",
		"{score}": "{score}",
		"sec":     "s", "seconds": "s",
		"tablet": "{tablet}", "tablets": "{tablet}", "tab": "{tablet}", "tabs": "{tablet}", "pill": "{tablet}", "pills": "{tablet}",
		"capsule": "{capsule}", "capsules": "{capsule}", "puff": "{puff}", "puffs": "{puff}",
		"day": "d", "days": "d", "week": "wk", "weeks": "wk", "month": "mo", "months": "mo", "hour": "h", "hours": "h", "hrs": "h", "hr": "h",
		"minute": "min", "minutes": "min", "mins": "min", "min": "min", "year": "a", "years": "a",
	}
}

// doseUnits are canonical units that mark a medication dose after a name.
func doseUnits() map[string]bool {
	return map[string]bool{"mg": true, "ug": true, "g": true, "mL": true, "[iU]": true, "{tablet}": true, "{capsule}": true, "{puff}": true}
}

// molar masses / factors: mg/dL per mmol/L (or per umol/L for creatinine).
type analyteFactor struct {
	keys   []string // lower-case substrings of the analyte name, or LOINC codes
	molar  string   // molar unit
	factor float64  // mg/dL per molar unit
}

func analyteFactors() []analyteFactor {
	return []analyteFactor{
		{[]string{"glucose", "2345-7", "2339-0", "41653-7", "15074-8"}, "mmol/L", 18.016},
		{[]string{"cholesterol", "2093-3", "2085-9", "18262-6", "13457-7"}, "mmol/L", 38.67},
		{[]string{"triglyceride", "2571-8"}, "mmol/L", 88.57},
		{[]string{"creatinine", "2160-0", "38483-4"}, "umol/L", 1 / 88.42},
		{[]string{"calcium", "17861-6", "49765-1"}, "mmol/L", 4.008},
		{[]string{"urea nitrogen", "6299-2", "3094-0"}, "mmol/L", 2.801},
		{[]string{"magnesium", "19123-9"}, "mmol/L", 2.431},
	}
}

// massFactors converts mass-concentration units to mg/dL.
func massFactors() map[string]float64 {
	return map[string]float64{"mg/dL": 1, "g/dL": 1000, "g/L": 100, "mg/L": 0.1}
}

type unitTable struct {
	syn     map[string]string
	dose    map[string]bool
	analyte []analyteFactor
	mass    map[string]float64
}

func newUnitTable() *unitTable {
	return &unitTable{syn: unitSynonyms(), dose: doseUnits(), analyte: analyteFactors(), mass: massFactors()}
}

// canon returns the canonical unit for a spelling, or "" when unknown.
func (u *unitTable) canon(s string) string {
	s = strings.ToLower(strings.TrimSpace(s))
	if c, ok := u.syn[s]; ok {
		return c
	}
	return ""
}

// convert converts v from unit `from` to unit `to` for the given analyte
// (lower-cased name plus codes). ok is false when no conversion is known.
func (u *unitTable) convert(v float64, from, to, analyte string) (float64, bool) {
	if from == to {
		return v, true
	}
	if mf, ok := u.mass[from]; ok {
		if mt, ok := u.mass[to]; ok {
			return v * mf / mt, true
		}
	}
	switch {
	case from == "kg" && to == "[lb_av]":
		return v / 0.45359237, true
	case from == "[lb_av]" && to == "kg":
		return v * 0.45359237, true
	case from == "cm" && to == "[in_i]":
		return v / 2.54, true
	case from == "[in_i]" && to == "cm":
		return v * 2.54, true
	case from == "Cel" && to == "[degF]":
		return v*9/5 + 32, true
	case from == "[degF]" && to == "Cel":
		return (v - 32) * 5 / 9, true
	case from == "mmol/L" && to == "umol/L":
		return v * 1000, true
	case from == "umol/L" && to == "mmol/L":
		return v / 1000, true
	}
	for _, a := range u.analyte {
		if !containsAny(analyte, a.keys) {
			continue
		}
		// to mg/dL first
		var mgdl float64
		switch {
		case from == a.molar:
			mgdl = v * a.factor
		case u.mass[from] != 0:
			mgdl = v * u.mass[from]
		default:
			return 0, false
		}
		switch {
		case to == a.molar:
			return mgdl / a.factor, true
		case u.mass[to] != 0:
			return mgdl / u.mass[to], true
		}
		return 0, false
	}
	return 0, false
}

func containsAny(s string, subs []string) bool {
	for _, x := range subs {
		if strings.Contains(s, x) {
			return true
		}
	}
	return false
}

// number is a numeric value as written, with its precision.
type number struct {
	v        float64
	decimals int // digits after the point as written
	sig      int // significant digits as written
	text     string
}

func parseNumber(s string) (number, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return number{}, false
	}
	var v float64
	var err error
	if v, err = parseFloat(s); err != nil {
		return number{}, false
	}
	n := number{v: v, text: s}
	digits := strings.TrimLeft(strings.TrimPrefix(s, "-"), "0.")
	if i := strings.IndexAny(s, "eE"); i >= 0 {
		return n, true // exponent form: treat as exact
	}
	if _, frac, ok := strings.Cut(s, "."); ok {
		n.decimals = len(frac)
	}
	n.sig = len(strings.ReplaceAll(digits, ".", ""))
	return n, true
}

// sigDecimals is the number of decimals without trailing zeros.
func (n number) sigDecimals() int {
	_, frac, ok := strings.Cut(n.text, ".")
	if !ok {
		return 0
	}
	return len(strings.TrimRight(frac, "0"))
}

// roundMatch reports whether the text value t is the resource value r as
// written or rounded: equal values always match; a rounded value must keep
// at least two significant digits or the resource's own precision.
func roundMatch(r, t number) bool {
	if math.Abs(r.v-t.v) <= 1e-9*math.Max(1, math.Abs(r.v)) {
		return true
	}
	if t.sig < 2 && t.decimals < r.sigDecimals() {
		return false
	}
	p := math.Pow(10, float64(t.decimals))
	rounded := math.Round(r.v*p) / p
	return math.Abs(rounded-t.v) <= 1e-9*math.Max(1, math.Abs(t.v))
}

// convertedMatch compares a converted value with a text value, allowing
// half a unit in the text's last place plus 0.5 % for conversion factors.
func convertedMatch(conv float64, t number) bool {
	tol := 0.5*math.Pow(10, -float64(t.decimals)) + 0.005*math.Abs(conv)
	if t.sig < 2 {
		return false
	}
	return math.Abs(conv-t.v) <= tol
}
