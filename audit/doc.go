// Package audit is Vigil's tamper-evident audit trail (GitHub issue 5).
//
// Every access to PHI, every change and every decision is recorded as an
// Event: who (actor, role, client, on behalf of whom), when (UTC plus a
// per-tenant sequence number), what (patient and resource references), the
// action (create, read, update, delete, execute plus a specific verb), the
// outcome, from where (source IP, user agent), why (purpose of use), the
// request id and, for triage decisions, the decision id that links the entry
// to its full decision record.
//
// # Chain
//
// Each tenant has its own hash chain: hash = sha256(prev_hash || canonical
// bytes), genesis prev_hash is 32 zero bytes, and the canonical bytes are the
// versioned encoding documented on EncodeCanonical (enc_version 1). Append
// writes an event inside the caller's transaction, so a change and its audit
// record commit together, and a read whose audit record cannot be written is
// not answered (ReadAudited). Appends that need not share a transaction go
// through Writer, a group-commit writer (one chain head lock, many events per
// transaction).
//
// The app role may only INSERT and SELECT audit rows; triggers reject UPDATE,
// DELETE and TRUNCATE. Signed checkpoints (ed25519 over tenant, count, head
// hash and time) anchor the chain, so even a superuser who rewrites the whole
// chain with fresh hashes is caught by Verify against an exported checkpoint.
//
// # Tables
//
// Tenant tables (tenant_id, row-level security forced): audit_events
// (partitioned by month, see EnsurePartitions), audit_heads (one chain head per
// tenant), audit_checkpoints, audit_checkpoint_exports, audit_legal_holds,
// audit_retention_marks and audit_alerts. One global table:
// audit_retention_log (partition drop decisions; a partition spans tenants).
// The app role may INSERT and SELECT; it may UPDATE only audit_heads and
// audit_legal_holds.released_at. Triggers reject UPDATE, DELETE and TRUNCATE on
// the append-only tables for everyone.
//
// # Detail conventions
//
// Producers put in Detail what the detectors and Disclosures read:
// DetailCareTeam (bool), DetailVia ("role", "care_team", "break_glass"),
// DetailBreakGlass (bool), DetailCount (records read or exported) and
// DetailRecipient (an external recipient of the data).
//
// # PHI
//
// Audit rows are PHI-protected: they hold patient references ("Patient/123"),
// resource references, actors and network addresses. They never hold clinical
// free text: Detail carries ids, codes, counts, rule ids and hashes only.
// Errors and logs name tenants and sequence numbers, never patients.
//
// # Imports
//
// audit imports store (tenant-scoped transactions) and nothing else of ours; it
// never imports River: the periodic jobs (WriteCheckpoint, DropExpiredPartitions,
// ScanAnomalies) are plain functions that workers wrap.
package audit
