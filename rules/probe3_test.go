package rules

import (
	"fmt"
	"testing"
)

func TestProbe3(t *testing.T) {
	p := mustDefault(t)
	pos := []string{
		"No fever. Chest pain started an hour ago.",
		"I have no energy and my chest hurts",
		"not only chest pain but also can't breathe",
		"Don't know what's going on, my chest is tight",
		"I'm not okay, I can't stop thinking about ending it",
		"no one is home and I think I'm having a stroke",
		"haven't been able to breathe right all day",
		"Nothing helps, the chest pain keeps coming back",
		"I never had chest pain like this before",
		"never felt this much pressure in my chest",
		"It's probably nothing but my left arm is numb and my chest hurts",
		"I'm not trying to overreact but my throat is closing",
		"i dont think i can breathe",
		"can't tell if I'm having a heart attack or panic attack",
		"chest pain? or maybe just gas",
		"Fever 102.3, stiff neck, bad headache",
		"my 4 year old has blue lips",
		"She's breathing funny and her lips are purple",
		"my husband is sweating, pale and has pain in his chest",
		"was told to message if I had chest pain - I do now",
		"I had chest pain last week and it's back today",
		"my heart is racing and I feel like I'm going to pass out",
		"I'm in a lot of pain in my chest",
		"heavy feeling on my chest since I woke up",
		"i cut myself on purpose last night",
		"I don't see the point in living anymore",
		"what's the point of going on",
		"I took all my pills at once",
		"my sister took an overdose",
		"I want to hurt my baby",
		"seizure lasting more than 5 minutes",
		"he had a febrile seizure",
		"my daughter fainted and hit her head",
		"I keep bleeding from my gums and I'm on coumadin",
		"bright red blood in the toilet and I feel dizzy",
		"my stitches opened and it's bleeding a lot",
		"My throat feels like it's closing up",
		"swollen tongue",
		"after the bee sting my whole face swelled",
		"face numb on one side",
		"can't move the right side of my body",
		"sudden numbness in my face",
		"pregnant and have a terrible headache with seeing stars",
		"2 weeks after giving birth I'm bleeding heavily",
		"I'm 5 days postpartum with a fever",
	}
	neg := []string{
		"No chest pain and no shortness of breath",
		"Denies fever, chills, chest pain, or shortness of breath.",
		"I have not fainted or felt lightheaded",
		"No blood in stool or urine",
		"no signs of infection at the incision",
		"Haven't had any seizures in 3 years",
		"I used to have panic attacks but I'm fine now",
		"History of asthma, well controlled",
		"I had a stroke in 2019 and I'm doing well, need PT referral",
		"My doctor ruled out a heart attack last month",
		"I quit smoking to reduce my heart attack risk",
		"Can you tell me what a normal heart rate is?",
		"My chest x-ray was normal, thanks",
		"Questions about my breast exam",
		"I watched a video on stroke symptoms and want to know my risk",
		"When should I worry about chest pain? I don't have any, just curious",
		"I don't have any thoughts of hurting myself",
		"My mood is better on the new dose",
		"The bleeding stopped after I applied pressure",
		"my allergies are acting up, sneezing and itchy eyes",
		"I'm pregnant and want to know which foods to avoid",
		"my mom's stroke rehab is going well",
		"My son has a mild fever and a sore throat",
		"blood pressure was high at the dentist, 145/92",
		"My headache went away after I drank water",
		"I cough when I lie down, no fever",
		"I get short of breath when I run, normal for me",
		"Lab says my potassium was fine",
		"My breathing is fine now",
		"no vision changes and no headache",
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
