package ground

import (
	"regexp"
	"slices"
	"strings"
	"testing"
)

// wordsRegexp is the regular expression phraseMatcher stands for.
func wordsRegexp(words []string) *regexp.Regexp {
	ws := slices.Clone(words)
	slices.SortStableFunc(ws, func(a, b string) int { return len(b) - len(a) })
	alts := make([]string, len(ws))
	for i, w := range ws {
		alts[i] = regexp.QuoteMeta(w)
		if isWordByte(w[len(w)-1]) {
			alts[i] += `\b`
		}
	}
	return regexp.MustCompile(`(?i)\b(?:` + strings.Join(alts, "|") + `)`)
}

func phraseLists() [][]string {
	var conds, analytes []string
	for _, g := range conditionGroups() {
		conds = append(conds, g...)
	}
	for _, g := range analyteGroups() {
		analytes = append(analytes, g...)
	}
	drugs := commonDrugs()
	for _, g := range drugSynonyms() {
		drugs = append(drugs, g...)
	}
	slices.Sort(drugs)
	return [][]string{slices.Compact(drugs), conds, analytes}
}

func FuzzPhraseMatcher(f *testing.F) {
	for _, s := range []string{
		"K+ of 4.7; K+4.7, Na+ 140 and HbA1c 5.9%", "History of HTN and a-fib, COVID-19 in 2020.",
		"Takes HCTZ 25 mg and Vitamin B 12 5 MG/ML; EpiPen (epi-pen) 0.3 mg", "pre-diabetes, prediabetic, diabetes mellitus",
		"Blood sugar 86; blood pressure 142/88; BP; high blood pressure", "warfarinx warfarin_ Warfarin. WARFARIN", "",
	} {
		f.Add(s)
	}
	lists := phraseLists()
	type pair struct {
		re *regexp.Regexp
		pm *phraseMatcher
	}
	var ms []pair
	for _, l := range lists {
		ms = append(ms, pair{wordsRegexp(l), newPhraseMatcher(l)})
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, m := range ms {
			var want [][2]int
			for _, ix := range m.re.FindAllStringIndex(s, -1) {
				want = append(want, [2]int{ix[0], ix[1]})
			}
			if got := m.pm.findAllIndex(s); !slices.Equal(got, want) {
				t.Fatalf("%q: phraseMatcher %v, regexp %v", s, got, want)
			}
		}
	})
}
