package ground

import (
	"slices"
	"strings"
)

// phraseMatcher finds listed words and phrases in text, case-insensitively
// and on word boundaries, like the regular expression
// (?i)\b(?:longest\b|…|shortest\b) (leftmost match, longest term first,
// non-overlapping) at a fraction of its cost: a regular expression
// alternating hundreds of case-folded words dominated Verify's time. A term
// ending in a symbol ("k+", "na+") needs no boundary after it, so "K+ 5.1"
// names potassium.
type phraseMatcher struct {
	byFirst map[string][]string // first word → lower-cased terms, longest first
}

func newPhraseMatcher(terms []string) *phraseMatcher {
	m := &phraseMatcher{byFirst: map[string][]string{}}
	for _, t := range terms {
		t = strings.ToLower(t)
		first := t
		for i := 0; i < len(t); i++ {
			if !isWordByte(t[i]) {
				first = t[:i]
				break
			}
		}
		if first == "" || slices.Contains(m.byFirst[first], t) {
			continue
		}
		m.byFirst[first] = append(m.byFirst[first], t)
	}
	for k, ts := range m.byFirst {
		slices.SortStableFunc(ts, func(a, b string) int { return len(b) - len(a) })
		m.byFirst[k] = ts
	}
	return m
}

// findAllIndex returns the [start, end) byte offsets of the matches in text.
func (m *phraseMatcher) findAllIndex(text string) [][2]int {
	var out [][2]int
	lower := asciiLower(text)
	for i := 0; i < len(lower); {
		if !isWordByte(lower[i]) || (i > 0 && isWordByte(lower[i-1])) {
			i++
			continue
		}
		j := i
		for j < len(lower) && isWordByte(lower[j]) {
			j++
		}
		matched := false
		for _, t := range m.byFirst[lower[i:j]] {
			e := i + len(t)
			if e > len(lower) || lower[i:e] != t {
				continue
			}
			if isWordByte(t[len(t)-1]) && e < len(lower) && isWordByte(lower[e]) {
				continue // no word boundary after the term
			}
			out = append(out, [2]int{i, e})
			i, matched = e, true
			break
		}
		if !matched {
			i = j
		}
	}
	return out
}

// findAll returns the matched text of each match, as written.
func (m *phraseMatcher) findAll(text string) []string {
	var out []string
	for _, ix := range m.findAllIndex(text) {
		out = append(out, text[ix[0]:ix[1]])
	}
	return out
}

// asciiLower lower-cases ASCII letters only, keeping byte offsets.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c >= 'A' && c <= 'Z' {
			b := []byte(s)
			for k := i; k < len(b); k++ {
				if b[k] >= 'A' && b[k] <= 'Z' {
					b[k] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}
