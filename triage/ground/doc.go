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
//     precision;
//   - every date (2019-03-04, 03/04/2019, March 4, 2019, 4 March 2019, and
//     month or year alone) equals a date of a cited resource;
//   - every medication (the snapshot's own medication names plus a built-in
//     list of common drugs, and any "<name> <dose> mg" pattern) and every
//     condition (the snapshot's Conditions plus a built-in list of common
//     diagnoses) mentioned is in the record;
//   - the rationale and the reply are held to the same facts against the
//     whole snapshot, and the reply may not contain dosing instructions;
//   - the draft's priority is not below the rules' outcome (Options.RuleFloor).
//
// The outcome is stored per claim (ClaimResult) for the reviewer; any
// problem makes the draft ungrounded, and the pipeline routes it to
// MANUAL_TRIAGE. EffectiveConfidence combines the model's self-reported
// confidence with the verification and the rule signals.
//
// Imports: the standard library and Vigil's fhir, rules and llm packages.
//
// PHI: snapshots and drafts are PHI, and so are the Problems this package
// writes (they quote the draft's mismatched values so a reviewer can see
// them). Store them with the decision (sealed); never log them or put them in
// errors. Verify does no I/O and takes no clock (Options.Now is data).
package ground
