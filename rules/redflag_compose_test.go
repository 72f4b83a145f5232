package rules

import (
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
)

// TestScanTextCompose pins the compositional layer (category compose rules
// in lexicon.yaml): a site word and a descriptor word close together in one
// clause fire even when no listed phrase matches, and the hard negatives
// next to them do not.
func TestScanTextCompose(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	tests := []struct {
		text     string
		category string // "" means no red flag
	}{
		// Site x descriptor pairs no phrase lists.
		{"burning ache between my shoulder blades that goes into my left arm", "chest_pain"},
		{"a belt cinched round his chest", "chest_pain"},
		{"it's like someone is standing on my rib cage", "chest_pain"},
		{"my inhaler isn't doing anything", "breathing"},
		{"I'm sucking wind just sitting here", "breathing"},
		{"my son's lips went dusky", "breathing"},
		{"I'm panting after a few steps", "breathing"},
		{"I went down like a sack of potatoes at the bus stop", "fainting_collapse"},
		{"the left side of my mouth won't move", "stroke"},
		{"the words coming out of my mouth are wrong", "stroke"},
		{"his eyes rolling and arms jerky", "seizure"},
		{"he had another one of his fits this morning", "seizure"},
		{"the most horrendous pain in my skull", "severe_headache"},
		{"it felt like someone cracked my head open", "severe_headache"},
		{"cut my hand and it's pumping blood through the towel", "bleeding"},
		{"he's coughing up red stuff", "bleeding"},
		{"heaved up a load of dark brown gritty stuff", "bleeding"},
		{"I keep thinking about driving off the bridge", "self_harm"},
		{"been looking up how many of my pills it would take", "self_harm"},
		{"I just want everything to stop, permanently", "self_harm"},
		{"he's going to make his ex pay and he's got a gun", "self_harm"},
		{"my skin has gone all marbled", "sepsis"},
		// Negated, hypothetical, another person's past: same logic as phrases.
		{"no pressure in my chest at all", ""},
		{"what if my inhaler isn't working on the plane", ""},
		{"my coworker had blood pumping everywhere from a cut last year", ""},
		{"I'm on the toilet a lot with diarrhea, no blood", ""},
		{"I can't close my eye all the way after the botox", ""},
		{"is there enough oxygen in the hyperbaric chamber", ""},
		{"I jumped off the bus and twisted my ankle", ""},
		{"I'm burning candles with matches at home", ""},
		{"i feel like there isn't enough oxygen in the room", "breathing"},
		{"face pulling to the left, can't close my right eye", "stroke"},
		{"I'm tired of everything, I'm going to do it tonight", "self_harm"},
		{"my colostomy bag is filling with blood", "bleeding"},
		// Hard negatives: a site word without a descriptor, or a benign
		// context.
		{"chest x-ray appointment next week", ""},
		{"my blood pressure cuff is broken", ""},
		{"the hospital wants a breath test", ""},
		{"which face cream is best", ""},
		{"are my blood work results back", ""},
		{"arm day at the gym left me sore", ""},
		{"is it ok to do chest press with a sore shoulder", ""},
		{"I can't believe how bad my breath is in the morning", ""},
		{"my son fell over at soccer and grazed his knee", ""},
		{"my leg jerks when I'm falling asleep", ""},
		{"my smile looks weird in photos", ""},
		{"my husband talks weird in his sleep", ""},
		{"I always get a dead leg when I sit cross-legged too long", ""},
		{"I'm going to the gun range this weekend, can I shoot with my shoulder", ""},
		{"I keep thinking about the bridge trip we took last summer", ""},
		{"I collected my pills from the pharmacy today", ""},
		{"my left arm is a bit sore from carrying groceries", ""},
		{"pepto turned my stool black", ""},
		{"rolling my eyes at my teenager again", ""},
	}
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

// TestComposeRuleChecked: a compose rule without an id, sites or
// descriptors, or with a window over 8, refuses the pack.
func TestComposeRuleChecked(t *testing.T) {
	t.Parallel()
	base := DefaultPackFS()
	lex, err := fs.ReadFile(base, "lexicon.yaml")
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"window: 9", "window: -1"} {
		fsys := fstest.MapFS{}
		err := fs.WalkDir(base, ".", func(path string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() {
				return err
			}
			b, err := fs.ReadFile(base, path)
			fsys[path] = &fstest.MapFile{Data: b}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		src := strings.Replace(string(lex), "      - id: cp_site_pain\n        window: 5", "      - id: cp_site_pain\n        "+bad, 1)
		if src == string(lex) {
			t.Fatal("cp_site_pain rule not found in lexicon.yaml")
		}
		fsys["lexicon.yaml"] = &fstest.MapFile{Data: []byte(src)}
		if p, err := Compile(fsys); p != nil || err == nil || !strings.Contains(err.Error(), "compose") {
			t.Errorf("%s: Compile gave pack %v, error %v; want a compose error", bad, p != nil, err)
		}
	}
}
