package rules

import (
	"bufio"
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"
	"unicode"
)

type corpusEntry struct {
	Text     string `json:"text"`
	RedFlag  bool   `json:"red_flag"`
	Category string `json:"category"`
}

func loadCorpus(t *testing.T) []corpusEntry {
	t.Helper()
	f, err := os.Open("testdata/redflags/corpus.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []corpusEntry
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e corpusEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("corpus line %d: %v", len(out)+1, err)
		}
		out = append(out, e)
	}
	return out
}

// variants is the deterministic generator of corpus variants: all caps, no
// punctuation, no apostrophes and lower case, and a transposition typo in the
// longest word (letters 2 and 3 swapped, keeping the first letter).
func variants(s string) map[string]string {
	rs := []rune(s)
	var np []rune
	for i, r := range rs {
		switch {
		case r == '\'':
		case r == '.' && i > 0 && i+1 < len(rs) && unicode.IsDigit(rs[i-1]) && unicode.IsDigit(rs[i+1]):
			np = append(np, r) // 100.4 stays a number
		case unicode.IsPunct(r):
			np = append(np, ' ')
		default:
			np = append(np, r)
		}
	}
	noPunct := string(np)
	words := strings.Fields(s)
	li := 0
	for i, w := range words {
		if len(w) > len(words[li]) && !strings.ContainsFunc(w, unicode.IsDigit) {
			li = i
		}
	}
	typo := s
	if w := []byte(words[li]); len(w) >= 6 && !strings.ContainsFunc(words[li], unicode.IsDigit) {
		w[2], w[3] = w[3], w[2]
		cp := append([]string(nil), words...)
		cp[li] = string(w)
		typo = strings.Join(cp, " ")
	}
	return map[string]string{
		"caps":     strings.ToUpper(s),
		"nopunct":  noPunct,
		"lower":    strings.ToLower(strings.ReplaceAll(s, "'", "")),
		"typo":     typo,
		"original": s,
	}
}

func TestRedFlagCorpus(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	corpus := loadCorpus(t)
	if len(corpus) < 220 {
		t.Fatalf("corpus has %d messages, want >= 220", len(corpus))
	}
	cats := map[string]int{}
	var tp, fn, tn, fp int
	for _, e := range corpus {
		if e.RedFlag {
			cats[e.Category]++
		}
		for kind, text := range variants(e.Text) {
			got := p.ScanText(text)
			switch {
			case e.RedFlag && len(got) > 0:
				tp++
			case e.RedFlag:
				fn++
				t.Errorf("missed red flag (%s, %s variant): %q", e.Category, kind, text)
			case len(got) == 0:
				tn++
			default:
				fp++
				t.Logf("false positive (%s variant): %q -> %v", kind, text, got)
			}
		}
	}
	for _, c := range []string{"chest_pain", "breathing", "fainting_collapse", "stroke", "anaphylaxis", "self_harm",
		"seizure", "severe_headache", "sepsis", "bleeding", "postpartum"} {
		if cats[c] == 0 {
			t.Errorf("corpus has no %s messages", c)
		}
	}
	sens := float64(tp) / float64(tp+fn)
	spec := float64(tn) / float64(tn+fp)
	t.Logf("corpus: %d messages (%d categories with red flags), %d scans with variants; sensitivity %.4f (%d/%d), specificity %.4f (%d/%d)",
		len(corpus), len(cats), tp+fn+tn+fp, sens, tp, tp+fn, spec, tn, tn+fp)
	if fn > 0 {
		t.Errorf("sensitivity %.4f, want 1.0", sens)
	}
	if spec < 0.90 {
		t.Errorf("specificity %.4f, want >= 0.90", spec)
	}
}

// TestScanTextBrief pins the behaviour the issue spells out.
func TestScanTextBrief(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	tests := []scanCase{
		{"cant breath", "breathing"},
		{"chestpain", "chest_pain"},
		{"my chest feels tight", "chest_pain"},
		{"heart racing and pressure", "chest_pain"},
		{"feel like passing out", "fainting_collapse"},
		{"want to end it all", "self_harm"},
		{"took the whole bottle", "self_harm"},
		{"having crushing chest pressure and my left arm is numb", "chest_pain"},
		{"not sure if it's chest pain", "chest_pain"},
		{"maybe chest pain?", "chest_pain"},
		{"I don't know if this is chest pain", "chest_pain"},
		{"no chest pain but I can't breathe", "breathing"},
		{"my face is drooping and my speech is slurred", "stroke"},
		{"my throat is swelling shut after peanuts", "anaphylaxis"},
		{"I'm thinking about killing myself", "self_harm"},
		{"I want to hurt my husband", "self_harm"},
		{"my son is having a seizure", "seizure"},
		{"worst headache of my life", "severe_headache"},
		{"headache with a stiff neck and fever", "severe_headache"},
		{"fever and she is confused", "sepsis"},
		{"vomiting blood", "bleeding"},
		{"black tarry stools", "bleeding"},
		{"2 weeks postpartum and soaking a pad an hour", "bleeding"},
		{"I had a baby last week and my leg is red and swollen", "postpartum"},
		{"denies chest pain, just a refill please", ""},
		{"no shortness of breath", ""},
		{"haven't had any chest pain", ""},
		{"without fever", ""},
		{"chest x-ray appointment", ""},
		{"refill for my inhaler", ""},
		{"my son has a cold", ""},
		{"had chest pain last year, fine now", ""},
		{"denies fever, chills, or chest pain.", ""},
	}
	checkScans(t, p, tests)
}

// scanCase is one message and the red-flag category it must raise ("" for none).
type scanCase struct {
	text     string
	category string
}

// checkScans scans each case's text with p and reports a missing category or an unwanted flag.
func checkScans(t *testing.T, p *Pack, tests []scanCase) {
	t.Helper()
	for _, tc := range tests {
		got := p.ScanText(tc.text)
		var cats []string
		for _, rf := range got {
			cats = append(cats, rf.Category)
		}
		switch {
		case tc.category == "" && len(got) > 0:
			t.Errorf("%q: want no red flag, got %v", tc.text, got)
		case tc.category != "" && !slices.Contains(cats, tc.category):
			t.Errorf("%q: want %s, got %v", tc.text, tc.category, got)
		}
	}
}
