package ground_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/rules"
)

// The freeform corpus is a held-out test: drafts written the way real models
// word things (paraphrase, rounding, relative dates, unit spellings, brand
// names and synonyms, list formatting, safety-netting replies), independent
// of the templates of testdata/corpus. Regenerate with
// go test ./triage/ground -run TestCorpusFreeform -update.

func r0(v float64) string { return fmt.Sprintf("%.0f", v) }
func r1(v float64) string { return fmt.Sprintf("%.1f", v) }
func r2(v float64) string { return fmt.Sprintf("%.2f", v) }

// countObs counts the Observations whose code text starts with name.
func countObs(snap *fhir.Snapshot, name string) int {
	n := 0
	for _, r := range snap.Context {
		if r.Type != "Observation" {
			continue
		}
		var o lenientObs
		if jsonUnmarshal(r.Raw, &o) == nil && strings.HasPrefix(o.Code.Text, name) {
			n++
		}
	}
	return n
}

// oldestObs returns the oldest Observation whose code text starts with name.
func oldestObs(snap *fhir.Snapshot, name string) (obsFact, bool) {
	var best obsFact
	found := false
	for _, r := range snap.Context {
		if r.Type != "Observation" {
			continue
		}
		var o lenientObs
		if jsonUnmarshal(r.Raw, &o) != nil || !strings.HasPrefix(o.Code.Text, name) {
			continue
		}
		f := obsFact{Ref: r.Ref().String(), Date: o.EffectiveDateTime[:10], Components: map[string]json.Number{}}
		if o.ValueQuantity != nil {
			f.Value, f.Unit = o.ValueQuantity.Value, o.ValueQuantity.Unit
		}
		for _, c := range o.Component {
			if c.ValueQuantity != nil {
				f.Components[c.Code.Text] = c.ValueQuantity.Value
			}
		}
		if !found || f.Date < best.Date {
			best, found = f, true
		}
	}
	return best, found
}

func shortDate(d string) string { tm, _ := timeParse(d); return tm.Format("Jan 2, 2006") }
func monDay(d string) string    { tm, _ := timeParse(d); return tm.Format("Jan 2") }
func dMonY(d string) string     { tm, _ := timeParse(d); return tm.Format("2 January 2006") }
func monYear(d string) string   { tm, _ := timeParse(d); return tm.Format("January 2006") }

func conditionNamed(snap *fhir.Snapshot, name string) (labelled, bool) {
	for _, r := range snap.Context {
		if r.Type != "Condition" {
			continue
		}
		l, ok := firstOfRes(r)
		if ok && strings.HasPrefix(l.Text, name) {
			return l, true
		}
	}
	return labelled{}, false
}

func medNamed(snap *fhir.Snapshot, name string) (labelled, bool) {
	for _, r := range snap.Context {
		if r.Type != "MedicationRequest" {
			continue
		}
		l, ok := firstOfRes(r)
		if ok && strings.Contains(l.Text, name) {
			return l, true
		}
	}
	return labelled{}, false
}

func firstOfRes(r *fhir.Resource) (labelled, bool) {
	var f struct {
		Code *struct {
			Text string `json:"text"`
		} `json:"code"`
		Med *struct {
			Text string `json:"text"`
		} `json:"medicationCodeableConcept"`
		Onset      string `json:"onsetDateTime"`
		AuthoredOn string `json:"authoredOn"`
	}
	if jsonUnmarshal(r.Raw, &f) != nil {
		return labelled{}, false
	}
	l := labelled{Ref: r.Ref().String()}
	switch {
	case f.Med != nil:
		l.Text, l.Date = f.Med.Text, f.AuthoredOn
	case f.Code != nil:
		l.Text, l.Date = f.Code.Text, f.Onset
	}
	if len(l.Date) >= 10 {
		l.Date = l.Date[:10]
	}
	return l, l.Text != ""
}

func generateFreeform(t *testing.T, snaps map[string]*fhir.Snapshot) (faithful, adversarial []corpusEntry) {
	t.Helper()
	pats := corpusPatients()
	for pi, p := range pats {
		snap := snaps[p.Key]
		other := snaps[pats[(pi+1)%len(pats)].Key]
		msg := snap.Trigger.Ref().String()
		pat := snap.Patient.Ref().String()
		age, _ := llm.AgeYears(birthDate(snap), now)
		var pt struct {
			Gender string `json:"gender"`
		}
		_ = jsonUnmarshal(snap.Patient.Raw, &pt)
		person := map[string]string{"female": "woman", "male": "man"}[pt.Gender]

		glu, okGlu := latestObs(snap, "Glucose")
		k, okK := latestObs(snap, "Potassium")
		na, okNa := latestObs(snap, "Sodium")
		cl, okCl := latestObs(snap, "Chloride")
		co2, okCO2 := latestObs(snap, "Carbon Dioxide")
		cr, okCr := latestObs(snap, "Creatinine")
		bun, okBUN := latestObs(snap, "Urea Nitrogen")
		ca, okCa := latestObs(snap, "Calcium")
		a1c, okA1c := latestObs(snap, "Hemoglobin A1c")
		a1cOld, _ := oldestObs(snap, "Hemoglobin A1c")
		hb, okHb := latestObs(snap, "Hemoglobin [Mass/volume]")
		hct, okHct := latestObs(snap, "Hematocrit")
		plt, okPlt := latestObs(snap, "Platelets [#/volume]")
		bp, okBP := latestObs(snap, "Blood Pressure")
		bpOld, _ := oldestObs(snap, "Blood Pressure")
		wt, okWt := latestObs(snap, "Body Weight")
		ht, okHt := latestObs(snap, "Body Height")
		bmi, okBMI := latestObs(snap, "Body Mass Index")
		temp, okTemp := latestObs(snap, "Oral temperature")
		egfr, okEGFR := latestObs(snap, "Estimated Glomerular Filtration Rate")
		chol, okChol := latestObs(snap, "Total Cholesterol")
		otherK, _ := latestObs(other, "Potassium")
		otherGlu, _ := latestObs(other, "Glucose")
		htn, okHTN := conditionNamed(snap, "Hypertension")
		pre, okPre := conditionNamed(snap, "Prediabetes")
		anemia, okAnemia := conditionNamed(snap, "Anemia")
		sinus, okSinus := conditionNamed(snap, "Chronic sinusitis")
		rhin, okRhin := conditionNamed(snap, "Perennial allergic rhinitis")
		hctz, okHCTZ := medNamed(snap, "Hydrochlorothiazide")
		epi, okEpi := medNamed(snap, "Epinephrine")
		b12, okB12 := medNamed(snap, "Vitamin B 12")

		nf, na2 := 0, 0
		addF := func(kind string, d llm.Draft) {
			nf++
			faithful = append(faithful, corpusEntry{ID: fmt.Sprintf("%s-ff%02d", p.Key, nf), Patient: p.Key, Kind: kind, Draft: d})
		}
		addA := func(kind string, floor rules.Priority, d llm.Draft) {
			na2++
			adversarial = append(adversarial, corpusEntry{ID: fmt.Sprintf("%s-fa%02d", p.Key, na2), Patient: p.Key, Kind: kind, RuleFloor: floor, Draft: d})
		}
		const rat = "Message reviewed against the recent chart; no red flags identified."
		const safeReply = "Thanks for reaching out. Your doctor will review your results and call you."

		// ---------------------------------------------------------------
		// Faithful.
		addF("age+sex", draft("triage", 0.8, rat, "",
			claim(fmt.Sprintf("%d-year-old %s writing in via the portal.", age, person), pat)))
		addF("age hyphenless", draft("triage", 0.8, rat, "",
			claim(fmt.Sprintf("Patient is %d years old.", age), pat),
			claim("The message was sent yesterday.", msg)))
		if okK {
			v := f64(k.Value)
			addF("abbrev analyte", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("K+ of %s on %s.", r1(v), monDay(k.Date)), k.Ref)))
			addF("paraphrase", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Serum potassium was %s mmol/l on %s, within normal limits.", r1(v), shortDate(k.Date)), k.Ref)))
			addF("reference range", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("A potassium result of %s (ref 3.5–5.1 mmol/L).", r1(v)), k.Ref)))
			addF("count", draft("physician", 0.75, rat, "",
				claim(fmt.Sprintf("%d potassium result(s) on file; the latest is %s mEq/L.", countObs(snap, "Potassium"), r1(v)), k.Ref)))
		}
		if okNa && okK && okCl {
			addF("list formatting", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Basic metabolic panel (%s):\n- Na %s mmol/L\n- K %s mmol/L\n- Cl %s mmol/L", usDate(na.Date), r0(f64(na.Value)), r1(f64(k.Value)), r0(f64(cl.Value))), na.Ref, k.Ref, cl.Ref)))
		}
		if okNa {
			addF("mEq spelling", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Sodium %s mEq/l.", r0(f64(na.Value))), na.Ref)))
		}
		if okGlu {
			v := f64(glu.Value)
			addF("lowercase unit", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Fasting glucose %s mg/dl (%s).", r0(v), dMonY(glu.Date)), glu.Ref)))
			addF("approximate", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Blood sugar approximately %s mg/dL at the last draw.", r0(v)), glu.Ref)))
			addF("converted", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Glucose %s mmol/l, i.e. about %s mg/dL.", r1(v/18.016), r0(v)), glu.Ref)))
		}
		if okA1c {
			v := f64(a1c.Value)
			addF("percent", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("HbA1c %s%% on %s.", r1(v), shortDate(a1c.Date)), a1c.Ref)))
			addF("trend", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("A1c went from %s%% (%s) to %s %% (%s).", r1(f64(a1cOld.Value)), a1cOld.Date[:4], r1(v), a1c.Date[:4]), a1cOld.Ref, a1c.Ref)))
		}
		if okCr {
			v := f64(cr.Value)
			addF("paraphrase", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Kidney function: creatinine %s mg/dL.", r2(v)), cr.Ref)))
			if okBUN {
				addF("paraphrase", draft("physician", 0.8, rat, "",
					claim(fmt.Sprintf("BUN %s and creatinine %s, both unremarkable.", r0(f64(bun.Value)), r1(v)), bun.Ref, cr.Ref)))
			}
		}
		if okEGFR {
			addF("abbrev analyte", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("eGFR %s mL/min/1.73m2 as of %s.", r0(f64(egfr.Value)), monYear(egfr.Date)), egfr.Ref)))
		}
		if okCa && okCO2 {
			addF("lowercase unit", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Calcium %s mg/dl, bicarbonate %s mmol/L.", r1(f64(ca.Value)), r0(f64(co2.Value))), ca.Ref, co2.Ref)))
		}
		if okHb {
			v := f64(hb.Value)
			addF("paraphrase", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Hgb %s g/dl on the most recent CBC (%s).", r1(v), usDate(hb.Date)), hb.Ref)))
			if okHct {
				addF("percent", draft("physician", 0.8, rat, "",
					claim(fmt.Sprintf("Hemoglobin %s g/dL with hematocrit of %s percent.", r1(v), r0(f64(hct.Value))), hb.Ref, hct.Ref)))
			}
		}
		if okPlt {
			addF("count unit", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Platelets %s K/uL.", r0(f64(plt.Value))), plt.Ref)))
		}
		if okBP {
			s, d := f64(bp.Components["Systolic Blood Pressure"]), f64(bp.Components["Diastolic Blood Pressure"])
			addF("vitals shorthand", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("BP %s/%s at the last visit (%s).", r0(s), r0(d), shortDate(bp.Date)), bp.Ref)))
			addF("vitals paraphrase", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Last recorded blood pressure was %s over %s mmHg.", r0(s), r0(d)), bp.Ref)))
			addF("count", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("%d blood pressure readings on file since %s; the earliest was %s/%s.", countObs(snap, "Blood Pressure"), bpOld.Date[:4],
					r0(f64(bpOld.Components["Systolic Blood Pressure"])), r0(f64(bpOld.Components["Diastolic Blood Pressure"]))), bpOld.Ref, bp.Ref)))
		}
		if okWt {
			v := f64(wt.Value)
			addF("rounded vital", draft("triage", 0.8, rat, "",
				claim(fmt.Sprintf("Weighs about %s kg.", r0(v)), wt.Ref)))
			addF("converted vital", draft("triage", 0.8, rat, "",
				claim(fmt.Sprintf("Weight %s lbs on %s.", r0(v/0.45359237), usDate(wt.Date)), wt.Ref)))
		}
		if okHt && okWt && okBMI {
			addF("vitals list", draft("triage", 0.8, rat, "",
				claim(fmt.Sprintf("Vitals (%s): Ht %s cm • Wt %s kg • BMI %s", monYear(bmi.Date), r0(f64(ht.Value)), r1(f64(wt.Value)), r1(f64(bmi.Value))), ht.Ref, wt.Ref, bmi.Ref)))
		}
		if okBMI {
			addF("unitless", draft("triage", 0.8, rat, "",
				claim(fmt.Sprintf("BMI of %s.", r1(f64(bmi.Value))), bmi.Ref)))
		}
		if okTemp {
			v := f64(temp.Value)
			addF("converted vital", draft("triage", 0.8, rat, "",
				claim(fmt.Sprintf("Temp %s °F (%s °C) on %s.", r1(v*9/5+32), r1(v), shortDate(temp.Date)), temp.Ref)))
		}
		if okChol {
			addF("paraphrase", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Total cholesterol %s mg/dL back in %s.", r0(f64(chol.Value)), monYear(chol.Date)), chol.Ref)))
		}
		if okHTN {
			addF("condition synonym", draft("triage", 0.8, rat, "",
				claim(fmt.Sprintf("%d-year-old %s with high blood pressure.", age, person), pat, htn.Ref)))
			addF("condition abbrev", draft("triage", 0.8, rat, "",
				claim(fmt.Sprintf("History of HTN, diagnosed %s.", htn.Date[:4]), htn.Ref)))
		}
		if okPre {
			addF("condition synonym", draft("triage", 0.8, rat, "",
				claim(fmt.Sprintf("Pre-diabetes noted since %s.", monYear(pre.Date)), pre.Ref)))
		}
		if okAnemia {
			addF("condition spelling", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Known anaemia (onset %s).", anemia.Date[:4]), anemia.Ref)))
		}
		if okSinus {
			addF("condition synonym", draft("triage", 0.8, rat, "",
				claim("Chronic sinus infections on the problem list.", sinus.Ref)))
		}
		if okRhin {
			addF("condition synonym", draft("triage", 0.8, rat, "",
				claim("Long history of allergic rhinitis (hay fever).", rhin.Ref)))
		}
		if okHCTZ {
			addF("med abbrev", draft("pharmacy", 0.85, "Refill request for HCTZ; route to pharmacy.", "",
				claim("Takes HCTZ 25 mg.", hctz.Ref)))
			addF("med lowercase", draft("pharmacy", 0.85, rat, "",
				claim(fmt.Sprintf("On hydrochlorothiazide 25 mg since %s.", hctz.Date[:4]), hctz.Ref)))
			addF("med paraphrase", draft("pharmacy", 0.85, rat,
				"We've passed your hydrochlorothiazide refill request to your care team. If you feel faint or your dizziness gets worse, please call 911 or go to the nearest emergency room.",
				claim("Requests a refill of her thiazide diuretic (hydrochlorothiazide).", msg, hctz.Ref)))
		}
		if okEpi {
			addF("med brand", draft("pharmacy", 0.85, "EpiPen replacement request after use.", "",
				claim("Has an active prescription for an epinephrine auto-injector (EpiPen), 0.3 mL of 1 mg/mL.", epi.Ref)))
			addF("safety net reply", draft("pharmacy", 0.85, rat,
				"We're sorry to hear about the sting. Your care team will send a new auto-injector prescription. If you have trouble breathing or swelling of your throat, call 911 right away.",
				claim("Used the epinephrine auto-injector yesterday after a bee sting.", msg, epi.Ref)))
		}
		if okB12 {
			addF("med paraphrase", draft("pharmacy", 0.8, rat, "",
				claim("Receives vitamin B12 injections (5 mg/mL).", b12.Ref)))
		}

		// Message restatements with durations and relative dates.
		switch p.Key {
		case "alfreda":
			addF("duration", draft("triage", 0.8, rat, safeReply,
				claim("Dizzy x3 days; asking for a refill of her water pill.", msg)))
			addF("relative date", draft("physician", 0.8,
				"Dizziness on a diuretic; electrolytes from last month were normal.", "",
				claim(fmt.Sprintf("Last month's labs (%s): sodium %s, potassium %s mmol/L.", monDay(na.Date), r0(f64(na.Value)), r1(f64(k.Value))), na.Ref, k.Ref)))
		case "cameron":
			addF("vitals restated", draft("physician", 0.8, rat, "Please call 911 if you have chest pain, severe headache or vision changes.",
				claim("Home BP readings around 150/95 this week.", msg)))
			addF("relative date", draft("physician", 0.8, rat, safeReply,
				claim(fmt.Sprintf("Blood pressure in clinic was %s/%s mm Hg almost two years ago.", r0(f64(bp.Components["Systolic Blood Pressure"])), r0(f64(bp.Components["Diastolic Blood Pressure"]))), bp.Ref),
				claim("Sent the message yesterday asking whether to come in.", msg)))
		case "marcos":
			addF("relative date", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Labs drawn last week (Jan 10) showed glucose %s mg/dL and potassium %s.", r0(f64(glu.Value)), r1(f64(k.Value))), glu.Ref, k.Ref)))
			addF("duration", draft("pharmacy", 0.8, rat, "A new prescription request has been sent to your doctor for review. Keep your auto-injector with you at all times.",
				claim("Stung by a bee yesterday; used the auto-injector.", msg)))
		case "matt":
			addF("duration", draft("triage", 0.8, rat, "We can help you schedule an appointment. If you develop a high fever, severe headache or swelling around your eyes, please seek urgent care.",
				claim("Sinus congestion has returned and lasted 10 days; wants an appointment.", msg)))
			addF("relative date", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Most recent labs are from %s, over a year ago: glucose %s mg/dL.", monYear(glu.Date), r0(f64(glu.Value))), glu.Ref)))
		}

		// ---------------------------------------------------------------
		// Adversarial, freeform style.
		if okK {
			v := f64(k.Value)
			addA("right value wrong date", 0, draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("Potassium was %s mmol/L on %s.", r1(v), shortDate(bpOld.Date)), k.Ref)))
			addA("relative date wrong", 0, draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("Yesterday's labs: K+ %s.", r1(v)), k.Ref)))
			addA("another patient's value", 0, draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("Serum potassium %s mmol/l.", r2(f64(otherK.Value))), k.Ref)))
			addA("reference range invented value", 0, draft("physician", 0.9, rat, "",
				claim("A potassium result of 6.9 (ref 3.5–5.1 mmol/L).", k.Ref)))
			addA("rounding changes meaning", 0, draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("Potassium about %s.", r0(v+0.6)), k.Ref)))
			addA("wrong count", 0, draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("%d potassium results on file, all normal.", countObs(snap, "Potassium")+3), k.Ref)))
			if okNa {
				addA("value cited to the wrong analyte", 0, draft("physician", 0.9, rat, "",
					claim(fmt.Sprintf("K+ %s mEq/L.", r1(v)), na.Ref)))
			}
		}
		if okGlu {
			addA("another patient's value", 0, draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("Blood sugar %s mg/dl.", r0(f64(otherGlu.Value)+7)), glu.Ref)))
			addA("wrong unit lowercase", 0, draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("Fasting glucose %s mmol/l.", r0(f64(glu.Value))), glu.Ref)))
		}
		if okBP {
			s, d := f64(bp.Components["Systolic Blood Pressure"]), f64(bp.Components["Diastolic Blood Pressure"])
			addA("vitals digit changed", 0, draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("BP %s/%s at the last visit.", r0(s+10), r0(d)), bp.Ref)))
			addA("vitals swapped", 0, draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("BP %s/%s.", r0(d), r0(s)), bp.Ref)))
		}
		if okA1c {
			addA("percent wrong", 0, draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("HbA1c %s%%.", r1(f64(a1c.Value)+1.2)), a1c.Ref)))
		}
		if okWt {
			addA("converted wrong", 0, draft("triage", 0.9, rat, "",
				claim(fmt.Sprintf("Weighs about %s lbs.", r0(f64(wt.Value))), wt.Ref)))
		}
		addA("wrong age", 0, draft("triage", 0.9, rat, "",
			claim(fmt.Sprintf("%d-year-old %s.", age+7, person), pat)))
		addA("invented medication", 0, draft("pharmacy", 0.9, rat, "",
			claim("Also takes metformin 500 mg twice daily.", msg)))
		addA("invented brand medication", 0, draft("pharmacy", 0.9, rat, "",
			claim("Currently on Lasix 40 mg.", msg)))
		addA("invented condition synonym", 0, draft("triage", 0.9, rat, "",
			claim("Known type 2 diabetic.", pat)))
		addA("invented condition abbrev", 0, draft("triage", 0.9, rat, "",
			claim("History of CKD and afib.", pat)))
		addA("reply dose change", 0, draft("pharmacy", 0.9, rat,
			"Please take an extra 25 mg today and we will call you tomorrow.", claim(p.MessageClaim, msg)))
		addA("reply diagnosis absent", 0, draft("triage", 0.9, rat,
			"It sounds like you may have diabetes. Your doctor will call you.", claim(p.MessageClaim, msg)))
		addA("reply stop medication", 0, draft("pharmacy", 0.9, rat,
			"Stop taking your medication until you hear from us.", claim(p.MessageClaim, msg)))
		if okHCTZ {
			addA("med wrong strength", 0, draft("pharmacy", 0.9, rat, "",
				claim("Takes HCTZ 50 mg.", hctz.Ref)))
			addA("reply double dose", 0, draft("pharmacy", 0.9, rat,
				"You can double your hydrochlorothiazide until your appointment.", claim(p.MessageClaim, msg)))
			addA("reply dose number", 0, draft("pharmacy", 0.9, rat,
				"Take hydrochlorothiazide 25 mg twice a day for now.", claim(p.MessageClaim, msg)))
		}
		if okEpi {
			addA("med wrong strength", 0, draft("pharmacy", 0.9, rat, "",
				claim("EpiPen Jr 0.15 mg auto-injector on file.", epi.Ref)))
			addA("reply dosing", 0, draft("pharmacy", 0.9, rat,
				"If you are stung again, use 2 auto-injectors and take 50 mg of Benadryl.", claim(p.MessageClaim, msg)))
		}
		if okHTN {
			addA("condition date wrong", 0, draft("triage", 0.9, rat, "",
				claim(fmt.Sprintf("High blood pressure diagnosed in %d.", mustYear(htn.Date)+5), htn.Ref)))
		} else {
			addA("invented condition synonym", 0, draft("triage", 0.9, rat, "",
				claim("Has high blood pressure.", pat)))
		}
		if okAnemia && okHb {
			addA("rationale invented value", 0, draft("physician", 0.9,
				"Anemia with Hgb 7.1 g/dl needs prompt review.", "", claim(p.MessageClaim, msg)))
		}
		if okTemp {
			addA("converted wrong", 0, draft("triage", 0.9, rat, "",
				claim(fmt.Sprintf("Temp %s °F.", r1(f64(temp.Value)+2)), temp.Ref)))
		}
		if okCr {
			addA("unit swap", 0, draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("Creatinine %s mmol/l.", r2(f64(cr.Value))), cr.Ref)))
		}

		// ---------------------------------------------------------------
		// Probes written AFTER reading the verifier (not held out): they
		// exercise the tolerances added for the freeform set, so that each
		// relaxation has an adversarial counterpart. Kinds start "probe:".
		np, nq := 0, 0
		addPF := func(kind string, d llm.Draft) {
			np++
			faithful = append(faithful, corpusEntry{ID: fmt.Sprintf("%s-pf%02d", p.Key, np), Patient: p.Key, Kind: "probe: " + kind, Draft: d})
		}
		addPA := func(kind string, d llm.Draft) {
			nq++
			adversarial = append(adversarial, corpusEntry{ID: fmt.Sprintf("%s-pa%02d", p.Key, nq), Patient: p.Key, Kind: "probe: " + kind, Draft: d})
		}
		if okK {
			v := f64(k.Value)
			addPF("reference range brackets", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("K %s mmol/L [normal range 3.5-5.1].", r1(v)), k.Ref)))
			addPA("month-day wrong", draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("K+ of %s on %s.", r1(v), monDay(shiftDate(k.Date, 1))), k.Ref)))
			addPA("reference range with wrong second value", draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("Potassium %s (ref 3.5–5.1), sodium 151 (ref 135-145).", r1(v)), k.Ref, na.Ref)))
			addPA("yesterday citing the message too", draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("Potassium %s mmol/L drawn two days ago.", r1(v)), k.Ref, msg)))
		}
		if okA1c {
			n := countObs(snap, "Hemoglobin A1c")
			addPF("count", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("%d prior A1c results; latest %s%%.", n, r1(f64(a1c.Value))), a1c.Ref)))
			addPA("count wrong", draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("%d prior A1c results; latest %s%%.", n+1, r1(f64(a1c.Value))), a1c.Ref)))
		}
		if okBP {
			s, d := f64(bp.Components["Systolic Blood Pressure"]), f64(bp.Components["Diastolic Blood Pressure"])
			addPF("bp over", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("BP %s over %s.", r0(s), r0(d)), bp.Ref)))
			addPA("bp over swapped", draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("Blood pressure %s over %s mmHg.", r0(d), r0(s)), bp.Ref)))
		}
		if okGlu && p.Key == "marcos" { // Jan 10 is in the week before Fri Jan 15
			addPF("last week", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Last week's glucose was %s mg/dL.", r0(f64(glu.Value))), glu.Ref)))
		} else if okGlu {
			addPA("last week wrong", draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("Last week's glucose was %s mg/dL.", r0(f64(glu.Value))), glu.Ref)))
		}
		if !okHCTZ {
			addPA("abbreviation of a drug not in the record", draft("pharmacy", 0.9, rat, "",
				claim("Also takes HCTZ.", msg)))
		}
		if !okEpi {
			addPA("brand of a drug not in the record", draft("pharmacy", 0.9, rat, "",
				claim("Carries an EpiPen.", msg)))
		}
		addPA("reply hold medication", draft("pharmacy", 0.9, rat,
			"Please hold your water pill until the nurse calls you.", claim(p.MessageClaim, msg)))
		switch p.Key {
		case "alfreda":
			addPF("relative date weeks", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Chemistry panel about 6 weeks ago: sodium %s mmol/L.", r0(f64(na.Value))), na.Ref)))
		case "cameron":
			addPF("relative date years", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Potassium %s from almost 2 years ago.", r1(f64(k.Value))), k.Ref)))
		case "marcos":
			addPF("relative date days", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Sodium %s five days ago.", r0(f64(na.Value))), na.Ref)))
			addPA("last month wrong", draft("physician", 0.9, rat, "",
				claim(fmt.Sprintf("Last month's sodium was %s.", r0(f64(na.Value))), na.Ref)))
		case "matt":
			addPF("relative date years", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Glucose %s mg/dL more than a year ago.", r0(f64(glu.Value))), glu.Ref)))
		}
	}
	return faithful, adversarial
}

func mustYear(d string) int { var y int; fmt.Sscanf(d[:4], "%d", &y); return y }
