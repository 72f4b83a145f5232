package rules

import (
	"io/fs"
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
	tests := []scanCase{
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
	checkScans(t, p, tests)
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

// TestScanTextJargonAndESL pins the heldout6 generalisations: clinical
// abbreviations and terms patients copy from notes (CP, SOB, SI/HI, LOC,
// sz, HA, N/V with blood, melena, dyspnea...), ESL grammar ("she no wake
// up", "shake shake all body") and texting shorthand, next to the hard
// negatives that share their words (CP as cerebral palsy, "hi" as a
// greeting, "ha ha", kilometres).
func TestScanTextJargonAndESL(t *testing.T) {
	t.Parallel()
	p := mustDefault(t)
	tests := []scanCase{
		{"pt c/o intermittent CP w/ exertion, pressure-like, new since yesterday", "chest_pain"},
		{"CP 8/10 radiating", "chest_pain"},
		{"he keeps pointing at the middle of his chest and rubbing it", "chest_pain"},
		{"dyspnea worsening, now with orthopnea 3 pillows", "breathing"},
		{"SOB w/ exertion since Tuesday", "breathing"},
		{"i cnt breathe rn", "breathing"},
		{"my mom she no breathe good", "breathing"},
		{"generalized urticaria and angioedema after PCN dose", "anaphylaxis"},
		{"brief LOC after standing up", "fainting_collapse"},
		{"she is fall down and no wake up", "fainting_collapse"},
		{"L sided hemiparesis since 2pm", "stroke"},
		{"had a sz this morning", "seizure"},
		{"my brother he fall and shake shake all body and eyes go up", "seizure"},
		{"worst HA of my life, sudden onset", "severe_headache"},
		{"HA + photophobia + nuchal rigidity", "severe_headache"},
		{"this one came on like a clap of thunder an hour ago", "severe_headache"},
		{"severe headache and now his eyesight is blurry", "severe_headache"},
		{"AMS and fever, hypotensive 82/50", "sepsis"},
		{"i have fever and my heart very fast and i feel very weak cannot stand", "sepsis"},
		{"hematemesis x2 this evening", "bleeding"},
		{"melena since yesterday", "bleeding"},
		{"N/V with blood in it x3", "bleeding"},
		{"coffee ground emesis this am", "bleeding"},
		{"bleeding very much from my nose since one hour", "bleeding"},
		{"SI with plan, have pills saved", "self_harm"},
		{"having HI towards my neighbor", "self_harm"},
		{"gonna unalive myself", "self_harm"},
		{"sitting in the garage tonight with the car running", "self_harm"},
		{"hitting his head on the wall until it bleeds", "self_harm"},
		{"my wife she deliver 5 day ago, now she bleeding too much", "postpartum"},
		{"my son with CP needs a new wheelchair cushion", ""},
		{"my son has CP and his leg spasms are worse", ""},
		{"Hi, I have a plan question about my insurance", ""},
		{"ha ha worst day ever at work but I'm fine", ""},
		{"rubbing vicks on his chest for the cold", ""},
		{"no SI/HI, mood stable", ""},
		{"hx of CVA 2019 with full recovery, needs paperwork", ""},
		{"mild HA from caffeine withdrawal, 3/10", ""},
		{"no N/V, no blood", ""},
		{"walked 5 kms today", ""},
		{"black stools since starting iron tablets, doc said this is normal", ""},
		{"my grandson gave me a scare faking a faint as a joke", ""},
		{"My late husband had a stroke in 2010 and I still miss him", ""},
		{"he gets jerky legs when he's drifting off to sleep", ""},
		{"i feel like dying of boredom at this meeting lol", ""},
		{"chest binder making my ribs sore, any tips", ""},
		{"i OD'd on my adderall i think my heart is going crazy", "self_harm"},
		{"She had the flu and now she is very muddled", "sepsis"},
		{"she has a fever and is not herself", "sepsis"},
		// Greetings and common words must not fuzzy-match rare lexicon
		// words ("hello" was one edit from HELLP, "smoke" from stoke).
		{"Hello, my mother is doing well, we need her refill", ""},
		{"I quit smoke last year", ""},
		{"my son had a concussion in 2022, cleared to play", ""},
		{"my son with epilepsy has been seizure free 2 years, can he drive", ""},
		{"I want to kill my brother for eating my snacks lol", ""},
		{"hellp syndrome", "postpartum"},
		{"my wife she drop on floor in kitchen, now she wake but confuse", "fainting_collapse"},
		{"my daughter she shake very strong and not answer, foam in mouth", "seizure"},
		{"5 days postpartum, one leg is much bigger than the other and warm", "postpartum"},
		{"threw up like a cup of blood", "bleeding"},
		{"im done. goodbye everyone", "self_harm"},
		{"the office doesnt answer the phone", ""},
		{"shake the bottle very hard before using?", ""},
		{"they took a pint of blood at the donation drive", ""},
		{"I called the pharmacy 3 times, no answer", ""},
		{"I'm not answering unknown numbers, who called me?", ""},
		{"SI joint pain flaring again, can I get PT", ""},
		{"when I got home the dog had pooped on the floor", ""},
		{"I called my mom 3 times, no answer, and when I got there she was on the floor", "fainting_collapse"},
		{"I want to kill myself lol", "self_harm"},
	}
	checkScans(t, p, tests)
}
