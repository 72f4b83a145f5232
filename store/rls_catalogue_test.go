package store_test

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-health/vigil/internal/testdb"
	"github.com/vigil-health/vigil/migrations"
	"github.com/vigil-health/vigil/store"
)

// globalTables are the tables that hold no tenant's data, so they have no
// row-level security: the tenant registry, the migration ledger, the shared
// rate-limit counters (HMACed keys) and audit's retention log (a partition
// spans tenants; see migrations/0002_audit.sql). Keep this list short: every
// entry is a table any tenant's request can reach.
var globalTables = []string{"tenants", "schema_migrations", "rate_limits", "audit_retention_log"}

// rlsProblem is one finding of checkRLS.
type rlsProblem struct {
	Table  string
	Reason string
}

func (p rlsProblem) String() string { return p.Table + ": " + p.Reason }

// tenantPredicate matches tenant_id = current_setting('vigil.tenant_id', true)
// (either side first) once whitespace, parentheses and ::text casts are removed.
var tenantPredicate = regexp.MustCompile(`^(tenant_id=current_setting\('vigil\.tenant_id',true\)|current_setting\('vigil\.tenant_id',true\)=tenant_id)$`)

func comparesTenant(expr *string) bool {
	if expr == nil {
		return false
	}
	s := strings.NewReplacer(" ", "", "\n", "", "\t", "", "(", "", ")", "", "::text", "").Replace(*expr)
	// Parentheses were stripped, so put the call's back for the pattern.
	s = strings.Replace(s, "current_setting'vigil.tenant_id',true", "current_setting('vigil.tenant_id',true)", 1)
	return tenantPredicate.MatchString(s)
}

// checkRLS lists, from the catalogue, every table, view and partition in the
// app's schemas (all but river, pg_* and information_schema) and reports each
// that is not protected: a tenant table needs RLS enabled and forced, and
// every permissive policy that applies to the app role must compare tenant_id
// with current_setting('vigil.tenant_id', true) in USING and in WITH CHECK
// (a USING (true) policy, or an extra permissive one, opens the table). A
// partition without its own RLS passes only if the app role has no privilege
// on it (queries go through the parent's policy). A view passes only with
// security_invoker or no app privilege. Global tables are exempt.
func checkRLS(ctx context.Context, q store.Querier, appRole string, global []string) ([]rlsProblem, error) {
	rows, err := q.Query(ctx, `
		SELECT n.nspname || '.' || c.relname, c.relname, c.relkind::text, c.relrowsecurity, c.relforcerowsecurity, c.relispartition,
		       EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id' AND NOT a.attisdropped),
		       has_table_privilege($1::name, c.oid, 'SELECT') OR has_table_privilege($1::name, c.oid, 'INSERT')
		         OR has_table_privilege($1::name, c.oid, 'UPDATE') OR has_table_privilege($1::name, c.oid, 'DELETE'),
		       coalesce('security_invoker=true' = ANY (c.reloptions) OR 'security_invoker=on' = ANY (c.reloptions), false)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f')
		  AND n.nspname NOT IN ('information_schema', $2) AND n.nspname NOT LIKE 'pg\_%'
		ORDER BY 1`, appRole, migrations.RiverSchema)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	type rel struct {
		full, name, kind                 string
		rls, force, partition, tenantCol bool
		appPriv, invoker                 bool
	}
	var rels []rel
	for rows.Next() {
		var r rel
		if err := rows.Scan(&r.full, &r.name, &r.kind, &r.rls, &r.force, &r.partition, &r.tenantCol, &r.appPriv, &r.invoker); err != nil {
			rows.Close()
			return nil, err
		}
		rels = append(rels, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var out []rlsProblem
	report := func(r rel, format string, args ...any) {
		out = append(out, rlsProblem{Table: r.full, Reason: fmt.Sprintf(format, args...)})
	}
	for _, r := range rels {
		if slices.Contains(global, r.name) && r.kind != "v" && r.kind != "m" {
			if r.tenantCol {
				report(r, "listed as global but has a tenant_id column")
			}
			continue
		}
		switch r.kind {
		case "v", "m":
			if r.appPriv && (r.kind == "m" || !r.invoker) {
				report(r, "view readable by %s runs with its owner's rights (RLS bypassed)", appRole)
			}
			continue
		case "f":
			if r.appPriv {
				report(r, "foreign table readable by %s", appRole)
			}
			continue
		}
		if r.partition && !r.rls {
			if r.appPriv {
				report(r, "partition without RLS that %s can access directly", appRole)
			}
			continue
		}
		if !r.tenantCol {
			report(r, "no tenant_id column (tenant table) and not in the global list")
		}
		if !r.rls {
			report(r, "row level security not enabled")
		}
		if !r.force {
			report(r, "row level security not forced")
		}
		ps, err := policies(ctx, q, r.full, appRole)
		if err != nil {
			return nil, err
		}
		covered := map[string]bool{}
		for _, p := range ps {
			if !p.permissive {
				continue // restrictive policies only narrow
			}
			if p.cmd != "INSERT" && !comparesTenant(p.qual) {
				report(r, "policy %s (%s) USING does not compare tenant_id with vigil.tenant_id", p.name, p.cmd)
			}
			check := p.withCheck
			if check == nil && p.cmd != "INSERT" {
				check = p.qual // PostgreSQL applies USING when WITH CHECK is absent
			}
			if (p.cmd == "ALL" || p.cmd == "INSERT" || p.cmd == "UPDATE") && !comparesTenant(check) {
				report(r, "policy %s (%s) WITH CHECK does not compare tenant_id with vigil.tenant_id", p.name, p.cmd)
			}
			if p.cmd == "ALL" {
				for _, c := range []string{"SELECT", "INSERT", "UPDATE", "DELETE"} {
					covered[c] = true
				}
			}
			covered[p.cmd] = true
		}
		if len(ps) == 0 {
			report(r, "no policy applies to %s", appRole)
		} else if !covered["SELECT"] || !covered["INSERT"] {
			report(r, "no permissive policy for SELECT and INSERT")
		}
	}
	return out, nil
}

type policy struct {
	name, cmd       string
	permissive      bool
	qual, withCheck *string
}

// policies returns the policies on table that apply to role (directly or via PUBLIC).
func policies(ctx context.Context, q store.Querier, table, role string) ([]policy, error) {
	rows, err := q.Query(ctx, `
		SELECT p.polname, CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' ELSE 'ALL' END,
		       p.polpermissive, pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid)
		FROM pg_policy p
		WHERE p.polrelid = $1::regclass
		  AND (0 = ANY (p.polroles) OR (SELECT oid FROM pg_roles WHERE rolname = $2) = ANY (p.polroles)
		       OR EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = ANY (p.polroles) AND pg_has_role($2::name, r.oid, 'MEMBER')))
		ORDER BY 1`, table, role)
	if err != nil {
		return nil, fmt.Errorf("policies of %s: %w", table, err)
	}
	defer rows.Close()
	var out []policy
	for rows.Next() {
		var p policy
		if err := rows.Scan(&p.name, &p.cmd, &p.permissive, &p.qual, &p.withCheck); err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func setupRLS(t *testing.T) (*testdb.DB, context.Context) {
	t.Helper()
	return testdb.New(t), context.Background()
}

func TestRLSCatalogueEveryTenantTableIsProtected(t *testing.T) {
	t.Parallel()
	db, ctx := setupRLS(t)
	problems, err := checkRLS(ctx, db.Owner, migrations.AppRole, globalTables)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("unprotected: %s", p)
	}
	// The check saw the tables it is about (an empty catalogue query would pass vacuously).
	var n int
	if err := db.Owner.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relname = ANY ($1) AND relrowsecurity AND relforcerowsecurity`,
		[]string{"decisions", "review_items", "audit_events", "break_glass_grants", "intake_events"}).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 5 {
		t.Fatalf("%d of 5 known tenant tables found protected in the catalogue", n)
	}
}

// The checker itself is tested: each way of leaving a table open is reported.
func TestRLSCatalogueCheckerReportsUnprotectedTables(t *testing.T) {
	t.Parallel()
	db, ctx := setupRLS(t)
	stmts := []string{
		// No RLS at all.
		`CREATE TABLE scratch_open (tenant_id text NOT NULL, note text)`,
		// Enabled but not forced.
		`CREATE TABLE scratch_unforced (tenant_id text NOT NULL)`,
		`ALTER TABLE scratch_unforced ENABLE ROW LEVEL SECURITY`,
		`CREATE POLICY p ON scratch_unforced USING (tenant_id = current_setting('vigil.tenant_id', true)) WITH CHECK (tenant_id = current_setting('vigil.tenant_id', true))`,
		// Enabled and forced, but USING (true).
		`CREATE TABLE scratch_true (tenant_id text NOT NULL)`,
		`ALTER TABLE scratch_true ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE scratch_true FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY p ON scratch_true USING (true) WITH CHECK (tenant_id = current_setting('vigil.tenant_id', true))`,
		// Good USING, open WITH CHECK.
		`CREATE TABLE scratch_check (tenant_id text NOT NULL)`,
		`ALTER TABLE scratch_check ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE scratch_check FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY p ON scratch_check USING (tenant_id = current_setting('vigil.tenant_id', true)) WITH CHECK (true)`,
		// A good policy plus a second permissive one that ORs the table open.
		`CREATE TABLE scratch_extra (tenant_id text NOT NULL)`,
		`ALTER TABLE scratch_extra ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE scratch_extra FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY p ON scratch_extra USING (tenant_id = current_setting('vigil.tenant_id', true)) WITH CHECK (tenant_id = current_setting('vigil.tenant_id', true))`,
		`CREATE POLICY q ON scratch_extra FOR SELECT USING (current_setting('vigil.tenant_id', true) IS NULL)`,
		// Forced with no policy (denies everything, but it is a mistake worth naming).
		`CREATE TABLE scratch_nopolicy (tenant_id text NOT NULL)`,
		`ALTER TABLE scratch_nopolicy ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE scratch_nopolicy FORCE ROW LEVEL SECURITY`,
		// Compares another setting.
		`CREATE TABLE scratch_wrongsetting (tenant_id text NOT NULL)`,
		`ALTER TABLE scratch_wrongsetting ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE scratch_wrongsetting FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY p ON scratch_wrongsetting USING (tenant_id = current_setting('app.tenant', true)) WITH CHECK (tenant_id = current_setting('app.tenant', true))`,
		// A view the app may read, owned by the owner: RLS of decisions bypassed.
		`CREATE VIEW scratch_view AS SELECT tenant_id, id FROM decisions`,
		`GRANT SELECT ON scratch_view TO ` + migrations.AppRole,
		// In another app schema.
		`CREATE SCHEMA scratch`,
		`CREATE TABLE scratch.other (tenant_id text)`,
		// A properly protected table: must not be reported.
		`CREATE TABLE scratch_ok (tenant_id text NOT NULL)`,
		`ALTER TABLE scratch_ok ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE scratch_ok FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY p ON scratch_ok USING (current_setting('vigil.tenant_id', true) = tenant_id) WITH CHECK (tenant_id = current_setting('vigil.tenant_id', true))`,
	}
	for _, s := range stmts {
		if _, err := db.Owner.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
	problems, err := checkRLS(ctx, db.Owner, migrations.AppRole, globalTables)
	if err != nil {
		t.Fatal(err)
	}
	byTable := map[string][]string{}
	for _, p := range problems {
		byTable[p.Table] = append(byTable[p.Table], p.Reason)
	}
	for table, want := range map[string]string{
		"public.scratch_open":         "not enabled",
		"public.scratch_unforced":     "not forced",
		"public.scratch_true":         "USING does not compare",
		"public.scratch_check":        "WITH CHECK does not compare",
		"public.scratch_extra":        "policy q (SELECT) USING",
		"public.scratch_nopolicy":     "no policy",
		"public.scratch_wrongsetting": "USING does not compare",
		"public.scratch_view":         "view readable",
		"scratch.other":               "not enabled",
	} {
		if !strings.Contains(strings.Join(byTable[table], "; "), want) {
			t.Errorf("%s: findings %q, want one containing %q", table, byTable[table], want)
		}
	}
	if got := byTable["public.scratch_ok"]; len(got) > 0 {
		t.Errorf("protected table reported: %q", got)
	}
	// The migrated tables are still clean beside the scratch ones.
	for table := range byTable {
		if !strings.Contains(table, "scratch") {
			t.Errorf("migrated table reported: %s %q", table, byTable[table])
		}
	}
}

// The app role owns nothing, cannot bypass RLS, and sees no tenant rows
// unless the transaction's tenant is set (and then only that tenant's).
func TestRLSCatalogueAppRole(t *testing.T) {
	t.Parallel()
	db, ctx := setupRLS(t)
	var super, bypass, createRole, createDB bool
	if err := db.Owner.QueryRow(ctx, `SELECT rolsuper, rolbypassrls, rolcreaterole, rolcreatedb FROM pg_roles WHERE rolname = $1`,
		migrations.AppRole).Scan(&super, &bypass, &createRole, &createDB); err != nil {
		t.Fatal(err)
	}
	if super || bypass || createRole || createDB {
		t.Fatalf("%s: superuser=%v bypassrls=%v createrole=%v createdb=%v, want none", migrations.AppRole, super, bypass, createRole, createDB)
	}
	var owned []string
	rows, err := db.Owner.Query(ctx, `
		SELECT 'relation ' || relname FROM pg_class WHERE relowner = (SELECT oid FROM pg_roles WHERE rolname = $1)
		UNION ALL SELECT 'schema ' || nspname FROM pg_namespace WHERE nspowner = (SELECT oid FROM pg_roles WHERE rolname = $1)
		UNION ALL SELECT 'function ' || proname FROM pg_proc WHERE proowner = (SELECT oid FROM pg_roles WHERE rolname = $1)
		UNION ALL SELECT 'type ' || typname FROM pg_type WHERE typowner = (SELECT oid FROM pg_roles WHERE rolname = $1)
		UNION ALL SELECT 'database ' || datname FROM pg_database WHERE datdba = (SELECT oid FROM pg_roles WHERE rolname = $1)`, migrations.AppRole)
	if err != nil {
		t.Fatal(err)
	}
	owned, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	if len(owned) > 0 {
		t.Fatalf("%s owns %v (an owner is exempt from non-forced RLS and may alter policies)", migrations.AppRole, owned)
	}
	// The app role may not write the registry.
	var writeTenants bool
	if err := db.Owner.QueryRow(ctx, `SELECT has_table_privilege($1, 'tenants', 'INSERT') OR has_table_privilege($1, 'tenants', 'UPDATE') OR has_table_privilege($1, 'tenants', 'DELETE')`,
		migrations.AppRole).Scan(&writeTenants); err != nil {
		t.Fatal(err)
	}
	if writeTenants {
		t.Error("the app role may write the tenant registry")
	}

	for _, id := range []string{"rls-a", "rls-b"} {
		if err := store.PutTenant(ctx, db.Owner, &store.Tenant{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := db.Owner.Exec(ctx, `INSERT INTO care_team_members (tenant_id, patient_ref, subject, since) VALUES ('rls-a', 'Patient/p1', 'dr-a', now())`); err != nil {
		t.Fatal(err)
	}
	countAs := func(tenant string) (int, error) {
		var n int
		run := func(tx pgx.Tx) error {
			return tx.QueryRow(ctx, `SELECT count(*) FROM care_team_members`).Scan(&n)
		}
		if tenant == "" {
			return n, db.App.Global(ctx, run)
		}
		return n, db.App.InTenant(ctx, tenant, run)
	}
	for tenant, want := range map[string]int{"": 0, "rls-b": 0, "rls-a": 1} {
		n, err := countAs(tenant)
		if err != nil {
			t.Fatalf("tenant %q: %v", tenant, err)
		}
		if n != want {
			t.Errorf("app role with tenant %q sees %d rows, want %d", tenant, n, want)
		}
	}
	// A plain connection of the app role (no transaction helper at all) sees nothing either.
	pool, err := pgxpool.New(ctx, db.AppURL)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM care_team_members`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("app role without a tenant setting reads %d rows", n)
	}
	// Writing another tenant's row is refused by WITH CHECK.
	err = db.App.InTenant(ctx, "rls-b", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO care_team_members (tenant_id, patient_ref, subject, since) VALUES ('rls-a', 'Patient/p2', 'dr-b', now())`)
		return err
	})
	if err == nil {
		t.Error("app role in tenant rls-b inserted a row for rls-a")
	}
	// A partition of the audit table is not reachable directly.
	err = db.App.InTenant(ctx, "rls-a", func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `SELECT count(*) FROM audit_events_default`)
		return err
	})
	if err == nil {
		t.Error("app role reads an audit partition directly (bypassing the parent's policy)")
	}
}
