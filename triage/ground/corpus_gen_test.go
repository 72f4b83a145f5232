package ground_test

import (
	"fmt"
	"strconv"
	"testing"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/rules"
)

// generateCorpus builds the corpus from templates over the fixture
// snapshots (run with -update to rewrite testdata/corpus).
func generateCorpus(t *testing.T, snaps map[string]*fhir.Snapshot) (faithful, adversarial []corpusEntry) {
	t.Helper()
	for _, p := range corpusPatients() {
		snap := snaps[p.Key]
		msg := snap.Trigger.Ref().String()
		pat := snap.Patient.Ref().String()
		glu, okGlu := latestObs(snap, "Glucose")
		wt, okWt := latestObs(snap, "Body Weight")
		ht, okHt := latestObs(snap, "Body Height")
		bp, okBP := latestObs(snap, "Blood Pressure")
		hb, okHb := latestObs(snap, "Hemoglobin [Mass/volume]")
		k, okK := latestObs(snap, "Potassium")
		na, okNa := latestObs(snap, "Sodium")
		cr, okCr := latestObs(snap, "Creatinine")
		med, okMed := firstOf(snap, "MedicationRequest")
		cond, okCond := firstOf(snap, "Condition")
		age, _ := llm.AgeYears(birthDate(snap), now)

		nf, na2 := 0, 0
		addF := func(kind string, d llm.Draft) {
			nf++
			faithful = append(faithful, corpusEntry{ID: fmt.Sprintf("%s-f%02d", p.Key, nf), Patient: p.Key, Kind: kind, Draft: d})
		}
		addA := func(kind string, floor rules.Priority, d llm.Draft) {
			na2++
			adversarial = append(adversarial, corpusEntry{ID: fmt.Sprintf("%s-a%02d", p.Key, na2), Patient: p.Key, Kind: kind, RuleFloor: floor, Draft: d})
		}
		const rat = "Routine review of the patient's message with recent results."
		const reply = "Thank you for your message. A member of the care team will review it and contact you."

		// Faithful drafts.
		addF("message", draft("triage", 0.8, rat, reply, claim(p.MessageClaim, msg)))
		addF("age", draft("triage", 0.7, rat, "", claim(fmt.Sprintf("%d-year-old patient.", age), pat), claim(p.MessageClaim, msg)))
		if okGlu {
			addF("lab value", draft("physician", 0.8, rat, "", claim(fmt.Sprintf("Glucose was %s mg/dL on %s.", fmtv(glu.Value), glu.Date), glu.Ref)))
			addF("lab converted unit", draft("physician", 0.8, rat, "", claim(fmt.Sprintf("Glucose %.1f mmol/L (%s).", f64(glu.Value)/18.016, longDate(glu.Date)), glu.Ref)))
			addF("lab rounded", draft("physician", 0.75, rat, "", claim(fmt.Sprintf("Most recent glucose about %.0f mg/dL, dated %s.", f64(glu.Value), usDate(glu.Date)), glu.Ref)))
		}
		if okWt {
			addF("vital", draft("triage", 0.8, rat, "", claim(fmt.Sprintf("Body weight %s kg on %s.", fmtv(wt.Value), usDate(wt.Date)), wt.Ref)))
			addF("vital converted unit", draft("triage", 0.8, rat, "", claim(fmt.Sprintf("Weight %.1f lb.", f64(wt.Value)/0.45359237), wt.Ref)))
		}
		if okHt {
			addF("vital", draft("triage", 0.8, rat, "", claim(fmt.Sprintf("Height %s cm, about %.1f inches.", fmtv(ht.Value), f64(ht.Value)/2.54), ht.Ref)))
		}
		if okBP {
			sys, dia := bp.Components["Systolic Blood Pressure"], bp.Components["Diastolic Blood Pressure"]
			addF("blood pressure", draft("physician", 0.8, rat, "", claim(fmt.Sprintf("Blood pressure %.0f/%.0f mmHg on %s.", f64(sys), f64(dia), bp.Date), bp.Ref)))
			addF("blood pressure", draft("physician", 0.8, rat, "", claim(fmt.Sprintf("Systolic %s mm[Hg], diastolic %s mm[Hg].", fmtv(sys), fmtv(dia)), bp.Ref)))
		}
		if okHb {
			addF("lab value", draft("physician", 0.8, rat, "", claim(fmt.Sprintf("Hemoglobin %s g/dL.", fmtv(hb.Value)), hb.Ref)))
			addF("lab converted unit", draft("physician", 0.8, rat, "", claim(fmt.Sprintf("Hemoglobin %.0f g/L on %s.", f64(hb.Value)*10, hb.Date), hb.Ref)))
		}
		if okK && okNa {
			addF("lab value", draft("physician", 0.8, rat, "",
				claim(fmt.Sprintf("Potassium %s mmol/L.", fmtv(k.Value)), k.Ref),
				claim(fmt.Sprintf("Sodium %s mEq/L.", fmtv(na.Value)), na.Ref)))
		}
		if okCr {
			addF("lab converted unit", draft("physician", 0.8, rat, "", claim(fmt.Sprintf("Creatinine %s mg/dL (%.0f umol/L).", fmtv(cr.Value), f64(cr.Value)*88.42), cr.Ref)))
		}
		if okMed {
			addF("medication", draft("pharmacy", 0.85, "Medication question for the pharmacy team.", reply,
				claim(fmt.Sprintf("Active prescription: %s, ordered %s.", med.Text, med.Date), med.Ref)))
		}
		if okCond {
			addF("condition", draft("triage", 0.8, rat, "", claim(fmt.Sprintf("%s is on the problem list.", cond.Text), cond.Ref)))
			addF("condition year", draft("triage", 0.8, rat, "", claim(fmt.Sprintf("%s first recorded in %s.", cond.Text, cond.Date[:4]), cond.Ref)))
		}
		if okGlu && okCond {
			addF("multi-claim", draft("physician", 0.9, rat, reply,
				claim(p.MessageClaim, msg),
				claim(fmt.Sprintf("Glucose %s mg/dL on %s.", fmtv(glu.Value), glu.Date), glu.Ref),
				claim(fmt.Sprintf("Problem list includes %s.", cond.Text), cond.Ref, msg)))
		}

		bmi, okBMI := latestObs(snap, "Body Mass Index")
		hct, okHct := latestObs(snap, "Hematocrit")
		if okGlu {
			tm, _ := timeParse(glu.Date)
			addF("paraphrase", draft("physician", 0.85, rat, "", claim(fmt.Sprintf("The most recent glucose (%s) was %s mg/dL, within the reference range.", tm.Format("Jan 2, 2006"), fmtv(glu.Value)), glu.Ref)))
		}
		if okBMI {
			addF("paraphrase", draft("triage", 0.8, rat, "", claim(fmt.Sprintf("BMI of %s kg/m2 recorded on %s.", fmtv(bmi.Value), bmi.Date), bmi.Ref)))
		}
		if okWt {
			tm, _ := timeParse(wt.Date)
			addF("paraphrase", draft("triage", 0.8, rat, "", claim(fmt.Sprintf("Weighs %s kg (%.0f lbs) as of %s.", fmtv(wt.Value), f64(wt.Value)/0.45359237, tm.Format("January 2006")), wt.Ref)))
		}
		if okHb && okHct {
			addF("paraphrase", draft("physician", 0.8, rat, "", claim(fmt.Sprintf("Hemoglobin is %s g/dL and hematocrit %s%%.", fmtv(hb.Value), fmtv(hct.Value)), hb.Ref, hct.Ref)))
		}
		addF("reply with timeframe", draft("triage", 0.8, "If symptoms get worse before the call, the patient should call 911.",
			"We received your message. A nurse will call you within 2 business days, or within 24 hours if needed.", claim(p.MessageClaim, msg)))

		// Adversarial drafts.
		if okGlu {
			addA("invented lab value", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Glucose was 312 mg/dL on %s.", glu.Date), glu.Ref)))
			addA("right value wrong unit", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Glucose %s mmol/L.", fmtv(glu.Value)), glu.Ref)))
			addA("wrong date", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Glucose was %s mg/dL on %s.", fmtv(glu.Value), shiftDate(glu.Date, 1)), glu.Ref)))
			addA("wrong date", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Glucose %s mg/dL (%s).", fmtv(glu.Value), longDate(shiftDate(glu.Date, -31))), glu.Ref)))
			addA("one digit changed", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Glucose was %s mg/dL.", changeDigit(fmtv(glu.Value))), glu.Ref)))
			addA("priority below rule outcome", rules.Stat, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Glucose was %s mg/dL on %s.", fmtv(glu.Value), glu.Date), glu.Ref)))
			d := draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Glucose was %s mg/dL on %s.", fmtv(glu.Value), glu.Date), glu.Ref))
			d.Priority = rules.Urgent
			addA("priority below rule outcome", rules.ASAP, d)
			addA("value cited to the wrong resource", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Glucose %s mg/dL.", fmtv(glu.Value)), msg)))
			addA("confident nonsense", 0, draft("physician", 0.99, "Certain diagnosis; no review needed.", "",
				claim("Patient has atrial fibrillation and a glucose of 45 mg/dL.", glu.Ref)))
		}
		if okWt {
			addA("right value wrong unit", 0, draft("triage", 0.9, rat, "", claim(fmt.Sprintf("Body weight %s lb.", fmtv(wt.Value)), wt.Ref)))
			addA("wrong date", 0, draft("triage", 0.9, rat, "", claim(fmt.Sprintf("Body weight %s kg on %s.", fmtv(wt.Value), usDate(shiftDate(wt.Date, 365))), wt.Ref)))
		}
		if okHb {
			addA("right value wrong unit", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Hemoglobin %s mg/dL.", fmtv(hb.Value)), hb.Ref)))
			addA("invented lab value", 0, draft("physician", 0.9, rat, "", claim("Hemoglobin 6.2 g/dL, critically low.", hb.Ref)))
		}
		if okK {
			addA("right value wrong analyte", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Sodium %s mmol/L.", fmtv(k.Value)), k.Ref)))
		}
		if okGlu {
			addA("right value wrong analyte", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Potassium %s mg/dL, dated %s.", fmtv(glu.Value), glu.Date), glu.Ref)))
		}
		if okK {
			addA("one digit changed", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Potassium %s mmol/L.", changeDigit(fmtv(k.Value))), k.Ref)))
		}
		if okBP {
			sys, dia := bp.Components["Systolic Blood Pressure"], bp.Components["Diastolic Blood Pressure"]
			addA("one digit changed", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Blood pressure %.0f/%.0f mmHg.", f64(sys)+10, f64(dia)), bp.Ref)))
			addA("right value wrong unit", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Systolic pressure %s mg/dL.", fmtv(sys)), bp.Ref)))
		}
		if okCr {
			addA("right value wrong unit", 0, draft("physician", 0.9, rat, "", claim(fmt.Sprintf("Creatinine %s umol/L.", fmtv(cr.Value)), cr.Ref)))
		}
		addA("invented medication", 0, draft("pharmacy", 0.9, rat, "", claim("Patient is taking warfarin for anticoagulation.", msg)))
		addA("invented medication", 0, draft("pharmacy", 0.9, rat, "", claim("Currently prescribed Zentravix 40 mg daily.", msg)))
		if okMed {
			addA("invented medication dose", 0, draft("pharmacy", 0.9, rat, "", claim(fmt.Sprintf("Active prescription: %s.", changeDigit(med.Text)), med.Ref)))
		} else {
			addA("invented medication", 0, draft("pharmacy", 0.9, rat, "", claim("Active prescription for Amoxicillin 500 MG.", msg)))
		}
		addA("invented medication", 0, draft("pharmacy", 0.9, "Continue metformin and lisinopril as before.", "", claim(p.MessageClaim, msg)))
		addA("cites a missing resource", 0, draft("triage", 0.9, rat, "", claim(p.MessageClaim, "Communication/not-in-snapshot")))
		addA("cites a missing resource", 0, draft("triage", 0.9, rat, "", claim(p.MessageClaim, "R7")))
		addA("cites a missing resource", 0, draft("triage", 0.9, rat, "", claim(p.MessageClaim, snap.Trigger.Ref().Unversioned().String()+"/_history/9")))
		addA("missing evidence", 0, draft("triage", 0.9, rat, "", claim(p.MessageClaim)))
		addA("confident nonsense", 0, draft("triage", 0.99, "Obvious case.", "", claim("Troponin 2.5 ng/mL confirms myocardial infarction.", msg)))
		addA("confident nonsense", 0, draft("triage", 0.98, "Known condition.", "", claim("Long-standing chronic kidney disease since 2003.", msg, pat)))
		addA("reply dosing instructions", 0, draft("pharmacy", 0.9, rat, "Please increase your dose to 50 mg twice daily until we see you.", claim(p.MessageClaim, msg)))
		addA("reply dosing instructions", 0, draft("pharmacy", 0.9, rat, "You can take 2 tablets every 6 hours for the symptoms.", claim(p.MessageClaim, msg)))
		addA("reply diagnosis absent", 0, draft("triage", 0.9, rat, "Your results show that you have diabetes; we will discuss treatment.", claim(p.MessageClaim, msg)))
		addA("rationale invented value", 0, draft("physician", 0.9, "Potassium 7.9 mmol/L requires urgent review.", "", claim(p.MessageClaim, msg)))
		addA("wrong age", 0, draft("triage", 0.9, rat, "", claim(fmt.Sprintf("%d-year-old patient.", age+15), pat)))
		if okCond {
			y, _ := strconv.Atoi(cond.Date[:4])
			addA("wrong date", 0, draft("triage", 0.9, rat, "", claim(fmt.Sprintf("%s first recorded in %d.", cond.Text, y+3), cond.Ref)))
			addA("invented condition", 0, draft("triage", 0.9, rat, "", claim("History of congestive heart failure.", cond.Ref)))
		}
	}
	return faithful, adversarial
}

func birthDate(snap *fhir.Snapshot) string {
	var p struct {
		BirthDate string `json:"birthDate"`
	}
	_ = jsonUnmarshal(snap.Patient.Raw, &p)
	return p.BirthDate
}
