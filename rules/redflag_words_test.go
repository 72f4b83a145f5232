package rules_test

import (
	"testing"

	"github.com/vigil-health/vigil/rules"
)

// Ordinary words one or two edits from a lexicon word, or that the
// run-together splitter could read as symptoms, must not fire: found by
// scanning a 73,608-word English dictionary (it took "consulted" for
// "convulsed" and "locate" for "LOC").
func TestOrdinaryWordsDoNotFire(t *testing.T) {
	t.Parallel()
	p, err := rules.DefaultPack()
	if err != nil {
		t.Fatal(err)
	}
	for _, msg := range []string{
		"I consulted Dr. Smith last week about my diet.",
		"Can you help me locate my vaccination records?",
		"My chores are getting easier since the knee surgery.",
		"She spoke to the pharmacist about the new insurance.",
		"The price of gas and the strikes made me miss the appointment.",
		"Our infants both have their checkups next month.",
		"I overdid it at the gym yesterday, sore but fine.",
		"Is there a conversion chart for my meal plan?",
		"The form was confusing, which boxes do I fill in?",
		"I'm a bit skeptic about the new vitamin.",
		"I'm stake holder in the clinic survey, happy to help.",
		"Just winged the exercises at home, went well.",
		"Could you resize the portal font, the sizing is off?",
	} {
		if hits := p.ScanText(msg); len(hits) > 0 {
			t.Errorf("%q fired %s on %q", msg, hits[0].Category, hits[0].Phrase)
		}
	}
	// The real thing still fires.
	for _, msg := range []string{"he convulsed for two minutes", "I took an overdose", "she collapsed at home", "cant stop choking"} {
		if hits := p.ScanText(msg); len(hits) == 0 {
			t.Errorf("%q did not fire", msg)
		}
	}
}
