package rules

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// loadCorpusFile reads one labelled JSONL corpus from testdata/redflags.
func loadCorpusFile(t testing.TB, name string) []corpusEntry {
	t.Helper()
	f, err := os.Open("testdata/redflags/" + name)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []corpusEntry
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		var e corpusEntry
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("%s line %d: %v", name, line, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestRedFlagHeldout scores the held-out corpora with the default pack's
// scanner, on the original text and on the generated variants (see
// variants). Each must reach 100% sensitivity and at least 90% specificity.
//
//   - heldout.jsonl was written before the lexicon was read, in other voices
//     than corpus.jsonl (first try: sensitivity 0.871, specificity 0.897).
//   - heldout2.jsonl was written after the fixes for heldout.jsonl and
//     scored before any fix of its own (first try: sensitivity 0.780,
//     specificity 0.943): the estimate for text the lexicon has never seen.
//   - heldout3.jsonl was written blind after the dev.jsonl work, with more
//     oblique phrasings, and scored before its fixes (first try:
//     sensitivity 0.531, specificity 0.800).
//   - heldout4.jsonl was written blind before the compositional layer
//     (category compose rules) was built, with hard negatives for it, and
//     scored with the phrase lexicon first (first try: sensitivity 0.782,
//     specificity 0.929), then with the compositional layer before any
//     other fix (sensitivity 0.964, specificity 0.929).
//   - heldout5.jsonl was written blind after the compositional layer and the
//     heldout4 fixes, and scored before its own fixes (first try:
//     sensitivity 0.750, specificity 0.929): the best estimate for text
//     the lexicon has never seen.
//   - heldout6.jsonl was written blind after the heldout5 fixes, aimed at
//     breadth of style: elderly writers, teens, caregivers of disabled
//     adults, ESL grammar, clinical jargon and abbreviations (CP, SOB, SI,
//     LOC, melena), emoji and texting shorthand, and long messages with the
//     flag in one clause, each with hard negatives in the same style. First
//     try: sensitivity 0.803 (53/66), specificity 0.895 (34/38); one of
//     those 53 hits was spurious ("Hello" fuzzy-matched HELLP), so the true
//     figure was 0.788 (52/66).
//   - dev.jsonl holds probes written while improving the lexicon (negation
//     traps, dictation errors, run-on messages, hard negatives); it is a
//     regression set, not an estimate.
func TestRedFlagHeldout(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	redCats := []string{"chest_pain", "breathing", "fainting_collapse", "stroke", "anaphylaxis", "self_harm",
		"seizure", "severe_headache", "sepsis", "bleeding", "postpartum"}
	for _, tc := range []struct {
		file   string
		min    int // messages
		minCat int // red-flag messages per category
	}{
		{"heldout.jsonl", 250, 8},
		{"heldout2.jsonl", 60, 3},
		{"heldout3.jsonl", 50, 2},
		{"heldout4.jsonl", 80, 4},
		{"heldout5.jsonl", 50, 2},
		{"heldout6.jsonl", 90, 5},
		{"dev.jsonl", 100, 8},
	} {
		t.Run(strings.TrimSuffix(tc.file, ".jsonl"), func(t *testing.T) {
			corpus := loadCorpusFile(t, tc.file)
			if len(corpus) < tc.min {
				t.Fatalf("%s has %d messages, want >= %d", tc.file, len(corpus), tc.min)
			}
			cats := map[string]int{}
			var tp, fn, tn, fp int     // original text
			var vtp, vfn, vtn, vfp int // all variants
			for _, e := range corpus {
				if e.RedFlag {
					cats[e.Category]++
				}
				for kind, text := range variants(e.Text) {
					hit := len(p.ScanText(text)) > 0
					orig := kind == "original"
					switch {
					case e.RedFlag && hit:
						vtp++
						if orig {
							tp++
						}
					case e.RedFlag:
						vfn++
						if orig {
							fn++
						}
						t.Errorf("missed red flag (%s, %s variant): %q", e.Category, kind, text)
					case !hit:
						vtn++
						if orig {
							tn++
						}
					default:
						vfp++
						if orig {
							fp++
							t.Logf("false positive: %q -> %v", text, p.ScanText(text))
						}
					}
				}
			}
			for _, c := range redCats {
				if cats[c] < tc.minCat {
					t.Errorf("%s has %d %s messages, want >= %d", tc.file, cats[c], c, tc.minCat)
				}
			}
			ratio := func(a, b int) float64 {
				if b == 0 {
					return 1
				}
				return float64(a) / float64(b)
			}
			t.Logf("%s: %d messages (%d red flag, %d not); original text: sensitivity %.4f (%d/%d), specificity %.4f (%d/%d); with variants: sensitivity %.4f (%d/%d), specificity %.4f (%d/%d)",
				tc.file, len(corpus), tp+fn, tn+fp,
				ratio(tp, tp+fn), tp, tp+fn, ratio(tn, tn+fp), tn, tn+fp,
				ratio(vtp, vtp+vfn), vtp, vtp+vfn, ratio(vtn, vtn+vfp), vtn, vtn+vfp)
			if vfn > 0 {
				t.Errorf("sensitivity %.4f, want 1.0", ratio(vtp, vtp+vfn))
			}
			if s := ratio(vtn, vtn+vfp); s < 0.90 {
				t.Errorf("specificity %.4f, want >= 0.90", s)
			}
		})
	}
}

// TestScanTextDecisions pins the scope decisions documented in lexicon.yaml.
func TestScanTextDecisions(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	tests := []struct {
		text string
		want bool
	}{
		// Another person's past event, hypotheticals: no red flag...
		{"my coworker had a stroke last week, should I check my cholesterol", false},
		{"what should I do if I ever get chest pain on this medicine?", false},
		{"what are the warning signs of a stroke?", false},
		{"the ER ruled out a heart attack, I feel fine now", false},
		{"I had a TIA 2 years ago, should I still take aspirin", false},
		// ...unless it is happening now or it is the writer's.
		{"my friend is here with me and she can't breathe right now", true},
		{"my coworker found me on the floor, I passed out", true},
		{"in case it matters my throat is swelling after the shrimp", true},
		// A cue word that belongs to the finding is no negation.
		{"no one can wake him up", true},
		{"the bleeding won't stop", true},
		{"it's not stopping, blood everywhere", true},
		{"he is not able to catch his breath", true},
		{"never had a headache this bad", true},
		{"I've never felt pain like this in my chest", true},
		{"I don't usually get headaches but this one is the worst", true},
		{"not acting like herself and her temperature is 39.8", true},
		// Inflections, dictation sound-alikes, run-together words.
		{"my teen says she wants to die", true},
		{"my son is having a sees her", true},
		{"shortnessofbreath", true},
		{"worst head egg of my life", true},
		// History far from the finding does not hide it.
		{"my dad had a stroke what do we do his face is drooping", true},
	}
	for _, tc := range tests {
		if got := len(p.ScanText(tc.text)) > 0; got != tc.want {
			t.Errorf("%q: red flag %v, want %v (%v)", tc.text, got, tc.want, p.ScanText(tc.text))
		}
	}
}

// BenchmarkScanText scans every message of the labelled corpus once per
// iteration with a compiled pack.
func BenchmarkScanText(b *testing.B) {
	p := mustDefault(b)
	corpus := loadCorpusFile(b, "corpus.jsonl")
	b.ReportAllocs()
	for b.Loop() {
		for _, e := range corpus {
			p.ScanText(e.Text)
		}
	}
}
