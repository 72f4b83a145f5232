// Package access decides who may do what in Vigil: bearer-token validation,
// tenant binding, SMART scopes, role- and attribute-based access control,
// break-the-glass grants, care-team membership, minimum-necessary field
// visibility, shared rate limiting and TLS settings.
//
// It imports only store (for tenant transactions) among our packages and
// owns the tables care_team_members, break_glass_grants (tenant tables,
// row-level security) and rate_limits (global; hashed keys, no PHI). It
// touches PHI only as patient references and break-the-glass reasons, which
// it never logs. Nothing here writes audit events: callers do, with the
// reasons this package returns.
//
// # Request flow
//
// The router calls, in order:
//
//  1. Validator.Validate — issuer known, signature by the issuer's JWKS
//     (RS256, ES256, EdDSA only), audience, exp/nbf/iat with bounded skew,
//     maximum lifetime. Failures are *TokenError wrapping ErrInvalidToken
//     (401); TokenError.Reason is safe to audit.
//  2. BindTenant — the token's issuer (and client, where listed) must be
//     bound to the tenant in the registry; otherwise ErrWrongTenant (403).
//  3. HasScope — the endpoint's SMART scope; otherwise ErrInsufficientScope
//     (403, NewScopeError).
//  4. Limiter.Allow — per client; 429 with Retry-After.
//  5. Policy.Decide — RBAC then ABAC; every deny carries a fixed reason.
//  6. VisibleFields — strip the field groups the role may not see.
//
// # Tenant binding
//
// A token acts for a tenant only if its issuer (and client, when the
// tenant's binding lists client ids) is in that tenant's registry entry
// (tenants.config "issuers"). NewRegistryIssuers reads the registry;
// CachedTenantIssuers puts a short TTL cache in front of it; IssuerJWKSURLs
// collects issuer → JWKS URL for ValidatorConfig and rejects an issuer bound
// with two different JWKS URLs.
//
// # Scopes
//
// SMART v2 style ("user/Task.rs"; v1 ".read"/".write" accepted). Contexts
// must match exactly: system/ satisfies only system/ requirements, user/
// only user/, patient/ only patient/. Permissions add up across granted
// scopes, "*" as the type matches any type. See HasScope.
//
// # Roles and actions (RBAC)
//
//	action              physician nurse triage_nurse front_desk quality_auditor privacy_officer admin integration
//	queue.list              ✓       ✓        ✓           ✓            ✓
//	item.read               ✓       ✓        ✓           ✓            ✓
//	item.approve            ✓       ✓        ✓
//	item.edit               ✓       ✓        ✓
//	item.reject             ✓       ✓        ✓
//	item.ack                ✓       ✓        ✓
//	reply.release           ✓       ✓¹       ✓¹
//	decision.explain        ✓       ✓        ✓                        ✓
//	audit.search                                                      ✓              ✓
//	audit.export                                                                     ✓
//	breakglass.request      ✓       ✓        ✓
//	breakglass.review                                                                ✓
//	rules.publish                                                                                    ✓
//	rules.activate                                                                                   ✓
//	intake.post                                                                                             ✓
//	tenant.config                                                                                    ✓
//
//	¹ not when the item has a physician hold: then physician only, and
//	  break-the-glass does not lift the hold.
//
// # Attributes (ABAC)
//
// For queue.list and the patient actions (item.*, reply.release,
// decision.explain):
//
//   - Department: physician, nurse, triage_nurse and front_desk act within
//     their token's "department". For a patient action on another
//     department's item they need care-team membership for the patient, or
//     (clinical roles) an active break-the-glass grant. A principal with no
//     department claim is treated as belonging to no department. Quality
//     auditors are not department-scoped.
//
// Sensitivity labels on the item:
//
//	label                physician  nurse      triage_nurse  front_desk  quality_auditor  others
//	behavioral_health    care team  care team  care team     no          yes (metadata)   no
//	substance_use_part2  care team  care team  no            no          no               no
//	hiv                  care team  care team  care team     no          yes (metadata)   no
//	minor                yes        yes        yes           no          yes (metadata)   no
//
// "care team" means role plus current care-team membership; "no" can be
// overridden only by a clinical role's active break-the-glass grant (for 42
// CFR Part 2 data, the medical-emergency exception). An unknown label
// denies, with no override. "metadata" is what VisibleFields lets the
// auditor see.
//
// A decision records Via: "role", "care_team" or "break_glass".
//
// # Break-the-glass
//
// A clinical role may request a grant to one patient with a reason (trimmed,
// at least 10 characters: not a quality bar, just enough to rule out "x" or
// "urgent" so the privacy officer reviewing every grant has a stated
// justification) for 60 minutes by default, at most 12 hours. The caller
// writes the high-severity audit event and raises the alert in the same
// transaction. Grants cannot be edited or deleted by the app; they expire.
//
// # Minimum necessary (VisibleFields)
//
//	field group      physician/nurse/triage_nurse  front_desk  quality_auditor  quality_auditor+grant  privacy_officer  admin  integration
//	queue_status               ✓                       ✓             ✓                  ✓                    ✓
//	patient_ref                ✓                       ✓                                ✓
//	clinical_values            ✓                                                        ✓
//	message_text               ✓                                                        ✓
//	ai_draft                   ✓                                                        ✓
//	reply_draft                ✓                                                        ✓
//	rule_hits                  ✓                                     ✓                  ✓
//	audit_metadata             ✓                                     ✓                  ✓                    ✓
//
// The server removes the fields; a UI never merely hides them.
//
// # Rate limiting
//
// Limiter keeps sliding-window counters in rate_limits (one upsert per
// request), so all instances share a budget; keys are stored as HMACs.
// Run CleanupRateLimits periodically.
//
// # Transport
//
// ServerTLSConfig: TLS 1.2+, ECDHE with AEAD ciphers only. CheckOutboundURL
// requires https (http only to loopback with the insecure-loopback flag);
// CheckListenAddr allows plaintext only with the development flag on a
// loopback address.
package access
