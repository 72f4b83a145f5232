package rules

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"

	"sigs.k8s.io/yaml"
)

// RedFlag is one red-flag finding in patient text: the lexicon category and
// the words that matched (for a co-occurrence combination, the matched words
// of each part joined by " + ").
type RedFlag struct {
	Category string
	Phrase   string
}

// ScanText scans text with the default pack's lexicon. It compiles the
// lexicon on every call (no package-level cache); for repeated use call
// Pack.ScanText on a compiled pack.
func ScanText(text string) []RedFlag {
	p, err := DefaultPack()
	if err != nil {
		return nil
	}
	return p.ScanText(text)
}

// ScanText scans text with the pack's lexicon and returns every red flag that
// is not negated, past history or excluded, in order of first appearance.
func (p *Pack) ScanText(text string) []RedFlag { return p.lex.scan(text) }

// lexiconYAML is the shape of lexicon.yaml.
//
// A pattern is a space-separated sequence of elements:
//   - word            the token (or a misspelling within edit distance 1-2)
//   - a|b|c           any of the alternatives
//   - stem*           any token starting with stem
//   - ...             a gap of 0 to 4 tokens inside one clause
//   - #lo-hi          a number in [lo, hi]
type lexiconYAML struct {
	Negation struct {
		Cues           []string `json:"cues"`
		ListCues       []string `json:"list_cues"`
		AndCues        []string `json:"and_cues"`
		Hedges         []string `json:"hedges"`
		Terminators    []string `json:"terminators"`
		ClauseStarters []string `json:"clause_starters"`
		ListContinue   []string `json:"list_continue"`
		SegBreakers    []string `json:"segment_breakers"`
		ScopeEnders    []string `json:"scope_enders"`
		Fillers        []string `json:"fillers"`
		ClauseVerbs    []string `json:"clause_verbs"`
		Reopeners      []string `json:"reopeners"`
		// NotCues are spans in which a cue word is part of a finding, not
		// a negation ("no one can wake him", "won't stop bleeding").
		NotCues []string `json:"not_cues"`
		Window  int      `json:"window"`
	} `json:"negation"`
	History struct {
		Markers []string `json:"markers"`
		Recency []string `json:"recency"`
		// NotRecency spans are never recency markers ("still take" my
		// aspirin is about the medicine, not the symptom).
		NotRecency []string `json:"not_recency"`
		// Others and Hypothetical markers say the finding is not the
		// writer's or the patient's now: another person's past event ("my
		// coworker had") or a hypothetical ("if I ever", "warning signs
		// of"). They count only before the match, in the same clause,
		// within AbsentWindow words, with no first-person word between. A
		// recency marker or a present-tense word (Present) in the clause
		// cancels an Others marker; a Now marker cancels a Hypothetical.
		Others       []string `json:"others"`
		Hypothetical []string `json:"hypothetical"`
		AbsentWindow int      `json:"absent_window"`
		FirstPerson  []string `json:"first_person"`
		Present      []string `json:"present"`
		Now          []string `json:"now"`
	} `json:"history"`
	Exclusions []string `json:"exclusions"`
	// ScopedExclusions apply only to one category or concept.
	ScopedExclusions map[string][]string `json:"scoped_exclusions"`
	// Improvements right after a match ("is better", "has resolved") make
	// it not count unless the sentence also says still/again/worse.
	Improvements []string `json:"improvements"`
	Persistence  []string `json:"persistence"`
	NoFuzzy      []string `json:"no_fuzzy"`
	// Language: text of at least MinWords words of which fewer than
	// MinShare are common words of a covered language is reported as text
	// the engine cannot read (it may be in another language).
	Language struct {
		CommonWords []string `json:"common_words"`
		MinWords    int      `json:"min_words"`
		MinShare    float64  `json:"min_share"`
	} `json:"language"`
	Concepts   map[string][]string `json:"concepts"`
	Categories []struct {
		ID          string     `json:"id"`
		Description string     `json:"description"`
		Phrases     []string   `json:"phrases"`
		Combos      [][]string `json:"combos"`
		// Compose lists compositional rules: a site term and a
		// descriptor term within Window words in one clause.
		Compose []composeYAML `json:"compose"`
	} `json:"categories"`
}

// composeYAML is one compositional rule of a category: it fires when a
// match of any Sites pattern and a match of any Descriptors pattern lie
// within Window words of each other (either order) in the same clause (no
// sentence boundary or terminator word between), and the span covering both
// is not excluded (globally, for the category or for the rule's id),
// negated, past history, improved, another person's or hypothetical.
type composeYAML struct {
	ID          string   `json:"id"`
	Sites       []string `json:"sites"`
	Descriptors []string `json:"descriptors"`
	Window      int      `json:"window"`
}

type composeRule struct {
	id          string
	sites       []pattern
	descriptors []pattern
	window      int
}

type elem struct {
	seqs     [][]string // multi-word alternatives ("get_air")
	alts     []string
	prefixes []string
	gap      int
	numLo    float64
	numHi    float64
	isNum    bool
}

type pattern struct {
	src   string
	elems []elem
	// id indexes the pattern in lexicon.firstIndex when indexed is set:
	// its first element is plain words (no stem, no number), so it can
	// only start at a token whose first-word bitset has bit id.
	id      int
	indexed bool
}

type category struct {
	id      string
	phrases []pattern
	combos  [][]string
	compose []composeRule
}

type lexicon struct {
	categories   []category
	concepts     map[string][]pattern
	conceptNames []string
	cues         []pattern
	notCues      []pattern
	listCues     map[string]bool
	andCues      map[string]bool
	hedges       []pattern
	terminators  map[string]bool
	starters     map[string]bool
	listContinue map[string]bool
	segBreakers  map[string]bool
	scopeEnders  map[string]bool
	fillers      map[string]bool
	clauseVerbs  map[string]bool
	reopeners    []pattern
	window       int
	history      []pattern
	recency      []pattern
	notRecency   []pattern
	others       []pattern
	hypothetical []pattern
	absentWindow int
	firstPerson  map[string]bool
	present      []pattern
	now          []pattern
	exclusions   []pattern
	scoped       map[string][]pattern
	improvements []pattern
	persistence  []pattern
	vocab        map[string]bool
	stems        []string // prefix patterns ("suicid*")
	segVocab     map[string]bool
	noFuzzy      map[string]bool
	common       map[string]bool
	minWords     int
	minShare     float64
	byFirst      map[byte][]string
	firstIndex   map[string][]int // first word -> ids of indexed patterns
	npat         int
}

func (c *compiler) compileLexicon(fn string, src []byte) *lexicon {
	var ly lexiconYAML
	if err := yaml.UnmarshalStrict(src, &ly); err != nil {
		c.fail(fn, "", yamlErrLine(err), 0, fmt.Errorf("parse: %w", err))
		return nil
	}
	lines := strings.Split(string(src), "\n")
	lx := &lexicon{concepts: map[string][]pattern{}, vocab: map[string]bool{}, segVocab: map[string]bool{}, noFuzzy: map[string]bool{},
		listCues: set(ly.Negation.ListCues), andCues: set(ly.Negation.AndCues), terminators: set(ly.Negation.Terminators),
		starters: set(ly.Negation.ClauseStarters), listContinue: set(ly.Negation.ListContinue), segBreakers: set(ly.Negation.SegBreakers), scopeEnders: set(ly.Negation.ScopeEnders), fillers: set(ly.Negation.Fillers), clauseVerbs: set(ly.Negation.ClauseVerbs), window: ly.Negation.Window}
	if lx.window <= 0 {
		lx.window = 6
	}
	lx.common, lx.minWords, lx.minShare = set(ly.Language.CommonWords), ly.Language.MinWords, ly.Language.MinShare
	for _, w := range ly.NoFuzzy {
		lx.noFuzzy[w] = true
	}
	bad := false
	compileList := func(where string, srcs []string) []pattern {
		var out []pattern
		for _, s := range srcs {
			pt, err := parsePattern(s)
			if err != nil {
				bad = true
				c.fail(fn, "", findPatternLine(lines, s), 0, fmt.Errorf("%s: %w", where, err))
				continue
			}
			lx.addVocab(pt)
			out = append(out, pt)
		}
		return out
	}
	lx.cues = compileList("negation cue", ly.Negation.Cues)
	lx.notCues = compileList("not-cue", ly.Negation.NotCues)
	lx.hedges = compileList("hedge", ly.Negation.Hedges)
	lx.reopeners = compileList("reopener", ly.Negation.Reopeners)
	lx.history = compileList("history marker", ly.History.Markers)
	lx.recency = compileList("recency marker", ly.History.Recency)
	lx.notRecency = compileList("not-recency marker", ly.History.NotRecency)
	lx.others = compileList("others marker", ly.History.Others)
	lx.hypothetical = compileList("hypothetical marker", ly.History.Hypothetical)
	lx.present = compileList("present marker", ly.History.Present)
	lx.now = compileList("now marker", ly.History.Now)
	lx.firstPerson = set(ly.History.FirstPerson)
	lx.absentWindow = ly.History.AbsentWindow
	if lx.absentWindow <= 0 {
		lx.absentWindow = 8
	}
	lx.exclusions = compileList("exclusion", ly.Exclusions)
	lx.improvements = compileList("improvement", ly.Improvements)
	lx.persistence = compileList("persistence", ly.Persistence)
	lx.scoped = map[string][]pattern{}
	for _, k := range slices.Sorted(maps.Keys(ly.ScopedExclusions)) {
		lx.scoped[k] = compileList("scoped exclusion "+k, ly.ScopedExclusions[k])
	}
	for name := range ly.Concepts {
		lx.conceptNames = append(lx.conceptNames, name)
	}
	slices.Sort(lx.conceptNames)
	for _, name := range lx.conceptNames {
		lx.concepts[name] = compileList("concept "+name, ly.Concepts[name])
		lx.addSegVocab(lx.concepts[name])
	}
	seen := map[string]bool{}
	for _, cy := range ly.Categories {
		if cy.ID == "" || seen[cy.ID] {
			bad = true
			c.fail(fn, "", findKeyLine(lines, 0, "id", cy.ID), 0, fmt.Errorf("category id %q missing or duplicated", cy.ID))
			continue
		}
		seen[cy.ID] = true
		cat := category{id: cy.ID, phrases: compileList("category "+cy.ID, cy.Phrases), combos: cy.Combos}
		lx.addSegVocab(cat.phrases)
		for _, cr := range cy.Compose {
			r := composeRule{id: cr.ID, window: cr.Window,
				sites:       compileList("category "+cy.ID+" compose "+cr.ID+" sites", cr.Sites),
				descriptors: compileList("category "+cy.ID+" compose "+cr.ID+" descriptors", cr.Descriptors)}
			if r.id == "" || len(r.sites) == 0 || len(r.descriptors) == 0 || r.window < 0 || r.window > 8 {
				bad = true
				c.fail(fn, "", findKeyLine(lines, 0, "id", cy.ID), 0, fmt.Errorf("category %q: compose rule %q needs an id, sites, descriptors and a window of 0-8", cy.ID, cr.ID))
				continue
			}
			lx.addSegVocab(r.sites)
			lx.addSegVocab(r.descriptors)
			cat.compose = append(cat.compose, r)
		}
		for _, combo := range cy.Combos {
			if len(combo) < 2 {
				bad = true
				c.fail(fn, "", findKeyLine(lines, 0, "id", cy.ID), 0, fmt.Errorf("category %q: a combo needs two or more concepts", cy.ID))
			}
			for _, cn := range combo {
				if _, ok := lx.concepts[cn]; !ok {
					bad = true
					c.fail(fn, "", findKeyLine(lines, 0, "id", cy.ID), 0, fmt.Errorf("category %q: unknown concept %q", cy.ID, cn))
				}
			}
		}
		lx.categories = append(lx.categories, cat)
	}
	if len(lx.categories) == 0 {
		bad = true
		c.fail(fn, "", 0, 0, errors.New("lexicon has no categories"))
	}
	if bad {
		return nil
	}
	lx.firstIndex = map[string][]int{}
	for _, pts := range [][]pattern{lx.cues, lx.notCues, lx.hedges, lx.reopeners, lx.history, lx.recency, lx.notRecency, lx.others,
		lx.hypothetical, lx.present, lx.now, lx.exclusions, lx.improvements, lx.persistence} {
		lx.indexPatterns(pts)
	}
	for _, k := range slices.Sorted(maps.Keys(lx.scoped)) {
		lx.indexPatterns(lx.scoped[k])
	}
	for _, name := range lx.conceptNames {
		lx.indexPatterns(lx.concepts[name])
	}
	for ci := range lx.categories {
		lx.indexPatterns(lx.categories[ci].phrases)
		for ri := range lx.categories[ci].compose {
			lx.indexPatterns(lx.categories[ci].compose[ri].sites)
			lx.indexPatterns(lx.categories[ci].compose[ri].descriptors)
		}
	}
	lx.byFirst = map[byte][]string{}
	words := make([]string, 0, len(lx.vocab))
	for w := range lx.vocab {
		words = append(words, w)
	}
	slices.Sort(words)
	for _, w := range words {
		lx.byFirst[w[0]] = append(lx.byFirst[w[0]], w)
	}
	return lx
}

// indexPatterns gives the patterns whose first element is plain words an id
// in firstIndex (see pattern.indexed).
func (lx *lexicon) indexPatterns(pts []pattern) {
	for pi := range pts {
		e := &pts[pi].elems[0]
		if e.isNum || e.gap > 0 || len(e.prefixes) > 0 {
			continue
		}
		id := lx.npat
		lx.npat++
		pts[pi].id, pts[pi].indexed = id, true
		words := slices.Clone(e.alts)
		for _, seq := range e.seqs {
			words = append(words, seq[0])
		}
		for _, w := range words {
			if ids := lx.firstIndex[w]; len(ids) == 0 || ids[len(ids)-1] != id {
				lx.firstIndex[w] = append(ids, id)
			}
		}
	}
}

// markFirst sets each word token's bitset of the indexed patterns that can
// start at it (by its text and its candidates).
func (lx *lexicon) markFirst(toks []token) {
	if lx.npat == 0 {
		return
	}
	nw := (lx.npat + 63) / 64
	bits := make([]uint64, nw*len(toks))
	for i := range toks {
		t := &toks[i]
		if t.bound != 0 {
			continue
		}
		b := bits[i*nw : (i+1)*nw : (i+1)*nw]
		for _, id := range lx.firstIndex[t.raw] {
			b[id>>6] |= 1 << (id & 63)
		}
		for _, c := range t.cands {
			if c == t.raw {
				continue
			}
			for _, id := range lx.firstIndex[c] {
				b[id>>6] |= 1 << (id & 63)
			}
		}
		t.first = b
	}
}

func set(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

func findPatternLine(lines []string, s string) int {
	for i, l := range lines {
		if strings.Contains(l, s) {
			return i + 1
		}
	}
	return 0
}

func (lx *lexicon) addVocab(pt pattern) {
	for _, e := range pt.elems {
		for _, a := range e.alts {
			lx.vocab[a] = true
		}
		for _, a := range e.prefixes {
			lx.vocab[a] = true
			if !slices.Contains(lx.stems, a) {
				lx.stems = append(lx.stems, a)
			}
		}
		for _, seq := range e.seqs {
			for _, a := range seq {
				lx.vocab[a] = true
			}
		}
	}
}

// addSegVocab adds the words of symptom patterns to the vocabulary used to
// split run-together words: three letters or more, plus a few short words.
func (lx *lexicon) addSegVocab(pts []pattern) {
	for _, pt := range pts {
		for _, e := range pt.elems {
			words := slices.Clone(e.alts)
			for _, seq := range e.seqs {
				words = append(words, seq...)
			}
			for _, a := range words {
				if len(a) >= 3 || a == "of" || a == "my" || a == "up" || a == "to" || a == "in" {
					lx.segVocab[a] = true
				}
			}
		}
	}
}

func parsePattern(s string) (pattern, error) {
	pt := pattern{src: s}
	fields := strings.Fields(strings.ToLower(s))
	for _, f := range fields {
		if strings.HasPrefix(f, "...") {
			n := 4
			if f != "..." {
				v, err := strconv.Atoi(f[3:])
				if err != nil || v < 1 || v > 8 {
					return pt, fmt.Errorf("bad gap %q (want ... or ...N, N 1-8)", f)
				}
				n = v
			}
			pt.elems = append(pt.elems, elem{gap: n})
			continue
		}
		if strings.HasPrefix(f, "#") {
			lo, hi, ok := strings.Cut(f[1:], "-")
			a, err1 := strconv.ParseFloat(lo, 64)
			b, err2 := strconv.ParseFloat(hi, 64)
			if !ok || err1 != nil || err2 != nil || b < a {
				return pt, fmt.Errorf("bad number range %q", f)
			}
			pt.elems = append(pt.elems, elem{isNum: true, numLo: a, numHi: b})
			continue
		}
		var e elem
		for _, alt := range strings.Split(f, "|") {
			if strings.Contains(alt, "_") {
				var seq []string
				for _, w := range strings.Split(alt, "_") {
					if w = normWord(w); w != "" {
						seq = append(seq, w)
					}
				}
				if len(seq) == 0 {
					return pt, fmt.Errorf("empty alternative in %q", f)
				}
				e.seqs = append(e.seqs, seq)
				continue
			}
			pre := strings.HasSuffix(alt, "*")
			alt = normWord(strings.TrimSuffix(alt, "*"))
			if alt == "" {
				return pt, fmt.Errorf("empty alternative in %q", f)
			}
			if pre {
				e.prefixes = append(e.prefixes, alt)
			} else {
				e.alts = append(e.alts, alt)
			}
		}
		pt.elems = append(pt.elems, e)
	}
	if len(pt.elems) == 0 || pt.elems[0].gap > 0 || pt.elems[len(pt.elems)-1].gap > 0 {
		return pt, fmt.Errorf("pattern %q must start and end with a word", s)
	}
	return pt, nil
}

// normWord lower-cases and drops apostrophes and other non-alphanumerics.
func normWord(w string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(w) {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// token is one word, number or boundary of normalised text. Boundaries:
// "." ends a sentence, "," a phrase.
type token struct {
	raw   string   // normalised word as written
	cands []string // vocabulary words it stands for (itself, misspelling fixes)
	num   float64
	isNum bool
	bound byte     // '.', ',' or 0
	first []uint64 // indexed patterns that can start here (nil: unknown)
}

// tokenize splits text into lower-case words, numbers and boundaries, and
// merges two-word negated auxiliaries ("can not" -> "cant").
func tokenize(text string) []token {
	var toks []token
	var cur strings.Builder
	flush := func() {
		if cur.Len() == 0 {
			return
		}
		w := cur.String()
		cur.Reset()
		t := token{raw: w}
		if f, err := strconv.ParseFloat(w, 64); err == nil {
			t.num, t.isNum = f, true
		}
		toks = append(toks, t)
	}
	bound := func(b byte) {
		flush()
		if n := len(toks); n > 0 && toks[n-1].bound != 0 {
			if b == '.' {
				toks[n-1].bound = '.'
			}
			return
		}
		toks = append(toks, token{bound: b})
	}
	rs := []rune(strings.ToLower(text))
	isDigit := func(i int) bool { return i >= 0 && i < len(rs) && unicode.IsDigit(rs[i]) }
	for i, r := range rs {
		switch {
		case unicode.IsDigit(r):
			if cur.Len() > 0 && !isDigit(i-1) && rs[i-1] != '.' {
				flush()
			}
			cur.WriteRune(r)
		case unicode.IsLetter(r):
			if isDigit(i - 1) {
				flush()
			}
			cur.WriteRune(r)
		case r == '\'' || r == '’' || r == '‘' || r == '`':
			// dropped: can't -> cant
		case r == '.' && isDigit(i-1) && isDigit(i+1):
			cur.WriteRune(r)
		case r == '.' || r == '!' || r == '?' || r == ';' || r == '\n' || r == ':':
			bound('.')
		case r == ',' || r == '(' || r == ')' || r == '–' || r == '—':
			bound(',')
		default:
			flush()
		}
	}
	flush()
	// Merge "can not" style pairs.
	out := toks[:0]
	for i := 0; i < len(toks); i++ {
		if i+1 < len(toks) && toks[i+1].raw == "not" {
			if m, ok := negAux(toks[i].raw); ok {
				out = append(out, token{raw: m})
				i++
				continue
			}
		}
		if toks[i].raw == "cannot" {
			toks[i].raw = "cant"
		}
		out = append(out, toks[i])
	}
	return out
}

func negAux(w string) (string, bool) {
	switch w {
	case "can":
		return "cant", true
	case "do":
		return "dont", true
	case "does":
		return "doesnt", true
	case "did":
		return "didnt", true
	case "have":
		return "havent", true
	case "has":
		return "hasnt", true
	case "is":
		return "isnt", true
	case "was":
		return "wasnt", true
	case "are":
		return "arent", true
	case "could":
		return "couldnt", true
	case "will":
		return "wont", true
	}
	return "", false
}

// prepare tokenizes text, splits run-together words ("chestpain") into
// vocabulary words and attaches misspelling candidates.
func (lx *lexicon) prepare(text string) []token {
	toks := tokenize(text)
	var out []token
	for _, t := range toks {
		if t.bound != 0 || t.isNum {
			out = append(out, t)
			continue
		}
		t.cands = lx.candidates(t.raw)
		if !lx.vocab[t.raw] && !lx.noFuzzy[t.raw] && len(t.raw) >= 6 && len(t.cands) == 1 && !lx.hasStem(t.raw) {
			if parts := lx.segment(t.raw); len(parts) > 1 {
				for _, p := range parts {
					out = append(out, token{raw: p, cands: lx.candidates(p)})
				}
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

// segment splits w into vocabulary words of two or more letters, if it can.
func (lx *lexicon) segment(w string) []string {
	// Exact pieces win over misspelled ones ("chest"+"pain", not
	// "ches"+"tpain"; "shortness"+"of"+"breath", not "shortnessof"+"breath"),
	// then the fewest pieces.
	n := len(w)
	best := make([][]string, n+1)
	cost := make([]int, n+1)
	ok := make([]bool, n+1)
	ok[0] = true
	for i := 1; i <= n; i++ {
		for j := max(0, i-16); j <= i-2; j++ {
			if !ok[j] {
				continue
			}
			piece := w[j:i]
			if !lx.segPiece(piece) {
				continue
			}
			c := cost[j] + 16
			if !lx.segVocab[piece] {
				c += 24 // a misspelled piece costs more than an extra exact one
			}
			if !ok[i] || c < cost[i] {
				best[i] = append(slices.Clone(best[j]), piece)
				cost[i] = c
				ok[i] = true
			}
		}
	}
	if !ok[n] {
		return nil
	}
	return best[n]
}

// hasStem reports whether w starts with a prefix pattern's stem.
func (lx *lexicon) hasStem(w string) bool {
	for _, s := range lx.stems {
		if strings.HasPrefix(w, s) {
			return true
		}
	}
	return false
}

// segPiece reports whether p can be a piece of a run-together word: a
// symptom word, or a misspelling of one when it has five letters or more.
func (lx *lexicon) segPiece(p string) bool {
	if lx.segVocab[p] {
		return true
	}
	if len(p) < 5 || lx.vocab[p] || lx.noFuzzy[p] {
		return false
	}
	for _, c := range lx.candidates(p)[1:] {
		if lx.segVocab[c] {
			return true
		}
	}
	return false
}

// candidates returns the vocabulary words a token stands for: itself, or
// words within a small edit distance (same first letter).
func (lx *lexicon) candidates(w string) []string {
	if len(w) < 4 {
		return []string{w}
	}
	out := []string{w}
	// Inflections of a vocabulary word ("wants", "refilled", "headaches").
	if len(w) >= 5 {
		for _, suf := range inflections {
			if st, ok := strings.CutSuffix(w, suf); ok && len(st) >= 4 && lx.vocab[st] && !slices.Contains(out, st) {
				out = append(out, st)
			}
		}
	}
	if lx.vocab[w] || lx.noFuzzy[w] {
		return out
	}
	maxd := 1
	if len(w) >= 9 {
		maxd = 2
	}
	pool := lx.byFirst[w[0]]
	if w[1] != w[0] { // first two letters swapped ("esction")
		for _, v := range lx.byFirst[w[1]] {
			if len(v) > 1 && v[1] == w[0] {
				pool = append(slices.Clip(pool), v)
			}
		}
	}
	for _, v := range pool {
		if len(v) < 4 || abs(len(v)-len(w)) > maxd {
			continue
		}
		d := osaDistance(w, v, maxd)
		if d > maxd {
			continue
		}
		if len(w) == 4 || len(v) == 4 {
			if len(w) != len(v) || !isTransposition(w, v) {
				continue
			}
		}
		out = append(out, v)
		// and the stem of an inflected vocabulary word ("braethes" ->
		// "breathes" -> "breathe").
		for _, suf := range inflections {
			if st, ok := strings.CutSuffix(v, suf); ok && len(st) >= 4 && lx.vocab[st] && !slices.Contains(out, st) {
				out = append(out, st)
			}
		}
	}
	return out
}

// inflections are the endings stripped to find a vocabulary stem.
var inflections = [...]string{"s", "es", "ed", "d", "ing"}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}

func isTransposition(a, b string) bool {
	diff := -1
	for i := 0; i < len(a); i++ {
		if a[i] != b[i] {
			diff = i
			break
		}
	}
	return diff >= 0 && diff+1 < len(a) && a[diff] == b[diff+1] && a[diff+1] == b[diff] && a[diff+2:] == b[diff+2:]
}

// osaDistance is the optimal-string-alignment edit distance, capped at maxd+1.
func osaDistance(a, b string, maxd int) int {
	n, m := len(a), len(b)
	var buf [3][40]int
	var prev2, prev, cur []int
	if m < len(buf[0]) {
		prev2, prev, cur = buf[0][:m+1], buf[1][:m+1], buf[2][:m+1]
	} else {
		prev2, prev, cur = make([]int, m+1), make([]int, m+1), make([]int, m+1)
	}
	for j := 0; j <= m; j++ {
		prev[j] = j
	}
	for i := 1; i <= n; i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= m; j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		if rowMin > maxd {
			return maxd + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[m]
}

func (e *elem) matches(t *token) bool {
	if t.bound != 0 {
		return false
	}
	if e.isNum {
		return t.isNum && t.num >= e.numLo && t.num <= e.numHi
	}
	for _, c := range t.cands {
		if slices.Contains(e.alts, c) {
			return true
		}
	}
	for _, p := range e.prefixes {
		if strings.HasPrefix(t.raw, p) {
			return true
		}
		for _, c := range t.cands {
			if strings.HasPrefix(c, p) {
				return true
			}
		}
	}
	if t.isNum && slices.Contains(e.alts, t.raw) {
		return true
	}
	return false
}

// matchAt returns the end (exclusive) of the shortest match of pt starting at
// token i, or -1.
func (pt *pattern) matchAt(toks []token, i int) int {
	if pt.indexed && i < len(toks) {
		if f := toks[i].first; f != nil && f[pt.id>>6]&(1<<(pt.id&63)) == 0 {
			return -1
		}
	}
	return matchElems(pt.elems, toks, i)
}

func matchElems(es []elem, toks []token, i int) int {
	if len(es) == 0 {
		return i
	}
	e := &es[0]
	if e.gap > 0 {
		for g := 0; g <= e.gap; g++ {
			if end := matchElems(es[1:], toks, i+g); end >= 0 {
				return end
			}
			if i+g >= len(toks) || toks[i+g].bound != 0 {
				return -1
			}
		}
		return -1
	}
	if i < len(toks) && e.matches(&toks[i]) {
		if end := matchElems(es[1:], toks, i+1); end >= 0 {
			return end
		}
	}
	for _, seq := range e.seqs {
		if i+len(seq) > len(toks) {
			continue
		}
		ok := true
		for k, w := range seq {
			if !toks[i+k].is(w) {
				ok = false
				break
			}
		}
		if ok {
			if end := matchElems(es[1:], toks, i+len(seq)); end >= 0 {
				return end
			}
		}
	}
	return -1
}

// is reports whether the token stands for word w.
func (t *token) is(w string) bool {
	if t.bound != 0 {
		return false
	}
	if t.raw == w {
		return true
	}
	return slices.Contains(t.cands, w)
}

type span struct{ start, end int }

// findAll returns the spans where any of pts match.
func findAll(pts []pattern, toks []token) []span {
	var out []span
	for i := range toks {
		for pi := range pts {
			if end := pts[pi].matchAt(toks, i); end > i {
				out = append(out, span{i, end})
			}
		}
	}
	return out
}

type match struct {
	category string
	phrase   string
	start    int
}

// foreign reports whether text looks like a language the lexicon does not
// cover: enough words, too few of them common words of a covered language.
func (lx *lexicon) foreign(text string) bool {
	if lx == nil || len(lx.common) == 0 || lx.minWords <= 0 {
		return false
	}
	words, common := 0, 0
	for _, t := range tokenize(text) {
		if t.bound != 0 || t.isNum {
			continue
		}
		words++
		if lx.common[t.raw] {
			common++
		}
	}
	return words >= lx.minWords && float64(common) < lx.minShare*float64(words)
}

// scan returns the red flags in text (see Pack.ScanText).
func (lx *lexicon) scan(text string) []RedFlag {
	if lx == nil || strings.TrimSpace(text) == "" {
		return nil
	}
	toks := lx.prepare(text)
	lx.markFirst(toks)
	an := lx.analyse(toks)
	var found []match
	for _, cat := range lx.categories {
		nBefore := len(found)
		for pi := range cat.phrases {
			for i := range toks {
				end := cat.phrases[pi].matchAt(toks, i)
				if end <= i || !an.keepIn(span{i, end}, cat.id) {
					continue
				}
				found = append(found, match{cat.id, phraseOf(toks, i, end), i})
			}
		}
		for _, combo := range cat.combos {
			var parts []string
			first := -1
			for _, cn := range combo {
				sp, ok := lx.firstConcept(cn, toks, an)
				if !ok {
					parts = nil
					break
				}
				parts = append(parts, phraseOf(toks, sp.start, sp.end))
				if first < 0 || sp.start < first {
					first = sp.start
				}
			}
			if parts != nil {
				found = append(found, match{cat.id, strings.Join(parts, " + "), first})
			}
		}
		// Compositional rules generalise the phrases: they run only when
		// no phrase or combination of the category matched.
		for ri := range cat.compose {
			if len(found) > nBefore {
				break
			}
			if m, ok := lx.composeMatch(&cat.compose[ri], cat.id, toks, an); ok {
				found = append(found, m)
			}
		}
	}
	slices.SortStableFunc(found, func(a, b match) int { return a.start - b.start })
	var out []RedFlag
	for _, m := range found {
		rf := RedFlag{Category: m.category, Phrase: m.phrase}
		if !slices.Contains(out, rf) {
			out = append(out, rf)
		}
	}
	return out
}

// composeMatch returns the first counted site x descriptor pair of rule r
// (see composeYAML).
func (lx *lexicon) composeMatch(r *composeRule, cat string, toks []token, an *analysis) (match, bool) {
	sites := findAll(r.sites, toks)
	if len(sites) == 0 {
		return match{}, false
	}
	descs := findAll(r.descriptors, toks)
	for _, s := range sites {
		for _, d := range descs {
			a, b := s, d
			if d.start < s.start {
				a, b = d, s
			}
			if b.start < a.end || b.start-a.end > r.window {
				continue // overlapping or too far apart
			}
			if !lx.sameClause(toks, a.end, b.start) || an.cueBetween(a.end, b.start) {
				continue // "diarrhea, no blood", "chest isn't hurting"
			}
			sp := span{a.start, max(a.end, b.end)}
			if !an.keepIn(sp, cat) || an.vetoNear(sp, r.id) {
				continue
			}
			return match{cat, phraseOf(toks, s.start, s.end) + " + " + phraseOf(toks, d.start, d.end), sp.start}, true
		}
	}
	return match{}, false
}

// composeVetoReach is how many tokens from a compose match a span of the
// rule's own scoped exclusions may lie, in the same clause, to veto it
// ("can't close my eye after the botox").
const composeVetoReach = 6

// vetoNear reports a scoped exclusion of compose rule id in the clause of
// sp, overlapping it or within composeVetoReach tokens of it.
func (an *analysis) vetoNear(sp span, id string) bool {
	pts := an.lx.scoped[id]
	if len(pts) == 0 {
		return false
	}
	xs, ok := an.scoped[id]
	if !ok {
		xs = findAll(pts, an.toks)
		if an.scoped == nil {
			an.scoped = map[string][]span{}
		}
		an.scoped[id] = xs
	}
	s, e := an.clause(sp)
	for _, x := range xs {
		if within(x, s, e) && x.end > sp.start-composeVetoReach && x.start < sp.end+composeVetoReach {
			return true
		}
	}
	return false
}

// cueBetween reports a negation cue (not part of a hedge) inside toks[i:j].
func (an *analysis) cueBetween(i, j int) bool {
	for _, c := range an.cues {
		if c.start >= i && c.end <= j && !slices.ContainsFunc(an.hedges, func(h span) bool { return h.start < c.end && c.start < h.end }) {
			return true
		}
	}
	return false
}

// sameClause reports that no sentence boundary or terminator word lies in
// toks[i:j].
func (lx *lexicon) sameClause(toks []token, i, j int) bool {
	for k := i; k < j; k++ {
		if toks[k].bound == '.' || lx.terminators[toks[k].raw] {
			return false
		}
	}
	return true
}

// firstConcept returns the first counted match of a concept; results are
// memoised per scan (a concept is shared by many combos).
func (lx *lexicon) firstConcept(name string, toks []token, an *analysis) (span, bool) {
	if r, ok := an.concepts[name]; ok {
		return r.sp, r.ok
	}
	r := conceptHit{}
	pts := lx.concepts[name]
found:
	for i := range toks {
		for pi := range pts {
			if end := pts[pi].matchAt(toks, i); end > i && an.keepIn(span{i, end}, name) {
				r = conceptHit{span{i, end}, true}
				break found
			}
		}
	}
	if an.concepts == nil {
		an.concepts = map[string]conceptHit{}
	}
	an.concepts[name] = r
	return r.sp, r.ok
}

type conceptHit struct {
	sp span
	ok bool
}

func phraseOf(toks []token, i, j int) string {
	var ws []string
	for _, t := range toks[i:j] {
		if t.bound == 0 {
			ws = append(ws, t.raw)
		}
	}
	return strings.Join(ws, " ")
}

// analysis holds per-text spans used to judge each match.
type analysis struct {
	lx           *lexicon
	toks         []token
	cues         []span
	hedges       []span
	reopeners    []span
	history      []span
	recency      []span
	others       []span
	hypothetical []span
	present      []span
	now          []span
	exclusions   []span
	improvements []span
	persistence  []span
	concepts     map[string]conceptHit // memoised firstConcept results
	scoped       map[string][]span     // memoised scoped exclusions
}

func (lx *lexicon) analyse(toks []token) *analysis {
	return &analysis{lx: lx, toks: toks, cues: lx.cueSpans(toks), hedges: findAll(lx.hedges, toks),
		improvements: findAll(lx.improvements, toks), persistence: findAll(lx.persistence, toks),
		reopeners: findAll(lx.reopeners, toks),
		history:   findAll(lx.history, toks), recency: lx.recencySpans(toks), exclusions: findAll(lx.exclusions, toks),
		others: findAll(lx.others, toks), hypothetical: findAll(lx.hypothetical, toks),
		present: findAll(lx.present, toks), now: findAll(lx.now, toks)}
}

// cueSpans finds the negation cues that no not-cue span overlaps.
func (lx *lexicon) cueSpans(toks []token) []span {
	cs := findAll(lx.cues, toks)
	if len(cs) == 0 || len(lx.notCues) == 0 {
		return cs
	}
	return dropOverlapping(cs, findAll(lx.notCues, toks))
}

// dropOverlapping returns the spans of xs that overlap none of ys (in place).
func dropOverlapping(xs, ys []span) []span {
	if len(ys) == 0 {
		return xs
	}
	out := xs[:0]
	for _, x := range xs {
		if !slices.ContainsFunc(ys, func(y span) bool { return y.start < x.end && x.start < y.end }) {
			out = append(out, x)
		}
	}
	return out
}

// recencySpans finds the recency markers that no not-recency span overlaps.
func (lx *lexicon) recencySpans(toks []token) []span {
	rs := findAll(lx.recency, toks)
	if len(rs) == 0 || len(lx.notRecency) == 0 {
		return rs
	}
	return dropOverlapping(rs, findAll(lx.notRecency, toks))
}

// keepIn reports whether a match at sp for a category or concept counts: not
// excluded (globally or for that name), not negated, not past history and
// not reported as improved.
func (an *analysis) keepIn(sp span, name string) bool {
	overlaps := func(xs []span) bool {
		for _, x := range xs {
			if x.start < sp.end && sp.start < x.end {
				return true
			}
		}
		return false
	}
	if overlaps(an.exclusions) {
		return false
	}
	if pts := an.lx.scoped[name]; len(pts) > 0 {
		xs, ok := an.scoped[name]
		if !ok {
			xs = findAll(pts, an.toks)
			if an.scoped == nil {
				an.scoped = map[string][]span{}
			}
			an.scoped[name] = xs
		}
		if overlaps(xs) {
			return false
		}
	}
	return !an.negated(sp) && !an.pastHistory(sp) && !an.improved(sp) && !an.notPresent(sp)
}

// notPresent reports that the match is another person's past event or a
// hypothetical (see lexiconYAML.History.Others).
func (an *analysis) notPresent(sp span) bool {
	return an.absentBefore(sp, an.others, an.recency, an.present) || an.absentBefore(sp, an.hypothetical, an.now)
}

// absentBefore reports a marker shortly before sp in the same clause, with
// no first-person word between, and none of the cancel spans in the clause.
func (an *analysis) absentBefore(sp span, markers []span, cancels ...[]span) bool {
	if len(markers) == 0 {
		return false
	}
	s, e := an.clause(sp)
	hit := false
	for _, m := range markers {
		if m.start < s || m.end > sp.start || sp.start-m.end > an.lx.absentWindow {
			continue
		}
		mine := false
		for i := m.end; i < sp.start; i++ {
			if an.lx.firstPerson[an.toks[i].raw] {
				mine = true
				break
			}
		}
		if !mine {
			hit = true
			break
		}
	}
	if !hit {
		return false
	}
	for _, xs := range cancels {
		for _, r := range xs {
			if within(r, s, e) && !an.cueBefore(r, 2) {
				return false
			}
		}
	}
	return true
}

// improved reports an improvement statement right after the match ("is
// better", "has resolved") in the same clause, unless the sentence also
// says the symptom persists ("still", "again", "worse").
func (an *analysis) improved(sp span) bool {
	s, e := an.clause(sp)
	hit := false
	for _, x := range an.improvements {
		if x.start >= sp.end && x.start <= sp.end+2 && x.end <= e {
			hit = true
		}
	}
	if !hit {
		return false
	}
	// Sentence bounds (terminators do not end it here).
	for s > 0 && an.toks[s-1].bound != '.' {
		s--
	}
	for e < len(an.toks) && an.toks[e].bound != '.' {
		e++
	}
	for _, x := range an.persistence {
		if within(x, s, e) {
			return false
		}
	}
	return true
}

// clause returns the bounds of the clause around sp: sentence boundaries and
// terminator words ("but", "however") end it.
func (an *analysis) clause(sp span) (int, int) {
	s := sp.start
	for s > 0 && an.toks[s-1].bound != '.' && !an.lx.terminators[an.toks[s-1].raw] {
		s--
	}
	e := sp.end
	for e < len(an.toks) && an.toks[e].bound != '.' && !an.lx.terminators[an.toks[e].raw] {
		e++
	}
	return s, e
}

func within(x span, s, e int) bool { return x.start >= s && x.end <= e }

// historyReach is how many tokens may separate a history marker from the
// match it makes past history.
const historyReach = 8

func (an *analysis) pastHistory(sp span) bool {
	s, e := an.clause(sp)
	hist := false
	for _, h := range an.history {
		// The marker must be near the match: in a long run-on message
		// "my dad had a stroke ... his face is drooping" the history is
		// about another finding.
		if within(h, s, e) && ((h.end <= sp.start && sp.start-h.end <= historyReach) || (h.start >= sp.end && h.start-sp.end <= historyReach && !newEvent(an.toks[sp.end:h.start]))) {
			hist = true
		}
	}
	if !hist {
		return false
	}
	for _, r := range an.recency {
		if within(r, s, e) && !an.cueBefore(r, 2) {
			return false
		}
	}
	return true
}

// newEvent reports a past-event verb in toks ("chest on fire, had a stent 2
// years ago"): a history marker after it dates that event, not the match.
func newEvent(toks []token) bool {
	for _, t := range toks {
		switch t.raw {
		case "had", "got", "underwent", "diagnosed":
			return true
		}
	}
	return false
}

// cueBefore reports a negation cue ending at most n tokens before x ("has
// not come back" is no recency).
func (an *analysis) cueBefore(x span, n int) bool {
	for _, c := range an.cues {
		if c.end <= x.start && c.end >= x.start-n {
			return true
		}
	}
	return false
}

// negated applies NegEx-style scope: a cue before the match in the same
// clause, within the window, with no clause starter between; commas and "and"
// are crossed only by list cues ("denies", "no", "without") when the
// items between are short and the match ends the list; a hedge anywhere in
// the clause before the match, or a reopener right after it ("like this"),
// cancels the negation.
func (an *analysis) negated(sp span) bool {
	s, e := an.clause(sp)
	for _, h := range an.hedges {
		if h.start >= s && h.start < sp.end {
			return false
		}
	}
	for _, r := range an.reopeners {
		if r.start >= sp.start && r.start <= sp.end+3 && r.end <= e {
			return false
		}
	}
	for _, c := range an.cues {
		if c.end > sp.start || c.start < s {
			continue
		}
		if an.cueCovers(c, sp) {
			return true
		}
	}
	return false
}

func (an *analysis) cueCovers(c, sp span) bool {
	for i := sp.start; i < sp.end; i++ {
		if an.lx.terminators[an.toks[i].raw] {
			return false // "don't usually get headaches but this one is the worst"
		}
	}
	cueWord := an.toks[c.start].raw
	list := an.lx.listCues[cueWord]
	words, seg, crossed, clausal, content := 0, 0, false, false, false
	for i := c.end; i < sp.start; i++ {
		t := an.toks[i]
		if t.bound == ',' || t.raw == "and" || t.raw == "or" || t.raw == "nor" {
			if t.raw == "or" || t.raw == "nor" {
				seg = 0
				continue
			}
			if !list || (t.raw == "and" && !an.lx.andCues[cueWord]) {
				return false
			}
			crossed = true
			seg = 0
			continue
		}
		if an.lx.starters[t.raw] || an.lx.scopeEnders[t.raw] {
			return false
		}
		if an.lx.segBreakers[t.raw] {
			clausal = true
		}
		if !an.lx.fillers[t.raw] {
			content = true
		}
		words++
		seg++
		if seg > 3 && crossed {
			return false
		}
	}
	if words > an.lx.window {
		return false
	}
	if content && sp.end < len(an.toks) && an.lx.clauseVerbs[an.toks[sp.end].raw] {
		return false // the match is the subject of a new clause
	}
	if crossed {
		if clausal {
			return false
		}
		if sp.end < len(an.toks) {
			next := an.toks[sp.end]
			if next.bound == 0 && !an.lx.listContinue[next.raw] {
				return false
			}
		}
	}
	return true
}
