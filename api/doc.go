// Package api is Vigil's HTTP surface: FHIR event intake, the review queue,
// decision explanations, audit search and break-the-glass, plus /healthz and
// /readyz. Every endpoint is declared once in the registry (Endpoints) with
// its SMART v2 scope and policy action; the router is built from that
// registry, so an endpoint cannot exist without its protection, and the
// security tests iterate the same list.
//
// Requests are authenticated with bearer JWTs (package access), bound to a
// tenant, rate limited, size limited and audited (package audit). Responses
// are filtered per role by the server (minimum necessary). Logs carry the
// request id, route template, status, latency and principal: never bodies,
// query strings or tokens.
//
// Imports: access, audit, triage, store, fhir, rules, seal.
package api
