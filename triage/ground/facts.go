package ground

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/vigil-health/vigil/fhir"
)

func parseFloat(s string) (float64, error) { return strconv.ParseFloat(s, 64) }

// quantity is a number with a canonical unit ("" when unitless or unknown)
// and the analyte it measures (lower-cased names and codes; may be "").
type quantity struct {
	n       number
	unit    string
	analyte string
	raw     string // as written in the text, for problem messages
	// group, for text quantities, is the analyte the text names just before
	// the number ("Potassium 4.1 mmol/L"); it must match the resource's.
	group []string
}

// resourceFacts is what a resource states, indexed for matching.
type resourceFacts struct {
	quantities []quantity      // values with units
	numbers    []quantity      // every number, with or without unit (unit ignored)
	dates      map[string]bool // YYYY-MM-DD
	months     map[string]bool // YYYY-MM
	years      map[int]bool    // YYYY
	text       string          // lower-cased strings, space separated
	kind       string          // resource type
	labels     []string        // lower-cased medication or condition names (MedicationRequest, Condition, …)
	ages       map[int]bool    // the patient's age (Patient resources only, when Now is known)
	analyte    string          // lower-cased code text of the resource itself ("" when none)
	bpPairs    [][2]number     // systolic/diastolic pairs, in that order
	birthDate  string          // Patient.birthDate, for ages (computed per call: Now is data)
}

// textFacts is what a piece of draft text asserts.
type textFacts struct {
	quantities  []quantity
	bare        []quantity // numbers without a known unit
	pairs       []quantity // "150/95" without a unit, read as mm[Hg] in a record's text
	durations   []quantity // "3 days", "2 business days", "24 hours": facts in a claim, plans in a reply
	dates       []string   // YYYY-MM-DD, with the original text
	dateRaw     []string
	months      []string // YYYY-MM
	monthRaw    []string
	years       []int
	ages        []int
	bpPairs     [][2]number // "142/88" in written order (systolic first)
	pairRaw     []string
	monthDays   []string // "MM-DD" of a date written without a year ("Dec 1")
	monthDayRaw []string
	rel         []relDate   // "yesterday", "last month", "2 years ago"
	counts      []countFact // "3 prior potassium results"
}

// relDate is a date written relative to Options.Now: it must fall between
// lo and hi days before Now.
type relDate struct {
	raw    string
	lo, hi float64
	cal    string // "week", "month" or "year" for "last week" and the like: a calendar window resolved against Now
	past   bool   // "yesterday", "… ago", "last …": a past event; "today", "this week" may be a plan
}

// window returns the days-before-now window of r.
func (r relDate) window(now time.Time) (lo, hi float64) {
	if r.cal == "" {
		return r.lo, r.hi
	}
	n := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	var start, end time.Time // the previous calendar period [start, end)
	slack := 2.0
	switch r.cal {
	case "week":
		wd := (int(n.Weekday()) + 6) % 7 // Monday = 0
		end = n.AddDate(0, 0, -wd)
		start = end.AddDate(0, 0, -7)
	case "month":
		end = time.Date(n.Year(), n.Month(), 1, 0, 0, 0, 0, time.UTC)
		start = end.AddDate(0, -1, 0)
		slack = 7
	default:
		end = time.Date(n.Year(), 1, 1, 0, 0, 0, 0, time.UTC)
		start = end.AddDate(-1, 0, 0)
		slack = 31
	}
	lo = n.Sub(end).Hours()/24 + 1 - slack
	hi = n.Sub(start).Hours()/24 + slack
	return math.Max(lo, 1), hi
}

// countFact is a count of results of an analyte ("2 prior potassium
// results"); it must equal the number of such Observations in the snapshot.
type countFact struct {
	n     int
	group []string
	raw   string
}

// skipKeys are JSON members whose content is not clinical content.
func skipKeys() map[string]bool {
	return map[string]bool{"meta": true, "id": true, "reference": true, "system": true, "url": true,
		"fullUrl": true, "div": true, "identifier": true, "encounter": true, "subject": true, "patient": true,
		"requester": true, "performer": true, "serviceProvider": true, "participant": true, "extension": true}
}

// dateKeys are members whose string value is a clinically meaningful date.
func dateKeys() map[string]bool {
	return map[string]bool{"effectiveDateTime": true, "effectiveInstant": true, "issued": true, "authoredOn": true,
		"onsetDateTime": true, "recordedDate": true, "sent": true, "received": true, "authored": true,
		"abatementDateTime": true, "start": true, "end": true, "valueDateTime": true, "valueDate": true,
		"occurrenceDateTime": true, "date": true, "birthDate": true, "lastOccurrence": true}
}

// indexResource extracts the facts of one resource.
func (v *Verifier) indexResource(r *fhir.Resource) *resourceFacts {
	f := &resourceFacts{dates: map[string]bool{}, months: map[string]bool{}, years: map[int]bool{}, kind: r.Type}
	dec := json.NewDecoder(bytes.NewReader(r.Raw))
	dec.UseNumber()
	var doc any
	if dec.Decode(&doc) != nil {
		return f
	}
	root, _ := doc.(map[string]any)
	analyte := strings.ToLower(conceptText(root["code"]))
	var texts []string
	var walk func(key string, x any, analyte string)
	walk = func(key string, x any, analyte string) {
		switch t := x.(type) {
		case map[string]any:
			if c, ok := t["code"]; ok {
				if s := strings.ToLower(conceptText(c)); s != "" {
					analyte = s
				}
			}
			if val, ok := t["value"].(json.Number); ok {
				unit, _ := t["unit"].(string)
				if unit == "" {
					unit, _ = t["code"].(string)
				}
				if n, ok := parseNumber(val.String()); ok {
					f.numbers = append(f.numbers, quantity{n: n, analyte: analyte})
					if cu := v.units.canon(unit); cu != "" {
						f.quantities = append(f.quantities, quantity{n: n, unit: cu, analyte: analyte})
					}
				}
			}
			for k, c := range t {
				if v.skipKeys[k] {
					continue
				}
				walk(k, c, analyte)
			}
		case []any:
			for _, c := range t {
				walk(key, c, analyte)
			}
		case json.Number:
			if key != "value" {
				if n, ok := parseNumber(t.String()); ok {
					f.numbers = append(f.numbers, quantity{n: n, analyte: analyte})
				}
			}
		case string:
			if v.dateKeys[key] && len(t) >= 4 {
				f.addDate(t)
				return
			}
			if key == "code" || key == "status" || key == "use" || key == "resourceType" || key == "unit" {
				texts = append(texts, t)
				return
			}
			texts = append(texts, t)
			if !strings.ContainsAny(t, "0123456789") {
				return
			}
			tf := v.extract(t)
			for _, q := range tf.quantities {
				q.analyte = analyte
				f.quantities = append(f.quantities, q)
				f.numbers = append(f.numbers, q)
			}
			for _, q := range tf.bare {
				f.numbers = append(f.numbers, quantity{n: q.n, analyte: analyte})
			}
			f.quantities = append(f.quantities, tf.pairs...)
			f.bpPairs = append(f.bpPairs, tf.bpPairs...)
			for _, q := range tf.durations {
				f.numbers = append(f.numbers, quantity{n: q.n})
				if q.unit != "" {
					f.quantities = append(f.quantities, q)
				}
			}
			for _, d := range tf.dates {
				f.addDate(d)
			}
		}
	}
	walk("", root, analyte)
	f.analyte = analyte
	var sys, dia []number
	for _, q := range f.quantities {
		switch {
		case strings.Contains(q.analyte, "systolic"):
			sys = append(sys, q.n)
		case strings.Contains(q.analyte, "diastolic"):
			dia = append(dia, q.n)
		}
	}
	if len(sys) == 1 && len(dia) == 1 {
		f.bpPairs = append(f.bpPairs, [2]number{sys[0], dia[0]})
	}
	f.text = " " + strings.ToLower(strings.Join(texts, " \n ")) + " "
	switch r.Type {
	case "MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration", "Medication":
		if s := conceptText(root["medicationCodeableConcept"]); s != "" {
			f.labels = append(f.labels, strings.ToLower(s))
		}
		if s := conceptText(root["code"]); s != "" {
			f.labels = append(f.labels, strings.ToLower(s))
		}
	case "Condition", "AllergyIntolerance":
		if s := conceptText(root["code"]); s != "" {
			f.labels = append(f.labels, strings.ToLower(s))
		}
	case "Patient":
		f.birthDate, _ = root["birthDate"].(string)
	}
	return f
}

// withAge returns f with the patient's age on now (f itself when it is not
// a Patient or now is zero). Cached facts are never modified.
func (f *resourceFacts) withAge(now time.Time) *resourceFacts {
	if f.birthDate == "" || now.IsZero() {
		return f
	}
	a, ok := ageOn(f.birthDate, now)
	if !ok {
		return f
	}
	g := *f
	g.ages = map[int]bool{a: true}
	return &g
}

func (f *resourceFacts) addDate(s string) {
	if len(s) >= 10 && s[4] == '-' && s[7] == '-' {
		f.dates[s[:10]] = true
	}
	if len(s) >= 7 && s[4] == '-' {
		f.months[s[:7]] = true
	}
	if y, err := strconv.Atoi(s[:4]); err == nil {
		f.years[y] = true
	}
}

// conceptText returns the text and every display of a CodeableConcept-like value.
func conceptText(x any) string {
	m, ok := x.(map[string]any)
	if !ok {
		return ""
	}
	var parts []string
	if t, ok := m["text"].(string); ok && t != "" {
		parts = append(parts, t)
	}
	if cs, ok := m["coding"].([]any); ok {
		for _, c := range cs {
			if cm, ok := c.(map[string]any); ok {
				if d, ok := cm["display"].(string); ok && d != "" && !slices.Contains(parts, d) {
					parts = append(parts, d)
				}
				if d, ok := cm["code"].(string); ok && d != "" {
					parts = append(parts, d)
				}
			}
		}
	}
	return strings.Join(parts, " | ")
}

func ageOn(birthDate string, now time.Time) (int, bool) {
	bd, err := time.Parse("2006-01-02", birthDate)
	if err != nil || now.Before(bd) {
		return 0, false
	}
	now = now.UTC()
	a := now.Year() - bd.Year()
	if now.Month() < bd.Month() || (now.Month() == bd.Month() && now.Day() < bd.Day()) {
		a--
	}
	return a, true
}

// extractor holds the compiled patterns for reading facts out of text.
type extractor struct {
	isoDate   *regexp.Regexp
	usDate    *regexp.Regexp
	mdyDate   *regexp.Regexp
	dmyDate   *regexp.Regexp
	monthYear *regexp.Regexp
	isoMonth  *regexp.Regexp
	bp        *regexp.Regexp
	bpBare    *regexp.Regexp
	bpOver    *regexp.Regexp
	num       *regexp.Regexp
	unit      *regexp.Regexp
	age       *regexp.Regexp
	duration  *regexp.Regexp
	agePre    *regexp.Regexp
	monthDay  *regexp.Regexp
	relative  *regexp.Regexp
	refRange  *regexp.Regexp
	count     *regexp.Regexp
	months    map[string]time.Month
}

func newExtractor(units map[string]string) *extractor {
	const month = `(jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\.?`
	keys := make([]string, 0, len(units))
	for k := range units {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b string) int {
		if len(a) != len(b) {
			return len(b) - len(a)
		}
		return strings.Compare(a, b)
	})
	alts := make([]string, len(keys))
	for i, k := range keys {
		alts[i] = regexp.QuoteMeta(k)
	}
	ms := map[string]time.Month{}
	for m := time.January; m <= time.December; m++ {
		name := strings.ToLower(m.String())
		ms[name] = m
		ms[name[:3]] = m
	}
	ms["sept"] = time.September
	return &extractor{
		isoDate:   regexp.MustCompile(`\b(\d{4})-(\d{2})-(\d{2})(?:T[0-9:.]+(?:Z|[+\-]\d{2}:?\d{2})?)?\b`),
		usDate:    regexp.MustCompile(`\b(\d{1,2})/(\d{1,2})/(\d{4})\b`),
		mdyDate:   regexp.MustCompile(`(?i)\b` + month + `\s+(\d{1,2})(?:st|nd|rd|th)?,?\s+(\d{4})\b`),
		dmyDate:   regexp.MustCompile(`(?i)\b(\d{1,2})(?:st|nd|rd|th)?\s+(?:of\s+)?` + month + `,?\s+(\d{4})\b`),
		monthYear: regexp.MustCompile(`(?i)\b` + month + `,?\s+(\d{4})\b`),
		isoMonth:  regexp.MustCompile(`\b(\d{4})-(\d{2})\b`),
		bp:        regexp.MustCompile(`(?i)\b(\d{2,3}(?:\.\d+)?)\s*/\s*(\d{2,3}(?:\.\d+)?)\s*(mm\s?hg|mm\[hg\])`),
		bpBare:    regexp.MustCompile(`\b(\d{2,3})\s*/\s*(\d{2,3})\b`),
		bpOver:    regexp.MustCompile(`(?i)\b(\d{2,3}(?:\.\d+)?)\s+over\s+(\d{2,3}(?:\.\d+)?)\b`),
		num:       regexp.MustCompile(`\d+(?:\.\d+)?`),
		unit:      regexp.MustCompile(`(?i)^\s?(` + strings.Join(alts, "|") + `)`),
		age:       regexp.MustCompile(`(?i)^[\s\-]*(?:years?|yrs?|y)[\s\-]*(?:old|o\b)|^\s*(?:yo|y/o)\b`),
		duration:  regexp.MustCompile(`(?i)^\s*(?:[a-z]+\s+)?(minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?)\b`),
		agePre:    regexp.MustCompile(`(?i)\b(?:age|aged)\s*:?\s*$`),
		monthDay:  regexp.MustCompile(`(?i)\b` + month + `\s+(\d{1,2})(?:st|nd|rd|th)?\b`),
		relative: regexp.MustCompile(`(?i)\b(yesterday|today|tonight|this morning|earlier today|(?:last|past|this|previous) (?:week|month|year)|` +
			`(?:(over|more than|almost|nearly|about|around|approximately|roughly|under|less than|just over|just under)\s+)?` +
			`(an?|one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|a few|several|\d{1,3})\s+(days?|weeks?|months?|years?)\s+ago)\b`),
		refRange: regexp.MustCompile(`(?i)[(\[]\s*(?:ref(?:erence)?\.?(?:\s+(?:range|interval))?|normal(?:\s+range)?|nl|range|normal limits)\s*[:=]?\s*` +
			`(?:[<>≤≥]\s*\d+(?:\.\d+)?|\d+(?:\.\d+)?\s*(?:-|–|—|to)\s*\d+(?:\.\d+)?)\s*[a-zA-Z/%µμ0-9.\[\]*^{}_]*\s*[)\]]`),
		count: regexp.MustCompile(`(?i)\b(\d{1,3}|one|two|three|four|five|six|seven|eight|nine|ten)\s+(?:(?:prior|previous|earlier|recorded|separate|total|past|other)\s+)?` +
			`([a-z][a-z0-9+ ]{0,40}?)\s+(results?|readings?|measurements?|values?|levels?|tests?|checks?)\b`),
		months: ms,
	}
}

func (e *extractor) month(s string) (time.Month, bool) {
	s = strings.TrimSuffix(strings.ToLower(s), ".")
	if m, ok := e.months[s]; ok {
		return m, true
	}
	if len(s) >= 3 {
		m, ok := e.months[s[:3]]
		return m, ok
	}
	return 0, false
}

func blank(b []byte, lo, hi int) {
	for i := lo; i < hi; i++ {
		b[i] = ' '
	}
}

func isWordByte(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

// extract reads quantities, dates and ages out of text.
func (v *Verifier) extract(text string) textFacts {
	e := v.ex
	var tf textFacts
	b := []byte(text)
	addDate := func(y, m, d int, raw string) {
		if m < 1 || m > 12 || d < 1 || d > 31 {
			return
		}
		tf.dates = append(tf.dates, time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC).Format("2006-01-02"))
		tf.dateRaw = append(tf.dateRaw, raw)
	}
	// A reference range quoted with a value ("(ref 3.5–5.1 mmol/L)") states
	// no fact about the patient; the value before it is still checked.
	// Each pattern runs only when the text has what it needs (most resource
	// strings have none of it): this halves the cost of indexing a resource.
	lower := asciiLower(text)
	has := func(subs ...string) bool {
		for _, x := range subs {
			if strings.Contains(lower, x) {
				return true
			}
		}
		return false
	}
	hasMonth := has("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
	hasSlash := strings.IndexByte(text, '/') >= 0
	hasDash := strings.IndexByte(text, '-') >= 0
	subs := func(re *regexp.Regexp, ok bool) [][]int {
		if !ok {
			return nil
		}
		return re.FindAllSubmatchIndex(b, -1)
	}
	for _, m := range subs(e.refRange, has("(", "[")) {
		blank(b, m[0], m[1])
	}
	for _, m := range subs(e.relative, has("ago", "yesterday", "today", "tonight", "morning", "last ", "past ", "this ", "previous ")) {
		raw := string(b[m[0]:m[1]])
		low := strings.ToLower(raw)
		if lo, hi, ok := relativeWindow(low, b, m); ok {
			r := relDate{raw: raw, lo: lo, hi: hi, past: low == "yesterday" || strings.HasSuffix(low, " ago") ||
				strings.HasPrefix(low, "last ") || strings.HasPrefix(low, "previous ") || strings.HasPrefix(low, "past ")}
			if strings.HasPrefix(low, "last ") || strings.HasPrefix(low, "previous ") {
				r.cal = low[strings.LastIndexByte(low, ' ')+1:]
			}
			tf.rel = append(tf.rel, r)
		}
		blank(b, m[0], m[1])
	}
	for _, m := range subs(e.isoDate, hasDash) {
		y, _ := strconv.Atoi(string(b[m[2]:m[3]]))
		mo, _ := strconv.Atoi(string(b[m[4]:m[5]]))
		d, _ := strconv.Atoi(string(b[m[6]:m[7]]))
		addDate(y, mo, d, string(b[m[0]:m[1]]))
		blank(b, m[0], m[1])
	}
	for _, m := range subs(e.usDate, hasSlash) {
		mo, _ := strconv.Atoi(string(b[m[2]:m[3]]))
		d, _ := strconv.Atoi(string(b[m[4]:m[5]]))
		y, _ := strconv.Atoi(string(b[m[6]:m[7]]))
		addDate(y, mo, d, string(b[m[0]:m[1]]))
		blank(b, m[0], m[1])
	}
	// "March 4, 2019" (month group 1, day group 2) and "4 March 2019" (day 1, month 2).
	for _, named := range []struct {
		re         *regexp.Regexp
		month, day int
	}{{e.mdyDate, 1, 2}, {e.dmyDate, 2, 1}} {
		for _, m := range subs(named.re, hasMonth) {
			mo, ok := e.month(string(b[m[2*named.month]:m[2*named.month+1]]))
			if !ok {
				continue
			}
			d, _ := strconv.Atoi(string(b[m[2*named.day]:m[2*named.day+1]]))
			y, _ := strconv.Atoi(string(b[m[6]:m[7]]))
			addDate(y, int(mo), d, string(b[m[0]:m[1]]))
			blank(b, m[0], m[1])
		}
	}
	for _, m := range subs(e.monthYear, hasMonth) {
		mo, ok := e.month(string(b[m[2]:m[3]]))
		if !ok {
			continue
		}
		y, _ := strconv.Atoi(string(b[m[4]:m[5]]))
		tf.months = append(tf.months, time.Date(y, mo, 1, 0, 0, 0, 0, time.UTC).Format("2006-01"))
		tf.monthRaw = append(tf.monthRaw, string(b[m[0]:m[1]]))
		blank(b, m[0], m[1])
	}
	for _, m := range subs(e.isoMonth, hasDash) {
		mo, _ := strconv.Atoi(string(b[m[4]:m[5]]))
		if mo < 1 || mo > 12 {
			continue
		}
		tf.months = append(tf.months, string(b[m[0]:m[1]]))
		tf.monthRaw = append(tf.monthRaw, string(b[m[0]:m[1]]))
		blank(b, m[0], m[1])
	}
	for _, m := range subs(e.monthDay, hasMonth) {
		mo, ok := e.month(string(b[m[2]:m[3]]))
		if !ok {
			continue
		}
		if strings.EqualFold(string(b[m[2]:m[3]]), "may") && m[2] > 0 {
			continue // "you may 2…": the verb, not the month (unless it starts the text)
		}
		d, _ := strconv.Atoi(string(b[m[4]:m[5]]))
		if d < 1 || d > 31 {
			continue
		}
		tf.monthDays = append(tf.monthDays, fmt.Sprintf("%02d-%02d", int(mo), d))
		tf.monthDayRaw = append(tf.monthDayRaw, string(b[m[0]:m[1]]))
		blank(b, m[0], m[1])
	}
	for _, m := range subs(e.bp, hasSlash) {
		raw := string(b[m[0]:m[1]])
		if s, ok1 := parseNumber(string(b[m[2]:m[3]])); ok1 {
			if d, ok2 := parseNumber(string(b[m[4]:m[5]])); ok2 {
				tf.bpPairs = append(tf.bpPairs, [2]number{s, d})
				tf.pairRaw = append(tf.pairRaw, raw)
			}
		}
		for _, g := range [][2]int{{m[2], m[3]}, {m[4], m[5]}} {
			if n, ok := parseNumber(string(b[g[0]:g[1]])); ok {
				tf.quantities = append(tf.quantities, quantity{n: n, unit: "mm[Hg]", raw: raw})
			}
		}
		blank(b, m[0], m[1])
	}
	for _, m := range subs(e.bpBare, hasSlash) {
		if m[1] < len(b) && b[m[1]] == '/' {
			continue
		}
		raw := string(b[m[0]:m[1]])
		if s, ok1 := parseNumber(string(b[m[2]:m[3]])); ok1 {
			if d, ok2 := parseNumber(string(b[m[4]:m[5]])); ok2 {
				tf.bpPairs = append(tf.bpPairs, [2]number{s, d})
				tf.pairRaw = append(tf.pairRaw, raw)
			}
		}
		for _, g := range [][2]int{{m[2], m[3]}, {m[4], m[5]}} {
			if n, ok := parseNumber(string(b[g[0]:g[1]])); ok {
				tf.bare = append(tf.bare, quantity{n: n, raw: raw})
				tf.pairs = append(tf.pairs, quantity{n: n, unit: "mm[Hg]", raw: raw})
			}
		}
		blank(b, m[0], m[1])
	}
	for _, m := range subs(e.bpOver, has("over")) {
		// "142 over 88": the numbers are checked below; the pair keeps its order.
		s, ok1 := parseNumber(string(b[m[2]:m[3]]))
		d, ok2 := parseNumber(string(b[m[4]:m[5]]))
		if ok1 && ok2 {
			tf.bpPairs = append(tf.bpPairs, [2]number{s, d})
			tf.pairRaw = append(tf.pairRaw, string(b[m[0]:m[1]]))
		}
	}
	for _, m := range subs(e.count, has("result", "reading", "measurement", "value", "level", "test", "check")) {
		if m[0] > 0 && (b[m[0]-1] == '.' || b[m[0]-1] == ',') {
			continue
		}
		ams := v.analytes.findAllIndex(string(b[m[4]:m[5]]))
		if len(ams) == 0 {
			continue
		}
		am := ams[0]
		n, ok := countWord(strings.ToLower(string(b[m[2]:m[3]])))
		if !ok {
			continue
		}
		term := strings.ToLower(string(b[m[4]:m[5]])[am[0]:am[1]])
		tf.counts = append(tf.counts, countFact{n: n, group: v.analyteGroup[term], raw: string(b[m[0]:m[1]])})
		blank(b, m[2], m[3])
	}
	skipUntil := 0
	for _, m := range e.num.FindAllIndex(b, -1) {
		lo, hi := m[0], m[1]
		if lo < skipUntil {
			continue // inside a unit already read ("mL/min/1.73m2")
		}
		if lo > 0 && (isWordByte(b[lo-1]) || b[lo-1] == '.' || b[lo-1] == '-' && lo > 1 && isWordByte(b[lo-2])) {
			continue // part of an identifier, a code (A1c, R3, 4548-4) or a range tail
		}
		if lo > 0 && (b[lo-1] == '*' || b[lo-1] == '^' || b[lo-1] == '{') {
			continue
		}
		rest := b[hi:]
		if len(rest) > 0 && (rest[0] == '*' || rest[0] == '^') {
			continue // 10*3/uL written inside a unit
		}
		n, ok := parseNumber(string(b[lo:hi]))
		if !ok {
			continue
		}
		if am := e.age.FindIndex(rest); am != nil || e.agePre.Match(b[:lo]) {
			tf.ages = append(tf.ages, int(n.v))
			continue
		}
		if dm := e.duration.FindSubmatchIndex(rest); dm != nil {
			u := v.units.canon(string(rest[dm[2]:dm[3]]))
			if dm[2] > 0 && strings.TrimSpace(string(rest[:dm[2]])) != "" {
				u = "" // "2 business days": keep the number, not the unit
			}
			tf.durations = append(tf.durations, quantity{n: n, unit: u, raw: strings.TrimSpace(string(b[lo : hi+dm[1]]))})
			continue
		}
		if um := e.unit.FindSubmatchIndex(rest); um != nil {
			end := um[1]
			if end >= len(rest) || !isWordByte(rest[end]) || rest[end-1] == '%' {
				u := v.units.canon(string(rest[um[2]:um[3]]))
				if u != "" {
					tf.quantities = append(tf.quantities, quantity{n: n, unit: u, raw: strings.TrimSpace(string(b[lo : hi+end]))})
					skipUntil = hi + end
					continue
				}
			}
		}
		if len(rest) > 0 && isWordByte(rest[0]) && !(rest[0] >= '0' && rest[0] <= '9') {
			low := strings.ToLower(string(rest[:min(2, len(rest))]))
			if low == "st" || low == "nd" || low == "rd" || low == "th" || low == "x" {
				continue
			}
		}
		if n.decimals == 0 && n.v >= 1900 && n.v <= 2100 {
			tf.years = append(tf.years, int(n.v))
			continue
		}
		tf.bare = append(tf.bare, quantity{n: n, raw: string(b[lo:hi])})
	}
	return tf
}

// annotateAnalytes sets each quantity's group to the analyte named closest
// before it in the same clause (within 60 bytes).
func (v *Verifier) annotateAnalytes(text string, tf *textFacts) {
	ms := v.analytes.findAllIndex(text)
	if len(ms) == 0 {
		return
	}
	lower := strings.ToLower(text)
	set := func(qs []quantity) {
		for i := range qs {
			pos := strings.Index(text, qs[i].raw)
			if pos < 0 {
				continue
			}
			for j := len(ms) - 1; j >= 0; j-- {
				end := ms[j][1]
				if end > pos {
					continue
				}
				gap := text[end:pos]
				if pos-end <= 60 && !strings.ContainsAny(gap, ";\n") && !strings.Contains(gap, ". ") {
					qs[i].group = v.analyteGroup[lower[ms[j][0]:end]]
				}
				break
			}
		}
	}
	set(tf.quantities)
	set(tf.bare)
	set(tf.durations)
}

var countWords = map[string]int{"one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
	"nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "a": 1, "an": 1}

func countWord(s string) (int, bool) {
	if n, ok := countWords[s]; ok {
		return n, true
	}
	n, err := strconv.Atoi(s)
	return n, err == nil
}

// relativeWindow returns how many days before Now a relative date may lie
// (inclusive, with a day of slack for time zones).
func relativeWindow(raw string, b []byte, m []int) (lo, hi float64, ok bool) {
	switch {
	case raw == "today" || raw == "tonight" || raw == "this morning" || raw == "earlier today":
		return 0, 1, true
	case raw == "yesterday":
		return 0, 2, true
	case strings.HasSuffix(raw, "week"):
		if strings.HasPrefix(raw, "this") {
			return 0, 7, true
		}
		if strings.HasPrefix(raw, "past") {
			return 0, 8, true
		}
		return 1, 14, true
	case strings.HasSuffix(raw, "month"):
		if strings.HasPrefix(raw, "this") {
			return 0, 31, true
		}
		if strings.HasPrefix(raw, "past") {
			return 0, 32, true
		}
		return 1, 62, true
	case strings.HasSuffix(raw, "year") && !strings.HasSuffix(raw, "ago"):
		if strings.HasPrefix(raw, "this") {
			return 0, 366, true
		}
		if strings.HasPrefix(raw, "past") {
			return 0, 367, true
		}
		return 1, 731, true
	}
	if m[6] < 0 {
		return 0, 0, false
	}
	qual := ""
	if m[4] >= 0 {
		qual = strings.ToLower(string(b[m[4]:m[5]]))
	}
	nw := strings.ToLower(string(b[m[6]:m[7]]))
	unitW := strings.ToLower(string(b[m[8]:m[9]]))
	var n float64
	switch nw {
	case "a few":
		n = 3
	case "several":
		n = 5
	default:
		c, ok := countWord(nw)
		if !ok {
			return 0, 0, false
		}
		n = float64(c)
	}
	var days float64
	switch {
	case strings.HasPrefix(unitW, "day"):
		days = 1
	case strings.HasPrefix(unitW, "week"):
		days = 7
	case strings.HasPrefix(unitW, "month"):
		days = 30.44
	default:
		days = 365.25
	}
	c := n * days
	if nw == "a few" || nw == "several" {
		return 2 * days, 9 * days, true
	}
	switch qual {
	case "over", "more than", "just over":
		return c, math.Inf(1), true
	case "under", "less than", "just under":
		return 0, c + 1, true
	case "almost", "nearly":
		return 0.75*c - 1, c + 1, true
	}
	// "3 days ago", "about 2 years ago": half a unit either side (at least a day).
	slack := math.Max(1, days/2)
	if qual != "" {
		slack = math.Max(1, 0.25*c)
	}
	return c - slack, c + slack, true
}
