package audit_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/vigil-health/vigil/audit"
)

func sqlState(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// scratch creates a table the app role may write, standing in for "a change".
func (b *testBundle) scratch(t *testing.T) {
	t.Helper()
	for _, s := range []string{
		`CREATE TABLE scratch (tenant_id text NOT NULL, v int NOT NULL)`,
		`GRANT SELECT, INSERT ON scratch TO vigil_app`,
	} {
		if _, err := b.db.Owner.Exec(b.ctx, s); err != nil {
			t.Fatal(err)
		}
	}
}

func (b *testBundle) scratchCount(t *testing.T) int {
	t.Helper()
	var n int
	if err := b.db.Owner.QueryRow(b.ctx, `SELECT count(*) FROM scratch`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestFailClosed(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		break_ []string
		state  string
	}{
		{"insert revoked", []string{`REVOKE INSERT ON audit_events FROM vigil_app`}, "42501"},
		{"disk full", []string{
			`CREATE FUNCTION disk_full() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'could not extend file' USING ERRCODE = '53100'; END $$`,
			`CREATE TRIGGER disk_full BEFORE INSERT ON audit_events FOR EACH ROW EXECUTE FUNCTION disk_full()`,
		}, "53100"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, "t1")
			b.scratch(t)
			b.appendN(t, "t1", 2) // the head row exists: the failure is the audit row itself
			for _, s := range tt.break_ {
				if _, err := b.db.Owner.Exec(b.ctx, s); err != nil {
					t.Fatal(err)
				}
			}

			// A change and its audit record commit together or not at all.
			err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
				if _, err := tx.Exec(b.ctx, `INSERT INTO scratch VALUES ('t1', 1)`); err != nil {
					return err
				}
				_, err := audit.Append(b.ctx, tx, sampleEvent("t1", 3))
				return err
			})
			if err == nil || sqlState(err) != tt.state {
				t.Fatalf("change: err = %v, want SQLSTATE %s", err, tt.state)
			}
			if n := b.scratchCount(t); n != 0 {
				t.Fatalf("change committed without its audit record (%d rows)", n)
			}

			// A read whose audit record cannot be written is not answered.
			answered := false
			err = audit.ReadAudited(b.ctx, b.db.App, sampleEvent("t1", 4), func(tx pgx.Tx) error {
				answered = true
				return nil
			})
			if err == nil || sqlState(err) != tt.state || answered {
				t.Fatalf("read: err = %v, answered = %v", err, answered)
			}

			// The chain is intact.
			if rep, err := audit.Verify(b.ctx, b.db.Owner, audit.VerifyOptions{}); err != nil || tenantReport(t, rep, "t1").Checked != 2 {
				t.Fatalf("verify: %v %v", rep, err)
			}
		})
	}
}

func TestReadAuditedCommits(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1")
	var got int
	err := audit.ReadAudited(b.ctx, b.db.App, sampleEvent("t1", 1), func(tx pgx.Tx) error {
		return tx.QueryRow(b.ctx, `SELECT count(*) FROM audit_events`).Scan(&got)
	})
	if err != nil || got != 1 {
		t.Fatalf("got %d, %v", got, err)
	}
}

func TestImmutability(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1")
	b.appendN(t, "t1", 3)
	var part string
	if err := b.db.Owner.QueryRow(b.ctx, `SELECT tableoid::regclass::text FROM audit_events LIMIT 1`).Scan(&part); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		sql  string
	}{
		{"update", `UPDATE audit_events SET actor = 'mallory' WHERE seq = 2`},
		{"delete", `DELETE FROM audit_events WHERE seq = 2`},
		{"truncate", `TRUNCATE audit_events`},
		{"truncate partition", `TRUNCATE ` + part},
		{"truncate default partition", `TRUNCATE audit_events_default`},
		{"update partition", `UPDATE ` + part + ` SET actor = 'mallory'`},
		{"delete partition", `DELETE FROM ` + part},
		{"insert partition", `INSERT INTO ` + part + ` SELECT * FROM ` + part},
		{"drop partition", `DROP TABLE ` + part},
		{"detach partition", `ALTER TABLE audit_events DETACH PARTITION ` + part},
		{"create partition", `CREATE TABLE audit_events_y2031m01 PARTITION OF audit_events FOR VALUES FROM ('2031-01-01') TO ('2031-02-01')`},
		{"create partition function", `SELECT audit_create_partition('2031-01-01')`},
		{"drop partition function", `SELECT audit_drop_partition('` + part + `', now())`},
		{"update checkpoint", `UPDATE audit_checkpoints SET seq = 0`},
		{"rewind head", `UPDATE audit_heads SET seq = 1`},
		{"rewrite head", `UPDATE audit_heads SET hash = sha256(hash)`},
		{"delete head", `DELETE FROM audit_heads`},
		{"delete alerts", `DELETE FROM audit_alerts`},
	}
	for _, tt := range tests {
		t.Run("app/"+tt.name, func(t *testing.T) {
			err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
				_, err := tx.Exec(b.ctx, tt.sql)
				return err
			})
			if err == nil {
				t.Fatalf("app role ran %q", tt.sql)
			}
			if s := sqlState(err); s != "42501" && s != "42P01" {
				t.Fatalf("app role %q: %v", tt.sql, err)
			}
		})
	}
	// Even the owner is stopped by the triggers (short of switching them off).
	for _, tt := range tests[:7] {
		t.Run("owner/"+tt.name, func(t *testing.T) {
			err := pgx.BeginFunc(context.Background(), b.db.Owner, func(tx pgx.Tx) error {
				_, err := tx.Exec(b.ctx, tt.sql)
				return err
			})
			if err == nil || sqlState(err) != "42501" {
				t.Fatalf("owner %q: err = %v", tt.sql, err)
			}
		})
	}
	if rep, err := audit.Verify(b.ctx, b.db.Owner, audit.VerifyOptions{}); err != nil || tenantReport(t, rep, "t1").Checked != 3 {
		t.Fatalf("verify: %v %v", rep, err)
	}
}
