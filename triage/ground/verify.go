package ground

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/rules"
)

// Options are the inputs of Verify besides the snapshot and the draft.
type Options struct {
	// RuleFloor is the priority the rules set for this trigger
	// (PriorityNone when no rule fired). A draft below it is flagged with
	// the problem "priority below rule outcome".
	RuleFloor rules.Priority
	// Now is the reference time for ages ("a 40-year-old"); with a zero Now
	// ages are not checked against the record.
	Now time.Time
}

// ClaimResult is the verification of one claim, stored with the decision.
type ClaimResult struct {
	Index    int      `json:"index"`
	Text     string   `json:"text"`
	Evidence []string `json:"evidence"`
	Grounded bool     `json:"grounded"`
	Problems []string `json:"problems,omitempty"`
}

// Result is the verification of a whole draft.
type Result struct {
	// Grounded is true only when every claim is grounded and Problems is empty.
	Grounded bool `json:"grounded"`
	// Claims holds one result per claim, in order.
	Claims []ClaimResult `json:"claims"`
	// Problems are draft-level findings: rationale, reply, priority, no claims.
	Problems []string `json:"problems,omitempty"`
}

// Failing returns the claims that are not grounded, for the reviewer.
func (r Result) Failing() []ClaimResult {
	var out []ClaimResult
	for _, c := range r.Claims {
		if !c.Grounded {
			out = append(out, c)
		}
	}
	return out
}

// Problem texts that callers may match on.
const (
	ProblemPriorityBelowRules = "priority below rule outcome"
	ProblemNoClaims           = "draft has no claims"
	ProblemNoEvidence         = "claim cites no evidence"
	ProblemDosing             = "reply contains dosing instructions"
)

// Verifier verifies drafts. It is safe for concurrent use; its only mutable
// state is the per-resource fact cache (see the package documentation).
// Build one with NewVerifier and reuse it (Verify uses a shared one).
type Verifier struct {
	units        *unitTable
	ex           *extractor
	skipKeys     map[string]bool
	dateKeys     map[string]bool
	drugs        *phraseMatcher
	conds        *phraseMatcher
	condSyn      map[string][]string // term → its group
	doseName     *regexp.Regexp
	stop         map[string]bool
	dosing       []*regexp.Regexp
	analytes     *phraseMatcher
	analyteGroup map[string][]string // lower-cased term → its group
	drugSyn      map[string][]string // lower-cased drug name → its synonyms (generic and brands)
	cache        *factCache
}

// NewVerifier compiles the vocabularies and patterns.
func NewVerifier() *Verifier {
	u := newUnitTable()
	v := &Verifier{units: u, ex: newExtractor(u.syn), skipKeys: skipKeys(), dateKeys: dateKeys(), condSyn: map[string][]string{}}
	v.drugSyn = map[string][]string{}
	drugs := commonDrugs()
	for _, g := range drugSynonyms() {
		for _, t := range g {
			v.drugSyn[t] = g
		}
		drugs = append(drugs, g...)
	}
	slices.Sort(drugs)
	v.drugs = newPhraseMatcher(slices.Compact(drugs))
	v.cache = newFactCache()
	var terms []string
	for _, g := range conditionGroups() {
		for _, t := range g {
			v.condSyn[t] = g
			terms = append(terms, t)
		}
	}
	v.conds = newPhraseMatcher(terms)
	v.analyteGroup = map[string][]string{}
	var aterms []string
	for _, g := range analyteGroups() {
		for _, t := range g {
			v.analyteGroup[t] = g
			aterms = append(aterms, t)
		}
	}
	v.analytes = newPhraseMatcher(aterms)
	v.doseName = regexp.MustCompile(`(?i)\b([a-z][a-z\-]{3,})\s+(\d+(?:\.\d+)?)\s*(mg|mcg|µg|ug|g|ml|units?|iu)\b`)
	v.stop = map[string]bool{}
	for _, w := range strings.Fields(`take takes taking took of to at is was were are the dose doses dosing about and with on by from
		increase increased decrease decreased reduce reduced additional extra daily plus total approximately only currently
		prescribed prescription dosage dose: using use give given receive received every than more less over under around
		start started stop stopped continue continued order ordered tablet tablets capsule capsules pill pills oral
		your their this that each once twice injection inject dispense refill refills needs need needed requests request
		reported reports amount strength contains containing`) {
		v.stop[w] = true
	}
	v.dosing = []*regexp.Regexp{
		regexp.MustCompile(`(?i)\b(take|taking|use|give|inject|apply|increase|decrease|reduce|double|halve|raise|lower|adjust|change|start|stop|skip|resume)\b[^.!?]{0,60}?\b(\d+(\.\d+)?|one|two|three|four|half|a)\s*(mg|mcg|µg|ug|g|ml|units?|iu|tablets?|tabs?|pills?|capsules?|puffs?|drops?|doses?)\b`),
		regexp.MustCompile(`(?i)\b\d+(\.\d+)?\s*(mg|mcg|µg|ug|units?|iu|ml|tablets?|pills?|capsules?|puffs?)\b[^.!?]{0,30}?\b(once|twice|three times|four times|daily|a day|per day|every|each (morning|evening|night)|at bedtime|bid|tid|qid|qd|q\d+h|prn)\b`),
		regexp.MustCompile(`(?i)\b(increase|decrease|reduce|double|halve|raise|lower|adjust|change|stop|skip)\s+(your|the)\s+(dose|dosage|medication|medicine|insulin|pills?|tablets?)\b`),
		regexp.MustCompile(`(?i)\b(stop|start|skip|resume)\s+taking\b`),
		regexp.MustCompile(`(?i)\b(twice|once|three times|four times)\s+(a day|daily)\b`),
		regexp.MustCompile(`(?i)\bevery\s+\d+\s+hours\b`),
		// "double your hydrochlorothiazide", "hold the lisinopril", "cut back on your water pill"
		regexp.MustCompile(`(?i)\b(increase|decrease|reduce|double|halve|raise|lower|adjust|change|stop|skip|hold|pause|discontinue|cut back on|cut down on|come off|go off)\s+(your|the|all)\s+(?:\w+\s+){0,2}?(` +
			strings.Join(drugAlternatives(drugs), "|") + `|medications?|medicines?|meds|dose|dosage|pills?|tablets?|insulin|water pill|diuretic|prescriptions?)\b`),
		regexp.MustCompile(`(?i)\b(an?|one|two|another)\s+(extra|additional|more|double|half)\s+(dose|tablet|pill|capsule|injection|puff|shot)s?\b`),
	}
	return v
}

func drugAlternatives(words []string) []string {
	ws := slices.Clone(words)
	slices.SortFunc(ws, func(a, b string) int { return len(b) - len(a) })
	for i, w := range ws {
		ws[i] = regexp.QuoteMeta(w)
	}
	return ws
}

var shared = sync.OnceValue(NewVerifier)

// Verify checks d against snap with a shared Verifier. See the package
// documentation for what is checked.
func Verify(snap *fhir.Snapshot, d llm.Draft, opts Options) Result {
	return shared().Verify(snap, d, opts)
}

// scope is the set of resources a piece of text is checked against.
type scope struct {
	facts []*resourceFacts
}

// Verify: see the package-level Verify.
func (v *Verifier) Verify(snap *fhir.Snapshot, d llm.Draft, opts Options) Result {
	res := Result{}
	if snap == nil {
		res.Problems = append(res.Problems, "no snapshot")
		for i, c := range d.Claims {
			res.Claims = append(res.Claims, ClaimResult{Index: i, Text: c.Text, Evidence: c.Evidence, Problems: []string{"no snapshot"}})
		}
		return res
	}
	all := map[*fhir.Resource]*resourceFacts{}
	var everything scope
	for _, r := range snap.Resources() {
		f := v.facts(r).withAge(opts.Now)
		all[r] = f
		everything.facts = append(everything.facts, f)
	}
	vocab := v.snapshotVocab(everything)

	if d.Priority == rules.PriorityNone {
		res.Problems = append(res.Problems, "draft has no priority")
	}
	if opts.RuleFloor != rules.PriorityNone && d.Priority < opts.RuleFloor {
		res.Problems = append(res.Problems, ProblemPriorityBelowRules+fmt.Sprintf(" (draft %s, rules %s)", d.Priority, opts.RuleFloor))
	}
	if len(d.Claims) == 0 {
		res.Problems = append(res.Problems, ProblemNoClaims)
	}
	for i, c := range d.Claims {
		cr := ClaimResult{Index: i, Text: c.Text, Evidence: slices.Clone(c.Evidence)}
		var cited scope
		if len(c.Evidence) == 0 {
			cr.Problems = append(cr.Problems, ProblemNoEvidence)
		}
		for _, ref := range c.Evidence {
			r, ok := snap.Lookup(ref)
			if !ok {
				cr.Problems = append(cr.Problems, fmt.Sprintf("cites %s, which is not in the snapshot", safeRef(ref)))
				continue
			}
			cited.facts = append(cited.facts, all[r])
		}
		if len(cited.facts) > 0 {
			cr.Problems = append(cr.Problems, v.checkText(c.Text, cited, everything, vocab, true, opts.Now)...)
		}
		cr.Problems = slices.Compact(cr.Problems)
		cr.Grounded = len(cr.Problems) == 0
		res.Claims = append(res.Claims, cr)
	}
	for _, p := range v.checkText(d.Rationale, everything, everything, vocab, false, opts.Now) {
		res.Problems = append(res.Problems, "rationale: "+p)
	}
	if d.ReplyDraft != "" {
		for _, p := range v.checkText(d.ReplyDraft, everything, everything, vocab, false, opts.Now) {
			res.Problems = append(res.Problems, "reply: "+p)
		}
		for _, re := range v.dosing {
			if re.MatchString(d.ReplyDraft) {
				res.Problems = append(res.Problems, ProblemDosing)
				break
			}
		}
	}
	res.Grounded = len(res.Problems) == 0
	for _, c := range res.Claims {
		res.Grounded = res.Grounded && c.Grounded
	}
	return res
}

// safeRef quotes a reference only when it looks like one.
func safeRef(ref string) string {
	if _, err := fhir.ParseRef(ref); err == nil || (len(ref) <= 12 && !strings.ContainsAny(ref, " \n")) {
		return fmt.Sprintf("%q", ref)
	}
	return "an unresolvable reference"
}

// vocab is the snapshot's medication and condition vocabulary.
type vocab struct {
	meds  string // lower-cased medication labels, space separated
	conds string // lower-cased condition (and allergy) labels
}

func (v *Verifier) snapshotVocab(s scope) vocab {
	var meds, conds []string
	for _, f := range s.facts {
		switch f.kind {
		case "MedicationRequest", "MedicationStatement", "MedicationDispense", "MedicationAdministration", "Medication":
			meds = append(meds, f.labels...)
		case "Condition":
			conds = append(conds, f.labels...)
		case "AllergyIntolerance":
			conds = append(conds, f.labels...)
			meds = append(meds, f.labels...) // "allergic to penicillin" names a drug that is in the record
		}
	}
	return vocab{meds: " " + strings.Join(meds, " \n ") + " ", conds: " " + strings.Join(conds, " \n ") + " "}
}

// hasWord reports whether term occurs in hay on word boundaries (hay is lower-cased).
func hasWord(hay, term string) bool {
	term = strings.ToLower(term)
	for i := 0; ; {
		j := strings.Index(hay[i:], term)
		if j < 0 {
			return false
		}
		s, e := i+j, i+j+len(term)
		if (s == 0 || !isWordByte(hay[s-1])) && (e >= len(hay) || !isWordByte(hay[e])) {
			return true
		}
		i = s + 1
	}
}

// checkText returns the problems of one text against a scope. claim is true
// for claim text (checked against the cited resources, whose text also
// grounds medication and condition mentions). Ages are always checked
// against the snapshot's Patient (all).
func (v *Verifier) checkText(text string, sc, all scope, voc vocab, claim bool, now time.Time) []string {
	if strings.TrimSpace(text) == "" {
		return nil
	}
	var probs []string
	tf := v.extract(text)
	v.annotateAnalytes(text, &tf)
	for _, q := range tf.quantities {
		if !v.quantityIn(q, sc) {
			probs = append(probs, fmt.Sprintf("value %q does not match the %s", q.raw, where(claim)))
		}
	}
	if claim {
		for _, q := range tf.durations {
			if q.unit != "" && !v.quantityIn(q, sc) || q.unit == "" && !numberIn(q, sc) {
				probs = append(probs, fmt.Sprintf("duration %q does not match the %s", q.raw, where(claim)))
			}
		}
	}
	for _, q := range tf.bare {
		if !claim && q.raw == "911" {
			continue
		}
		if !numberIn(q, sc) {
			probs = append(probs, fmt.Sprintf("number %q does not match the %s", q.raw, where(claim)))
		}
	}
	// In a claim, a date written in the same clause as values must be a date
	// of a resource those values come from ("Potassium 4.7 two days ago"
	// citing the potassium result and the message is not grounded by the
	// message's date).
	dsc := func(raw string) scope { return sc }
	if claim {
		dsc = v.dateScoper(text, tf, sc)
	}
	for i, d := range tf.dates {
		if !anyFacts(dsc(tf.dateRaw[i]), func(f *resourceFacts) bool { return f.dates[d] }) {
			probs = append(probs, fmt.Sprintf("date %q does not match the %s", tf.dateRaw[i], where(claim)))
		}
	}
	for i, m := range tf.months {
		if !anyFacts(dsc(tf.monthRaw[i]), func(f *resourceFacts) bool { return f.months[m] }) {
			probs = append(probs, fmt.Sprintf("date %q does not match the %s", tf.monthRaw[i], where(claim)))
		}
	}
	for i, md := range tf.monthDays {
		// A date without a year ("Dec 1") reads as within the past year.
		ok := anyFacts(dsc(tf.monthDayRaw[i]), func(f *resourceFacts) bool {
			for d := range f.dates {
				if strings.HasSuffix(d, "-"+md) && (now.IsZero() || withinDays(d, now, 0, 366)) {
					return true
				}
			}
			return false
		})
		if !ok {
			probs = append(probs, fmt.Sprintf("date %q does not match the %s", tf.monthDayRaw[i], where(claim)))
		}
	}
	citedLower := ""
	if !now.IsZero() && len(tf.rel) > 0 {
		var ts []string
		for _, f := range sc.facts {
			ts = append(ts, f.text)
		}
		citedLower = strings.Join(ts, " ")
	}
	for _, r := range tf.rel {
		if now.IsZero() || hasWord(citedLower, strings.ToLower(r.raw)) {
			continue // no reference time, or the cited text says the same ("used it yesterday")
		}
		if !claim && !r.past {
			continue // "we will call you today" in a reply or rationale is a plan, not a fact
		}
		lo, hi := r.window(now)
		ok := anyFacts(dsc(r.raw), func(f *resourceFacts) bool {
			for d := range f.dates {
				if withinDays(d, now, lo, hi) {
					return true
				}
			}
			return false
		})
		if !ok {
			probs = append(probs, fmt.Sprintf("relative date %q does not match the %s", r.raw, where(claim)))
		}
	}
	for _, c := range tf.counts {
		n := 0
		for _, f := range all.facts {
			if f.kind == "Observation" && f.analyte != "" && sameAnalyte(c.group, f.analyte) {
				n++
			}
		}
		if n != c.n {
			probs = append(probs, fmt.Sprintf("count %q does not match the record", c.raw))
		}
	}
	if len(tf.bpPairs) > 0 && anyFacts(sc, func(f *resourceFacts) bool { return len(f.bpPairs) > 0 }) {
		for i, p := range tf.bpPairs {
			ok := anyFacts(sc, func(f *resourceFacts) bool {
				for _, rp := range f.bpPairs {
					if roundMatch(rp[0], p[0]) && roundMatch(rp[1], p[1]) {
						return true
					}
				}
				return false
			})
			if !ok {
				probs = append(probs, fmt.Sprintf("blood pressure %q does not match the %s", tf.pairRaw[i], where(claim)))
			}
		}
	}
	for _, y := range tf.years {
		if !anyFacts(dsc(strconv.Itoa(y)), func(f *resourceFacts) bool { return f.years[y] }) {
			probs = append(probs, fmt.Sprintf("year %d does not match the %s", y, where(claim)))
		}
	}
	for _, a := range tf.ages {
		known := false
		ok := anyFacts(all, func(f *resourceFacts) bool {
			if f.ages != nil {
				known = true
			}
			return f.ages[a] || f.ages[a+1] || f.ages[a-1]
		})
		if known && !ok {
			probs = append(probs, fmt.Sprintf("age %d does not match the patient's record", a))
		}
	}
	citedText := ""
	if claim {
		var ts []string
		for _, f := range sc.facts {
			ts = append(ts, f.text)
		}
		citedText = strings.Join(ts, " ")
	}
	seen := map[string]bool{}
	for _, m := range v.drugs.findAll(text) {
		m = strings.ToLower(m)
		if seen[m] {
			continue
		}
		seen[m] = true
		if !v.drugKnown(m, voc, claim, citedText) {
			probs = append(probs, fmt.Sprintf("medication %q is not in the record", m))
		}
	}
	for _, m := range v.doseName.FindAllStringSubmatch(text, -1) {
		name := strings.ToLower(m[1])
		if seen[name] || v.stop[name] || v.units.canon(name) != "" || v.analyteGroup[name] != nil {
			continue
		}
		seen[name] = true
		if !hasWord(voc.meds, name) && !(claim && hasWord(citedText, name)) {
			probs = append(probs, fmt.Sprintf("medication %q is not in the record", name))
		}
	}
	for _, m := range v.conds.findAll(text) {
		m = strings.ToLower(m)
		if seen[m] {
			continue
		}
		seen[m] = true
		found := false
		for _, t := range v.condSyn[m] {
			if hasWord(voc.conds, t) || (claim && hasWord(citedText, t)) {
				found = true
				break
			}
		}
		if !found {
			probs = append(probs, fmt.Sprintf("condition %q is not in the record", m))
		}
	}
	return probs
}

// drugKnown reports whether a drug named in a draft (or one of its
// synonyms: generic, brand, abbreviation) is in the record or the cited text.
func (v *Verifier) drugKnown(m string, voc vocab, claim bool, citedText string) bool {
	names := v.drugSyn[m]
	if names == nil {
		names = []string{m}
	}
	for _, t := range names {
		if hasWord(voc.meds, t) || (claim && hasWord(citedText, t)) {
			return true
		}
	}
	return false
}

// withinDays reports whether the date d (YYYY-MM-DD) lies between lo and hi
// days before now's date.
func withinDays(d string, now time.Time, lo, hi float64) bool {
	t, err := time.Parse("2006-01-02", d)
	if err != nil {
		return false
	}
	n := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	days := n.Sub(t).Hours() / 24
	return days >= lo && days <= hi
}

func where(claim bool) string {
	if claim {
		return "cited resources"
	}
	return "record"
}

func anyFacts(sc scope, pred func(*resourceFacts) bool) bool {
	for _, f := range sc.facts {
		if pred(f) {
			return true
		}
	}
	return false
}

// sameAnalyte reports whether a resource value may be the analyte the text
// names: always when either side names none (free text, unnamed numbers).
func sameAnalyte(group []string, resourceAnalyte string) bool {
	if len(group) == 0 || resourceAnalyte == "" {
		return true
	}
	for _, t := range group {
		if hasWord(resourceAnalyte, t) {
			return true
		}
	}
	return false
}

func numberIn(q quantity, sc scope) bool {
	return anyFacts(sc, func(f *resourceFacts) bool { return numberOf(q, f) })
}

func numberOf(q quantity, f *resourceFacts) bool {
	for _, r := range f.numbers {
		if sameAnalyte(q.group, r.analyte) && roundMatch(r.n, q.n) {
			return true
		}
	}
	return false
}

// clauseOf returns the index of the clause of text holding byte pos:
// clauses end at ";", a line break or a sentence end (". ", "! ", "? ").
func clauseOf(text string, pos int) int {
	n := 0
	for i := 0; i < pos && i < len(text); i++ {
		switch text[i] {
		case ';', '\n':
			n++
		case '.', '!', '?':
			if i+1 < len(text) && text[i+1] == ' ' {
				n++
			}
		}
	}
	return n
}

// dateScoper returns, for a date written in text, the cited resources it
// must belong to: those grounding a value in the same clause, or all of sc
// when the clause has no grounded value.
func (v *Verifier) dateScoper(text string, tf textFacts, sc scope) func(raw string) scope {
	byClause := map[int][]*resourceFacts{}
	add := func(q quantity, match func(*resourceFacts) bool) {
		pos := strings.Index(text, q.raw)
		if pos < 0 {
			return
		}
		c := clauseOf(text, pos)
		for _, f := range sc.facts {
			if match(f) && !slices.Contains(byClause[c], f) {
				byClause[c] = append(byClause[c], f)
			}
		}
	}
	for _, q := range tf.quantities {
		add(q, func(f *resourceFacts) bool { return v.quantityOf(q, f) })
	}
	for _, q := range tf.bare {
		add(q, func(f *resourceFacts) bool { return numberOf(q, f) })
	}
	return func(raw string) scope {
		pos := strings.Index(text, raw)
		if pos < 0 {
			return sc
		}
		if fs := byClause[clauseOf(text, pos)]; len(fs) > 0 {
			return scope{facts: fs}
		}
		return sc
	}
}

func (v *Verifier) quantityIn(q quantity, sc scope) bool {
	return anyFacts(sc, func(f *resourceFacts) bool { return v.quantityOf(q, f) })
}

func (v *Verifier) quantityOf(q quantity, f *resourceFacts) bool {
	{
		for _, r := range f.quantities {
			if !sameAnalyte(q.group, r.analyte) {
				continue
			}
			if r.unit == q.unit {
				if roundMatch(r.n, q.n) {
					return true
				}
				continue
			}
			if conv, ok := v.units.convert(r.n.v, r.unit, q.unit, r.analyte); ok && convertedMatch(conv, q.n) {
				return true
			}
		}
		return false
	}
}

// EffectiveConfidence combines the model's self-reported confidence with
// the verification and the rule signals. The self-report alone is never
// trusted:
//
//	ungrounded (g.Grounded false), NaN or negative raw → 0
//	otherwise  min(raw, 1) × w, capped at 0.95,
//	           w = 1.0 when the draft agrees with the rule signals
//	               (same or higher priority and a compatible route),
//	           w = 0.75 when it does not.
//
// The cap keeps every draft reviewable; the per-route thresholds of the
// decision function apply to the result.
func EffectiveConfidence(raw float64, g Result, agreesWithRules bool) float64 {
	if !g.Grounded || math.IsNaN(raw) || raw <= 0 {
		return 0
	}
	raw = math.Min(raw, 1)
	w := 1.0
	if !agreesWithRules {
		w = 0.75
	}
	return math.Min(raw*w, 0.95)
}
