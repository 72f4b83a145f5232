// Package ground verifies that an LLM draft says nothing the record does not.
//
// Verify checks a draft (package llm) against the pinned FHIR snapshot it
// was drafted from:
//
//   - every claim cites at least one resource, and every citation resolves
//     in the snapshot (fhir.Snapshot.Lookup);
//   - every number with its unit in a claim equals a value of a cited
//     resource after unit normalisation (UCUM synonyms, mass/molar
//     conversions for glucose, cholesterol, triglycerides, creatinine,
//     calcium and urea nitrogen, lb/kg, in/cm, °F/°C); a number without a
//     unit may match any number of the cited resources; a value may be
//     rounded but must keep two significant digits or the resource's own
//     precision; numbers quoted as a reference range ("(ref 3.5–5.1
//     mmol/L)", "[normal range 3.5-5.1]") state nothing about the patient
//     and are not matched (the value before them is);
//   - a blood pressure written as a pair ("142/88", "142 over 88") must match
//     the systolic and the diastolic of one resource, in that order;
//   - a count of results ("2 prior potassium results", "5 BP readings") must
//     equal the number of such Observations in the snapshot (a history
//     longer than the snapshot's window is therefore rejected);
//   - every date (2019-03-04, 03/04/2019, March 4, 2019, 4 March 2019, and
//     month or year alone) equals a date of a cited resource; a day without
//     a year ("Dec 1") must be a cited date within the year before
//     Options.Now; a relative date ("yesterday", "last month", "about 6 weeks
//     ago", "over a year ago") must fall in its window before Options.Now
//     (calendar weeks, months and years for "last …"), unless the cited text
//     says the same words (a paraphrased message); with a zero Now relative
//     dates are not checked. In a claim, a date in the same clause as values
//     must be a date of a resource those values come from. In the rationale
//     and the reply only past relative dates are facts ("call you today" is a
//     plan);
//   - every medication (the snapshot's own medication names plus a built-in
//     list of common drugs with their brand names and abbreviations, e.g.
//     HCTZ for hydrochlorothiazide, EpiPen for epinephrine, and any
//     "<name> <dose> mg" pattern) and every
//     condition (the snapshot's Conditions plus a built-in list of common
//     diagnoses) mentioned is in the record;
//   - the rationale and the reply are held to the same facts against the
//     whole snapshot, and the reply may not contain dosing instructions
//     (doses, frequencies, "double your hydrochlorothiazide", "hold your
//     water pill", "an extra dose"); safety-netting ("call 911 if …") is not
//     dosing;
//   - the draft's priority is not below the rules' outcome (Options.RuleFloor).
//
// The outcome is stored per claim (ClaimResult) for the reviewer; any
// problem makes the draft ungrounded, and the pipeline routes it to
// MANUAL_TRIAGE. EffectiveConfidence combines the model's self-reported
// confidence with the verification and the rule signals.
//
// Imports: the standard library and Vigil's fhir, rules and llm packages.
//
// Performance: a Verifier keeps each resource's extracted facts for as long
// as the *fhir.Resource is alive (weak references, checked against its
// SHA256), so verifying several drafts against one snapshot decodes each
// resource once; nothing outlives the caller's own references.
//
// PHI: snapshots and drafts are PHI, and so are the Problems this package
// writes (they quote the draft's mismatched values so a reviewer can see
// them). Store them with the decision (sealed); never log them or put them in
// errors. Verify does no I/O and takes no clock (Options.Now is data).
package ground
