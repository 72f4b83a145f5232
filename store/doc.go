// Package store hands out PostgreSQL transactions scoped to one tenant.
//
// Every tenant table has row-level security keyed on the transaction-local
// setting vigil.tenant_id; InTenant is the one place that sets it, with
// set_config(..., true), so a connection returned to the pool carries no
// tenant. The service connects as migrations.AppRole, which owns nothing and
// cannot bypass RLS.
//
// It imports nothing of ours but migrations (for the role name) and holds no PHI itself.
package store
