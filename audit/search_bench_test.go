package audit_test

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
)

// BenchmarkSearchPatient measures a patient + time-range search over a large
// generated table. Opt in with the row count (it takes minutes to generate):
//
//	VIGIL_AUDIT_BENCH_ROWS=10000000 go test ./audit -run '^$' -bench SearchPatient -benchtime=2s -timeout 60m
//
// Rows span the 12 months before now over 200,000 patients (about 50 events
// each), 2,000 users and three tenants (the searched one holds 80%). The rows
// are not a valid chain: only the query matters here.
func BenchmarkSearchPatient(b *testing.B) {
	rows, _ := strconv.Atoi(os.Getenv("VIGIL_AUDIT_BENCH_ROWS"))
	if rows <= 0 {
		b.Skip("set VIGIL_AUDIT_BENCH_ROWS (e.g. 10000000) to run")
	}
	tb := setup(b, "t1", "t2", "t3")
	ctx := tb.ctx
	now := time.Now().UTC()
	start := time.Now()
	for k := -13; k <= 1; k++ {
		if _, err := tb.db.Owner.Exec(ctx, `SELECT audit_create_partition($1::date)`, now.AddDate(0, k, 0).Format("2006-01-02")); err != nil {
			b.Fatal(err)
		}
	}
	// Bulk load without indexes, then build them (as a restore would).
	idx := map[string]string{
		"audit_events_patient":   `CREATE INDEX audit_events_patient ON audit_events (tenant_id, patient_ref, occurred_at, seq) WHERE patient_ref <> ''`,
		"audit_events_actor":     `CREATE INDEX audit_events_actor ON audit_events (tenant_id, actor, occurred_at, seq)`,
		"audit_events_time":      `CREATE INDEX audit_events_time ON audit_events (tenant_id, occurred_at, seq)`,
		"audit_events_decision":  `CREATE INDEX audit_events_decision ON audit_events (tenant_id, decision_id) WHERE decision_id IS NOT NULL`,
		"audit_events_resources": `CREATE INDEX audit_events_resources ON audit_events USING gin (resources)`,
	}
	for name := range idx {
		if _, err := tb.db.Owner.Exec(ctx, `DROP INDEX `+name); err != nil {
			b.Fatal(err)
		}
	}
	const chunk = 1_000_000
	for lo := 1; lo <= rows; lo += chunk {
		hi := min(lo+chunk-1, rows)
		_, err := tb.db.Owner.Exec(ctx, `
			INSERT INTO audit_events (tenant_id, seq, id, occurred_at, actor, actor_role, action, verb, outcome, patient_ref,
			                          resources, source_ip, request_id, enc_version, prev_hash, hash)
			SELECT CASE WHEN g % 10 < 8 THEN 't1' WHEN g % 10 = 8 THEN 't2' ELSE 't3' END, g, gen_random_uuid(),
			       $3::timestamptz - make_interval(secs => ($2 - g)::float8 * (365.0 * 86400 / $2)),
			       'user-' || (hashint8(g) & 2047), 'nurse', 'R', 'review.read', 'success',
			       'Patient/' || abs(hashint8(g + 7) % 200000),
			       ARRAY['Observation/' || g], '10.0.' || (g % 250) || '.' || (g % 7), 'req-' || g, 1,
			       '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea, sha256(int8send(g))
			FROM generate_series($1::bigint, $4::bigint) g`, lo, rows, now, hi)
		if err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("loaded %d rows in %s", rows, time.Since(start).Round(time.Second))
	start = time.Now()
	for _, ddl := range idx {
		if _, err := tb.db.Owner.Exec(ctx, ddl); err != nil {
			b.Fatal(err)
		}
	}
	if _, err := tb.db.Owner.Exec(ctx, `ANALYZE audit_events`); err != nil {
		b.Fatal(err)
	}
	b.Logf("indexed and analysed in %s", time.Since(start).Round(time.Second))

	for _, span := range []time.Duration{30 * 24 * time.Hour, 365 * 24 * time.Hour} {
		b.Run(fmt.Sprintf("range=%dd", int(span.Hours()/24)), func(b *testing.B) {
			r := rand.New(rand.NewPCG(1, 2))
			var found int
			var worst time.Duration
			for i := 0; i < b.N; i++ {
				q := audit.Query{PatientRef: fmt.Sprintf("Patient/%d", r.IntN(200000)), From: now.Add(-span), To: now}
				t0 := time.Now()
				err := tb.db.App.InTenant(ctx, "t1", func(tx pgx.Tx) error {
					p, err := audit.Search(ctx, tx, q)
					found += len(p.Records)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
				worst = max(worst, time.Since(t0))
			}
			b.ReportMetric(float64(found)/float64(b.N), "records/op")
			b.ReportMetric(float64(worst.Microseconds())/1000, "worst-ms")
		})
	}
}
