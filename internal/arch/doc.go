// Package arch holds only tests: the import-direction rules of ARCHITECTURE.md
// (cmd → api, workers → triage → fhir, rules, llm, audit, store; rules and fhir
// import nothing of ours), checked on every package's non-test sources.
package arch
