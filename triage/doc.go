// Package triage is Vigil's domain: intake events, the decision pipeline that
// composes fhir, rules, the llm drafter and the grounding verifier, the pure
// decision function, the decision record ("why"), and the review queue.
//
// Imports: fhir, rules, llm, triage/ground, audit, seal, store. Never River:
// workers drive the pipeline and enqueue through the Enqueuer interface.
//
// PHI: decisions, review items and revisions hold patient references and lab
// values under row-level security; message text, snapshots, prompts, LLM
// output and reply drafts are sealed (package seal) before they are stored.
// Nothing here logs resource content.
package triage
