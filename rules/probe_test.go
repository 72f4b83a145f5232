package rules

import (
	"fmt"
	"testing"
)

func TestProbe(t *testing.T) {
	p := mustDefault(t)
	pos := []string{
		"My chest is killing me and I'm sweaty",
		"Sharp pains in my chest on and off since lunch",
		"i feel pressure on my chest like someone is sitting on it",
		"Chest feels tight, hard to get a deep breath",
		"my heart is pounding and my chest feels heavy",
		"Pain going down my left arm and into my jaw",
		"having palpitations and chest tightness",
		"I can barely breathe when I walk across the room",
		"Feels like I'm breathing through a straw",
		"my breathing is really bad tonight",
		"my toddler is breathing really fast and his ribs are pulling in",
		"I keep waking up gasping for air",
		"I got really dizzy and blacked out",
		"my grandpa just fell and now he won't wake up",
		"I almost passed out at the store",
		"my left side went numb and my speech is weird",
		"my mom can't find her words and her face looks droopy",
		"sudden loss of vision in one eye",
		"I can't feel my right leg and my face feels funny",
		"Mouth drooping on one side, started an hour ago",
		"throat swelling up after eating nuts",
		"my tongue feels thick and it's hard to swallow after the new medicine",
		"broke out in hives and my throat is tight",
		"I don't want to live anymore",
		"thinking about ending my life",
		"I have pills saved up to end it",
		"i want to kill myself",
		"I feel like hurting myself",
		"took 20 of my xanax",
		"I took a bunch of my mom's pills",
		"my boyfriend overdosed and is barely breathing",
		"i wish i could go to sleep and never wake up",
		"I have thoughts of killing my neighbor",
		"my daughter had a convulsion with her fever",
		"he's having a seizure and won't stop shaking",
		"I had two seizures today",
		"the worst headache i have ever had in my life",
		"sudden excruciating headache while lifting weights",
		"bad headache, neck is stiff, fever 101.5",
		"headache with blurry vision and swelling in my hands, I'm 34 weeks pregnant",
		"my dad has a fever and he's confused and not making sense",
		"high fever and chills, my skin looks blotchy",
		"I'm on chemotherapy and my temp is 100.8",
		"throwing up blood",
		"my poop is black like tar",
		"bleeding through a pad every hour",
		"I'm bleeding a lot after my surgery",
		"blood in my vomit",
		"heavy vaginal bleeding with big clots",
		"3 days after delivery my calf is swollen and painful",
		"I had a c-section last week and now I have a fever of 101",
		"just gave birth and have a pounding headache and seeing spots",
		"Postpartum, bleeding soaked a pad in an hour",
		"CANT BREATHE",
		"chest pain??",
		"chestpain and shortnessofbreath",
		"im not sure but i think my chest hurts",
		"maybe it's anxiety but my chest feels tight",
		"hi, quick question, I've had some chest discomfort since yesterday, is that normal after the vaccine?",
		"No fever but my chest hurts",
		"I don't have a fever, but I can't breathe",
		"not feeling well, breathing is hard",
		"my husband is slurring his words",
		"our baby is turning blue",
		"My son swallowed a bunch of my pills",
		"I'm scared, my heart is racing and I feel faint",
		"Feel like Im going to pass out",
		"lips and face swelling",
		"cough with blood",
		"my wife collapsed",
		"I feel like I might die",
	}
	neg := []string{
		"No chest pain, no shortness of breath, no fever.",
		"I do not have any chest pain or trouble breathing.",
		"Patient denies SOB, CP, or dizziness",
		"I had a seizure in 2018, none since; need refill on Keppra",
		"Want to schedule a stress test that cardiology ordered",
		"Can I get the results from my chest CT?",
		"My asthma is well controlled, just need an inhaler refill",
		"How do I use my new blood pressure cuff?",
		"Are my cholesterol numbers okay?",
		"I'm feeling a little down lately, can I talk to someone?",
		"My baby has a stuffy nose and is feeding well",
		"Question about my bill",
		"Is it normal to have mild cramping after an IUD insertion?",
		"I've been getting mild headaches in the afternoon, probably from screen time",
		"My knee hurts when I climb stairs",
		"I need my pain medication refilled",
		"I am not suicidal",
		"no thoughts of self harm",
		"My father died of a stroke, I'd like to talk about prevention",
		"my inhaler ran out, no trouble breathing though",
		"I'm allergic to penicillin, please note it in my chart",
		"Can I take Benadryl for my seasonal allergies?",
		"just a heads up I'll be late for my appointment",
		"I don't have chest pain anymore since starting the medicine",
		"slight cough, no fever, no shortness of breath",
		"My sugars have been running around 180",
		"Had some spotting between periods",
		"My period is heavier than usual this month",
		"I lost 5 pounds this month",
		"Bruise on my arm from the blood draw",
		"what are the side effects of the shingles vaccine?",
		"The physical therapist says my balance is improving",
		"dizzy when I stand up too fast sometimes, otherwise fine",
		"Feeling stressed at work, not sleeping well",
		"my blood pressure is 135/85",
		"I'm 3 months postpartum and need a refill on my prenatal vitamins",
		"My heart rate on my watch was 95 after my run",
		"Can you fax my records to my cardiologist?",
		"I hit my head on the cabinet, small bump, no other symptoms",
		"My arm is sore from the vaccine",
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
