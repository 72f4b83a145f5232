package rules

import (
	"fmt"
	"testing"
)

func TestProbe2(t *testing.T) {
	p := mustDefault(t)
	pos := []string{
		"Im 2 weeks post partum and running a fever of 101.2",
		"gave birth on monday, now my right leg is red and warm",
		"my incision from the c section is opening and smells bad",
		"after delivery I'm having the worst headache and blurry vision",
		"new mom here, bleeding has gotten heavier and I'm passing huge clots",
		"since having the baby I feel like I might hurt myself",
		"postpartum and my blood pressure at home was 165/110",
		"had my baby 10 days ago and it hurts to breathe",
		"my husband has a fever of 103 and is acting really confused",
		"my elderly mother has a fever and doesn't know where she is",
		"fever and shaking uncontrollably, I can't get warm",
		"my baby is 5 weeks old and has a temp of 100.6",
		"I'm on chemo and running a fever",
		"his knees look mottled and he's really sleepy",
		"I think I'm having an allergic reaction, my lips are swelling",
		"ate shrimp and now my throat feels tight",
		"I used my EpiPen 10 minutes ago",
		"face swelling and trouble breathing after the antibiotic",
		"my arm and leg on the right side are weak",
		"my dad's face is drooping",
		"can't get my words out",
		"woke up and can't move my left arm",
		"sudden confusion and trouble seeing",
		"I keep losing my balance and my speech is slurred",
		"I've been having thoughts of suicide",
		"sometimes I think everyone would be better off if I was gone",
		"I just want the pain to end, I want to die",
		"I am going to hurt myself tonight",
		"i took like 15 tylenol",
		"Accidentally took double my insulin and I'm shaky and sweaty",
		"my brother is talking about killing himself",
		"i keep hearing voices telling me to hurt people",
		"my son had a seizure and is still not waking up",
		"shaking episode, lost consciousness for a minute",
		"my daughter's whole body was stiff and jerking",
		"vomiting dark red blood",
		"Throwing up what looks like coffee grounds",
		"blood coming out with my cough",
		"diarrhea that is black",
		"rectal bleeding that won't stop",
		"my nose has been bleeding for 45 minutes",
		"I'm on warfarin and I have blood in my urine",
		"i have a crushing feeling in my chest",
		"pain between my shoulder blades and chest pressure",
		"my heart feels like it's going to explode",
		"it feels like a band around my chest",
		"my chest and left arm ache and I'm nauseous",
		"i cnat breathe",
		"breathng is very difficult",
		"I fell and now I can't stay awake",
		"my friend took a lot of pills and won't wake up",
		"SOB and chest pain",
		"feel faint and my heart is beating really fast",
		"he's not breathing right",
		"stabbing pain in my chest when I take a breath",
		"severe allergic reaction",
		"my blood sugar is 35 and I feel confused",
		"worst migraine of my life, different from usual",
		"thunderclap headache",
		"My 2 month old isn't eating and has a fever",
	}
	neg := []string{
		"No chest pain. No shortness of breath. Just tired.",
		"I'm not having any trouble breathing, but I have a runny nose",
		"I don't feel suicidal, just sad sometimes",
		"No headache, no vision changes, feeling great postpartum",
		"My baby was born 3 weeks ago and is doing great, question about vaccines",
		"I gave birth last month and want to schedule my 6 week checkup",
		"My c-section scar looks good, when can I swim?",
		"I need a refill of my EpiPen, it expires next month",
		"I'm allergic to shellfish, is the contrast dye okay?",
		"follow up about my seizure medication dose",
		"my migraine is the usual kind, sumatriptan helps",
		"my heart rate is a little high after coffee",
		"can I exercise with my heart condition?",
		"my mom had a heart attack and I want to get my cholesterol checked",
		"Nosebleed this morning, stopped after a few minutes",
		"I bled a little after my blood draw",
		"Black stool after taking Pepto-Bismol, is that expected?",
		"I take eliquis, can I have a glass of wine?",
		"Shortness of breath is better since the new inhaler",
		"no vomiting, no diarrhea, just nausea",
		"is it okay to fly with my blood clot history",
		"My fever broke and I feel much better",
		"My son has a fever of 101 but is eating and playing fine",
		"Cough for a week, no fever",
		"I'm scheduled for a colonoscopy, what prep do I need?",
		"I'm feeling anxious about my biopsy results",
		"My psychiatrist changed my meds, I'm doing better",
		"Swelling in my ankles at the end of the day",
		"I tripped and scraped my hand, it stopped bleeding",
		"My throat is sore, it hurts to swallow a little",
		"lightheaded when I skip breakfast",
		"Have a cold and a headache",
		"my back hurts after lifting boxes",
		"Need a work note, I was sick with the flu",
		"My eyes are itchy and watery",
		"I'm 28 weeks pregnant and have heartburn",
		"What is my A1c?",
		"I think I need new glasses, things look blurry when reading",
		"my arm feels a little weak after the flu shot",
		"I feel dizzy sometimes when I turn my head quickly",
	}
	fn, fp := 0, 0
	for _, s := range pos {
		if r := p.ScanText(s); len(r) == 0 {
			fn++
			fmt.Printf("MISS  %q\n", s)
		}
	}
	for _, s := range neg {
		if r := p.ScanText(s); len(r) > 0 {
			fp++
			fmt.Printf("FP    %q -> %v\n", s, r)
		}
	}
	fmt.Println("misses", fn, "/", len(pos), " fps", fp, "/", len(neg))
}
