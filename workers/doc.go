// Package workers runs Vigil's background jobs on River: triage (one job per
// intake event), escalation delivery through the outbox, and the periodic SLA
// re-escalation. Job args carry tenant and row ids only, never PHI; every
// worker sets the tenant from its args, so a job for one tenant cannot touch
// another's rows.
//
// Imports: triage, store, migrations (schema name) and River.
package workers
