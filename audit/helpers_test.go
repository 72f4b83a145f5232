package audit_test

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/internal/testdb"
)

type testBundle struct {
	db  *testdb.DB
	ctx context.Context
}

func setup(t testing.TB, tenants ...string) *testBundle {
	t.Helper()
	db := testdb.New(t)
	ctx := context.Background()
	for _, tn := range tenants {
		if _, err := db.Owner.Exec(ctx, `INSERT INTO tenants (id, name, config) VALUES ($1, $1, '{}')`, tn); err != nil {
			t.Fatalf("create tenant: %v", err)
		}
	}
	return &testBundle{db: db, ctx: ctx}
}

var t0 = time.Date(2026, 11, 3, 9, 0, 0, 0, time.UTC)

func sampleEvent(tenant string, i int) audit.Event {
	return audit.Event{
		TenantID:   tenant,
		OccurredAt: t0.Add(time.Duration(i) * time.Second),
		Actor:      fmt.Sprintf("user-%d", i%3),
		ActorRole:  "nurse",
		ClientID:   "vigil-web",
		Action:     audit.ActionRead,
		Verb:       "review.read",
		Outcome:    audit.OutcomeSuccess,
		PatientRef: fmt.Sprintf("Patient/%d", i%5),
		Resources:  []string{fmt.Sprintf("Observation/%d/_history/1", i)},
		SourceIP:   "10.0.0.7",
		UserAgent:  "Mozilla/5.0",
		Purpose:    "TREAT",
		RequestID:  fmt.Sprintf("req-%d", i),
		Detail:     map[string]any{"count": i, "rule_ids": []string{"k.critical"}, "ratio": 1.5e-7, "big": 1e21},
	}
}

// appendN appends n sample events for tenant, one transaction each, as the app role.
func (b *testBundle) appendN(t testing.TB, tenant string, n int) []audit.Appended {
	t.Helper()
	var out []audit.Appended
	for i := 0; i < n; i++ {
		err := b.db.App.InTenant(b.ctx, tenant, func(tx pgx.Tx) error {
			a, err := audit.Append(b.ctx, tx, sampleEvent(tenant, i))
			out = append(out, a)
			return err
		})
		if err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	return out
}

// superuser runs stmts as the owner with user triggers off (a superuser tampering).
func (b *testBundle) superuser(t testing.TB, stmts ...string) {
	t.Helper()
	err := pgx.BeginFunc(b.ctx, b.db.Owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(b.ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		for _, s := range stmts {
			if _, err := tx.Exec(b.ctx, s); err != nil {
				return fmt.Errorf("%s: %w", s, err)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("tamper: %v", err)
	}
}

func ed25519Key() (ed25519.PublicKey, ed25519.PrivateKey, error) { return ed25519.GenerateKey(nil) }

// tenantReport picks one tenant's report (the registry also holds a "system" tenant).
func tenantReport(t testing.TB, rep *audit.Report, tenant string) audit.TenantReport {
	t.Helper()
	if rep == nil {
		t.Fatalf("no report for %s", tenant)
	}
	for _, tr := range rep.Tenants {
		if tr.TenantID == tenant {
			return tr
		}
	}
	t.Fatalf("no report for %s in %+v", tenant, rep.Tenants)
	return audit.TenantReport{}
}
