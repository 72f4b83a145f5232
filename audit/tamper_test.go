package audit_test

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
)

// Each tamper class, performed as a superuser, is caught and named.
func TestTamper(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(nil)
	const cols = `id, occurred_at, actor, actor_role, client_id, on_behalf_of, action, verb, outcome, patient_ref, resources,
		source_ip, user_agent, purpose, request_id, decision_id, detail, enc_version, prev_hash, hash`
	tests := []struct {
		name string
		// after is how many records to append after the checkpoint (which covers seq 1..6).
		after  int
		tamper func(t *testing.T, b *testBundle)
		// withCheckpoints verifies against the exported checkpoints and the public key.
		withCheckpoints bool
		want            *audit.BadRecord
	}{
		{name: "untouched", after: 2, withCheckpoints: true},
		{name: "modified field", tamper: func(t *testing.T, b *testBundle) {
			b.superuser(t, `UPDATE audit_events SET actor = 'mallory' WHERE tenant_id = 't1' AND seq = 3`)
		}, want: &audit.BadRecord{Seq: 3, Reason: audit.ReasonHashMismatch}},
		{name: "modified detail", tamper: func(t *testing.T, b *testBundle) {
			b.superuser(t, `UPDATE audit_events SET detail = detail || '{"count": 99}' WHERE tenant_id = 't1' AND seq = 4`)
		}, want: &audit.BadRecord{Seq: 4, Reason: audit.ReasonHashMismatch}},
		{name: "modified time", tamper: func(t *testing.T, b *testBundle) {
			b.superuser(t, `UPDATE audit_events SET occurred_at = occurred_at + interval '1 microsecond' WHERE tenant_id = 't1' AND seq = 2`)
		}, want: &audit.BadRecord{Seq: 2, Reason: audit.ReasonHashMismatch}},
		{name: "deleted row", tamper: func(t *testing.T, b *testBundle) {
			b.superuser(t, `DELETE FROM audit_events WHERE tenant_id = 't1' AND seq = 3`)
		}, want: &audit.BadRecord{Seq: 3, Reason: audit.ReasonSequenceGap}},
		{name: "deleted last row", tamper: func(t *testing.T, b *testBundle) {
			b.superuser(t, `DELETE FROM audit_events WHERE tenant_id = 't1' AND seq = 6`)
		}, want: &audit.BadRecord{Seq: 6, Reason: audit.ReasonTruncated}}, // the stored checkpoint covers seq 6
		{name: "deleted last row, after the checkpoint", after: 2, tamper: func(t *testing.T, b *testBundle) {
			b.superuser(t, `DELETE FROM audit_events WHERE tenant_id = 't1' AND seq = 8`)
		}, want: &audit.BadRecord{Seq: 8, Reason: audit.ReasonSequenceGap}}, // the head remembers seq 8
		{name: "inserted row", tamper: func(t *testing.T, b *testBundle) {
			b.superuser(t, `INSERT INTO audit_events (tenant_id, seq, `+cols+`)
				SELECT tenant_id, seq, gen_random_uuid(), occurred_at + interval '1 microsecond', 'mallory', actor_role, client_id,
				       on_behalf_of, action, verb, outcome, patient_ref, resources, source_ip, user_agent, purpose, request_id,
				       decision_id, detail, enc_version, prev_hash, hash
				FROM audit_events WHERE tenant_id = 't1' AND seq = 3`)
		}, want: &audit.BadRecord{Seq: 3, Reason: audit.ReasonDuplicateSeq}},
		{name: "inserted row renumbered", tamper: func(t *testing.T, b *testBundle) {
			b.superuser(t,
				`CREATE TEMP TABLE moved AS SELECT * FROM audit_events WHERE tenant_id = 't1' AND seq >= 3`,
				`DELETE FROM audit_events WHERE tenant_id = 't1' AND seq >= 3`,
				`INSERT INTO audit_events SELECT tenant_id, seq + 1, `+cols+` FROM moved`,
				`INSERT INTO audit_events SELECT tenant_id, 3, gen_random_uuid(), occurred_at, 'mallory', actor_role, client_id,
				       on_behalf_of, action, verb, outcome, patient_ref, resources, source_ip, user_agent, purpose, request_id,
				       decision_id, detail, enc_version, prev_hash, hash FROM moved WHERE seq = 3`,
				`UPDATE audit_heads SET seq = seq + 1 WHERE tenant_id = 't1'`)
		}, want: &audit.BadRecord{Seq: 3, Reason: audit.ReasonHashMismatch}},
		{name: "two rows swapped", tamper: func(t *testing.T, b *testBundle) {
			b.superuser(t,
				`CREATE TEMP TABLE sw AS SELECT * FROM audit_events WHERE tenant_id = 't1' AND seq IN (2, 3)`,
				`DELETE FROM audit_events WHERE tenant_id = 't1' AND seq IN (2, 3)`,
				`INSERT INTO audit_events SELECT tenant_id, 5 - seq, `+cols+` FROM sw`)
		}, want: &audit.BadRecord{Seq: 2, Reason: audit.ReasonPrevHash}},
		{name: "truncated tail after a checkpoint", after: 0, withCheckpoints: true, tamper: func(t *testing.T, b *testBundle) {
			// The tail goes, the head is rewound, the stored checkpoints are deleted: only the exported one remembers.
			b.superuser(t,
				`DELETE FROM audit_events WHERE tenant_id = 't1' AND seq > 4`,
				`UPDATE audit_heads h SET seq = 4, hash = e.hash FROM audit_events e WHERE h.tenant_id = 't1' AND e.tenant_id = 't1' AND e.seq = 4`,
				`DELETE FROM audit_checkpoint_exports`, `DELETE FROM audit_checkpoints`)
		}, want: &audit.BadRecord{Seq: 5, Reason: audit.ReasonTruncated}},
		{name: "whole chain rewritten", after: 2, withCheckpoints: true, tamper: func(t *testing.T, b *testBundle) {
			rewriteChain(t, b, "t1", 2)
		}, want: &audit.BadRecord{Seq: 6, Reason: audit.ReasonCheckpoint}},
		{name: "whole chain rewritten, no exported checkpoint", after: 2, tamper: func(t *testing.T, b *testBundle) {
			rewriteChain(t, b, "t1", 2)
		}, want: nil}, // undetectable without an anchor kept outside the database: that is why checkpoints are exported
		{name: "forged retention mark", tamper: func(t *testing.T, b *testBundle) {
			b.superuser(t, `INSERT INTO audit_retention_marks (tenant_id, partition, through_seq, through_hash)
				SELECT tenant_id, 'audit_events_y2000m01', seq, hash FROM audit_events WHERE tenant_id = 't1' AND seq = 3`)
		}, want: &audit.BadRecord{Seq: 3, Reason: audit.ReasonRetentionMark}},
		{name: "forged checkpoint", after: 1, withCheckpoints: true, tamper: func(t *testing.T, b *testBundle) {
			b.superuser(t, `UPDATE audit_checkpoints SET seq = 5 WHERE tenant_id = 't1'`)
		}, want: &audit.BadRecord{Seq: 5, Reason: audit.ReasonSignature}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, "t1", "t2")
			b.appendN(t, "t1", 6)
			b.appendN(t, "t2", 2)
			cps, err := audit.WriteCheckpoint(b.ctx, b.db.App.Pool(), priv, t0.Add(time.Hour))
			if err != nil || len(cps) != 2 {
				t.Fatalf("checkpoint: %v %v", cps, err)
			}
			var exported bytes.Buffer
			if err := audit.WriteCheckpoints(&exported, cps); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < tt.after; i++ {
				err := b.db.App.InTenant(b.ctx, "t1", func(tx pgx.Tx) error {
					_, err := audit.Append(b.ctx, tx, sampleEvent("t1", 100+i))
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			}
			if tt.tamper != nil {
				tt.tamper(t, b)
			}
			opts := audit.VerifyOptions{}
			if tt.withCheckpoints {
				read, err := audit.ReadCheckpoints(&exported)
				if err != nil {
					t.Fatal(err)
				}
				opts.Checkpoints, opts.PublicKey = read, pub
			}
			rep, err := audit.Verify(b.ctx, b.db.Owner, opts)
			if rep == nil {
				t.Fatalf("verify: %v", err)
			}
			t1 := tenantReport(t, rep, "t1")
			if tt.want == nil {
				if err != nil || !rep.OK || rep.String() != "OK" {
					t.Fatalf("verify: %v\n%s", err, rep)
				}
				if tt.withCheckpoints && t1.Unanchored != int64(tt.after) {
					t.Fatalf("unanchored = %d, want %d", t1.Unanchored, tt.after)
				}
				return
			}
			if !errors.Is(err, audit.ErrChainBroken) || rep.OK {
				t.Fatalf("err = %v, want ErrChainBroken", err)
			}
			if t1.FirstBad == nil || *t1.FirstBad != *tt.want {
				t.Fatalf("first bad = %+v, want %+v", t1.FirstBad, tt.want)
			}
			if t2 := tenantReport(t, rep, "t2"); t2.FirstBad != nil {
				t.Fatalf("tenant t2 reported broken: %+v", t2.FirstBad)
			}
			wantLine := fmt.Sprintf("tenant t1: record seq %d broken: %s", tt.want.Seq, tt.want.Reason)
			if rep.String() != wantLine || !strings.Contains(err.Error(), wantLine) {
				t.Fatalf("report = %q, want %q", rep.String(), wantLine)
			}
		})
	}
}

// rewriteChain changes record `from`'s actor and recomputes every hash from
// there on, as a superuser with the source code would, then fixes the head
// and deletes the stored checkpoints.
func rewriteChain(t *testing.T, b *testBundle, tenant string, from int64) {
	t.Helper()
	type fix struct {
		seq        int64
		prev, hash []byte
		actor      string
	}
	var fixes []fix
	err := pgx.BeginFunc(b.ctx, b.db.Owner, func(tx pgx.Tx) error {
		var prev []byte
		return audit.Records(b.ctx, tx, tenant, 1, func(r *audit.Record) error {
			if r.Seq < from {
				prev = append([]byte(nil), r.Hash...)
				return nil
			}
			if r.Seq == from {
				r.Actor = "mallory"
			}
			r.PrevHash = prev
			canon, err := audit.EncodeCanonical(r)
			if err != nil {
				return err
			}
			h := audit.ChainHash(prev, canon)
			fixes = append(fixes, fix{r.Seq, prev, h, r.Actor})
			prev = h
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	err = pgx.BeginFunc(b.ctx, b.db.Owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(b.ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		for _, f := range fixes {
			if _, err := tx.Exec(b.ctx, `UPDATE audit_events SET actor = $3, prev_hash = $4, hash = $5 WHERE tenant_id = $1 AND seq = $2`,
				tenant, f.seq, f.actor, f.prev, f.hash); err != nil {
				return err
			}
		}
		last := fixes[len(fixes)-1]
		if _, err := tx.Exec(b.ctx, `UPDATE audit_heads SET hash = $2 WHERE tenant_id = $1`, tenant, last.hash); err != nil {
			return err
		}
		_, err := tx.Exec(b.ctx, `DELETE FROM audit_checkpoint_exports; DELETE FROM audit_checkpoints`)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}
