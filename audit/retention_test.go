package audit_test

import (
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/migrations"
)

// maintPool connects to the test database as the maintenance role.
func (b *testBundle) maintPool(t *testing.T) *pgxpool.Pool {
	t.Helper()
	u, err := url.Parse(b.db.OwnerURL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.User(migrations.MaintRole)
	p, err := pgxpool.New(b.ctx, u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func (b *testBundle) appendAt(t *testing.T, tenant string, at time.Time) audit.Appended {
	t.Helper()
	var a audit.Appended
	err := b.db.App.InTenant(b.ctx, tenant, func(tx pgx.Tx) error {
		ev := sampleEvent(tenant, 1)
		ev.OccurredAt = at
		var err error
		a, err = audit.Append(b.ctx, tx, ev)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (b *testBundle) partitionOf(t *testing.T, tenant string, seq int64) string {
	t.Helper()
	var p string
	if err := b.db.Owner.QueryRow(b.ctx, `SELECT tableoid::regclass::text FROM audit_events WHERE tenant_id = $1 AND seq = $2`, tenant, seq).Scan(&p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPartitionsMonthBoundary(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1")
	maint := b.maintPool(t)
	now := time.Date(2031, 1, 31, 23, 59, 59, 500000000, time.UTC) // the injected clock
	refused, err := audit.EnsurePartitions(b.ctx, maint, now, 2)
	if err != nil || len(refused) != 0 {
		t.Fatalf("ensure: %v %v", refused, err)
	}
	if _, err := audit.EnsurePartitions(b.ctx, maint, now, 2); err != nil {
		t.Fatalf("ensure is not idempotent: %v", err)
	}
	b.appendAt(t, "t1", now)
	now = now.Add(time.Second) // crosses into February
	b.appendAt(t, "t1", now)
	if p1, p2 := b.partitionOf(t, "t1", 1), b.partitionOf(t, "t1", 2); p1 != "audit_events_y2031m01" || p2 != "audit_events_y2031m02" {
		t.Fatalf("partitions = %s, %s", p1, p2)
	}

	// A month nobody created still takes events (default partition); creating it later is refused, not fatal.
	late := time.Date(2035, 7, 4, 12, 0, 0, 0, time.UTC)
	b.appendAt(t, "t1", late)
	if p := b.partitionOf(t, "t1", 3); p != "audit_events_default" {
		t.Fatalf("partition = %s", p)
	}
	refused, err = audit.EnsurePartitions(b.ctx, maint, late, 1)
	if err != nil || len(refused) != 1 || !refused[0].Equal(time.Date(2035, 7, 1, 0, 0, 0, 0, time.UTC)) {
		t.Fatalf("ensure over default rows: %v %v", refused, err)
	}
	if rep, err := audit.Verify(b.ctx, b.db.Owner, audit.VerifyOptions{}); err != nil || tenantReport(t, rep, "t1").Checked != 3 {
		t.Fatalf("verify: %+v %v", rep.Tenants, err)
	}

	// The app role can neither create nor drop partitions.
	_, err = audit.EnsurePartitions(b.ctx, b.db.App.Pool(), now, 12)
	if sqlState(err) != "42501" {
		t.Fatalf("app created partitions: %v", err)
	}
	_, err = audit.DropExpiredPartitions(b.ctx, b.db.App.Pool(), now.AddDate(10, 0, 0), audit.RetentionPolicy{})
	if sqlState(err) != "42501" {
		t.Fatalf("app listed/dropped partitions: %v", err)
	}
}

func TestRetention(t *testing.T) {
	t.Parallel()
	b := setup(t, "t1", "t2")
	maint := b.maintPool(t)
	jan := time.Date(2019, 1, 15, 10, 0, 0, 0, time.UTC)
	if _, err := audit.EnsurePartitions(b.ctx, maint, jan, 1); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		b.appendAt(t, "t1", jan.Add(time.Duration(i)*time.Hour))
	}
	b.appendAt(t, "t2", jan)
	for i := 0; i < 2; i++ {
		b.appendAt(t, "t1", jan.AddDate(0, 1, 0).Add(time.Duration(i)*time.Hour))
	}
	b.appendAt(t, "t1", t0)
	b.appendAt(t, "t2", t0)

	now := time.Now()
	drop := func(t *testing.T) map[string]string {
		t.Helper()
		rep, err := audit.DropExpiredPartitions(b.ctx, maint, now, audit.RetentionPolicy{})
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]string{}
		for _, d := range rep.Decisions {
			got[d.Partition] = d.Reason
		}
		return got
	}
	const m1, m2 = "audit_events_y2019m01", "audit_events_y2019m02"

	// No checkpoint exported: nothing goes.
	got := drop(t)
	if !strings.Contains(got[m1], "not covered by an exported signed checkpoint") || got[m2] == "dropped" {
		t.Fatalf("without checkpoints: %v", got)
	}

	// Checkpoints written and exported, but a legal hold on t1's January.
	_, priv, _ := ed25519Key()
	cps, err := audit.WriteCheckpoint(b.ctx, b.db.App.Pool(), priv, now)
	if err != nil || len(cps) != 2 {
		t.Fatalf("checkpoint: %v %v", cps, err)
	}
	if err := audit.MarkExported(b.ctx, b.db.App.Pool(), cps, "file:test", now); err != nil {
		t.Fatal(err)
	}
	var hold string
	err = b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
		hold, err = audit.PlaceLegalHold(b.ctx, tx, "t1", audit.LegalHold{From: jan, Until: jan.Add(24 * time.Hour),
			Reason: "litigation 2019-7", CreatedBy: "privacy-officer"}, now)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got = drop(t)
	if got[m1] != "tenant t1: under legal hold" || !strings.Contains(got[m2], "older partition") {
		t.Fatalf("under hold: %v", got)
	}

	// Hold released: both go, oldest first, and the chains still verify from the retention marks.
	err = b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
		_, err := tx.Exec(b.ctx, `UPDATE audit_legal_holds SET released_at = now() WHERE id = $1`, hold)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	got = drop(t)
	if got[m1] != "dropped" || got[m2] != "dropped" {
		t.Fatalf("after release: %v", got)
	}
	rep, err := audit.Verify(b.ctx, b.db.Owner, audit.VerifyOptions{})
	if err != nil || tenantReport(t, rep, "t1").Checked != 2 || tenantReport(t, rep, "t2").Checked != 1 {
		t.Fatalf("verify after retention: %v %+v", err, rep.Tenants)
	}
	var logged int
	if err := maint.QueryRow(b.ctx, `SELECT count(*) FROM audit_retention_log`).Scan(&logged); err != nil || logged != 6 {
		t.Fatalf("retention log rows = %d, %v", logged, err)
	}

	// The database refuses a young partition whatever clock the caller claims.
	var reason string
	part := b.partitionOf(t, "t1", 7)
	if err := maint.QueryRow(b.ctx, `SELECT audit_drop_partition($1, $2)`, part, now.AddDate(20, 0, 0)).Scan(&reason); err != nil ||
		reason != "younger than the retention period" {
		t.Fatalf("young partition: %q %v", reason, err)
	}
}
