package audit_test

import (
	"context"
	"crypto/rand"
	"sync/atomic"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
)

// BenchmarkAppend compares, in one run, audited appends through the
// group-commit Writer with plain INSERTs of the same rows into an identical
// table that has no chain (single-row autocommit, and batched like the Writer).
//
//	go test ./audit -run '^$' -bench Append -benchtime=2s
func BenchmarkAppend(b *testing.B) {
	tb := setup(b, "t1")
	ctx := context.Background()
	for _, s := range []string{
		`CREATE TABLE plain_events (LIKE audit_events INCLUDING DEFAULTS INCLUDING CONSTRAINTS) PARTITION BY RANGE (occurred_at)`,
		`CREATE TABLE plain_events_default PARTITION OF plain_events DEFAULT`,
		`CREATE INDEX ON plain_events (tenant_id, seq, occurred_at)`,
		`CREATE INDEX ON plain_events (tenant_id, patient_ref, occurred_at, seq) WHERE patient_ref <> ''`,
		`CREATE INDEX ON plain_events (tenant_id, actor, occurred_at, seq)`,
		`CREATE INDEX ON plain_events (tenant_id, occurred_at, seq)`,
		`CREATE INDEX ON plain_events USING gin (resources)`,
		`GRANT SELECT, INSERT ON plain_events TO vigil_app`,
	} {
		if _, err := tb.db.Owner.Exec(ctx, s); err != nil {
			b.Fatal(err)
		}
	}
	const plainSQL = `INSERT INTO plain_events (tenant_id, seq, id, occurred_at, actor, actor_role, client_id, on_behalf_of,
	action, verb, outcome, patient_ref, resources, source_ip, user_agent, purpose, request_id, detail, enc_version, prev_hash, hash)
	VALUES ($1, $2, gen_random_uuid(), $3, $4, $5, $6, '', $7, $8, $9, $10, $11, $12, $13, $14, $15, $16::jsonb, 1, $17, $17)`
	hash := make([]byte, 32)
	_, _ = rand.Read(hash)
	var seq atomic.Int64
	plainArgs := func(ev audit.Event) []any {
		return []any{ev.TenantID, seq.Add(1), ev.OccurredAt, ev.Actor, ev.ActorRole, ev.ClientID, string(ev.Action), ev.Verb,
			ev.Outcome, ev.PatientRef, ev.Resources, ev.SourceIP, ev.UserAgent, ev.Purpose, ev.RequestID,
			`{"count": 1, "rule_ids": ["k.critical"]}`, hash}
	}
	pool := tb.db.App.Pool()
	const parallelism = 64 // goroutines per GOMAXPROCS

	b.Run("plain-insert", func(b *testing.B) {
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, err := pool.Exec(ctx, plainSQL, plainArgs(sampleEvent("t1", i))...); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("plain-batched", func(b *testing.B) {
		const batch = 500
		for n := 0; n < b.N; n += batch {
			m := min(batch, b.N-n)
			err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
				pb := &pgx.Batch{}
				for i := 0; i < m; i++ {
					pb.Queue(plainSQL, plainArgs(sampleEvent("t1", n+i))...)
				}
				return tx.SendBatch(ctx, pb).Close()
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("audited-writer", func(b *testing.B) {
		w := audit.NewWriter(tb.db.App, audit.WriterConfig{})
		defer w.Close()
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				if _, err := w.Append(ctx, sampleEvent("t1", i)); err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("audited-batched", func(b *testing.B) {
		const batch = 500
		for n := 0; n < b.N; n += batch {
			m := min(batch, b.N-n)
			evs := make([]audit.Event, m)
			for i := range evs {
				evs[i] = sampleEvent("t1", n+i)
			}
			err := tb.db.App.InTenant(ctx, "t1", func(tx pgx.Tx) error {
				_, err := audit.AppendMany(ctx, tx, evs)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
	b.Run("audited-in-tx", func(b *testing.B) {
		b.SetParallelism(parallelism)
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				i++
				err := tb.db.App.InTenant(ctx, "t1", func(tx pgx.Tx) error {
					_, err := audit.Append(ctx, tx, sampleEvent("t1", i))
					return err
				})
				if err != nil {
					b.Error(err)
					return
				}
			}
		})
		b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
	})
}

// BenchmarkVerify reports verification speed (events/s) over a 20,000-event chain.
func BenchmarkVerify(b *testing.B) {
	tb := setup(b, "t1")
	ctx := context.Background()
	const total, batch = 20000, 1000
	for n := 0; n < total; n += batch {
		evs := make([]audit.Event, batch)
		for i := range evs {
			evs[i] = sampleEvent("t1", n+i)
		}
		err := tb.db.App.InTenant(ctx, "t1", func(tx pgx.Tx) error {
			_, err := audit.AppendMany(ctx, tx, evs)
			return err
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		rep, err := audit.Verify(ctx, tb.db.Owner, audit.VerifyOptions{TenantID: "t1"})
		if err != nil || rep.Tenants[0].Checked != total {
			b.Fatalf("verify: %v %v", rep, err)
		}
	}
	b.ReportMetric(float64(total)*float64(b.N)/b.Elapsed().Seconds(), "events/s")
}
