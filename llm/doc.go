// Package llm drafts triage suggestions with a language model, or without one.
//
// A Drafter turns a pinned FHIR snapshot into a Draft: a priority, a route
// from the tenant's queues, a rationale, claims that cite the resources they
// rest on, a self-reported confidence and an optional patient reply. A draft
// is only ever a suggestion: package triage/ground verifies every claim
// against the snapshot, and the rules own every safety-critical outcome.
//
// Two drafters are provided:
//
//   - OpenAI, for any OpenAI-compatible chat completions endpoint (OpenAI,
//     Azure OpenAI, vLLM, Ollama, llama.cpp server) through
//     github.com/sashabaranov/go-openai, with structured output, a per-call
//     deadline, retries with backoff honouring Retry-After, and a circuit
//     breaker;
//   - Baseline, a deterministic drafter used when no model is configured or
//     the model is unavailable.
//
// Minimum necessary: the prompt is built from a reduced view of the snapshot
// (see BuildPrompt). The Patient resource is never sent (only an age in years
// and the administrative gender); free text is passed through Redact, which
// removes the patient's names, identifiers (MRN, SSN, …), telecom values,
// address parts and birth date, plus generic phone, e-mail, SSN and MRN-like
// patterns; resources carrying a meta.security code the tenant excludes
// (for example 42 CFR Part 2 substance-use data) are not sent at all; and
// resource ids are replaced by per-decision pseudonyms ("R1", "R2", …) that
// are mapped back to pinned references in the returned draft.
//
// Imports: the standard library, go-openai, and Vigil's fhir and rules
// packages (both leaves). It does not import triage.
//
// PHI: prompts, request bodies and model responses are PHI. They are kept in
// CallRecord so the caller can seal them, and must never be logged or put in
// error messages. Errors from this package name the operation, HTTP statuses
// and stable reasons only.
package llm
