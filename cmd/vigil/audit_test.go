package main

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/internal/testdb"
)

type auditCLI struct {
	t   *testing.T
	env map[string]string
}

func (c *auditCLI) run(args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	g := &globals{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return c.env[k] },
		Logger: slog.New(slog.DiscardHandler)}
	code := runAudit(context.Background(), g, args)
	return code, out.String(), errb.String()
}

func TestAuditCLI(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	if _, err := db.Owner.Exec(ctx, `INSERT INTO tenants (id, name, config) VALUES ('t1', 't1', '{}'), ('t2', 't2', '{}')`); err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 10, 1, 12, 0, 0, 0, time.UTC)
	for i := 0; i < 6; i++ {
		for _, tn := range []string{"t1", "t2"} {
			err := db.App.InTenant(ctx, tn, func(tx pgx.Tx) error {
				ev := audit.Event{TenantID: tn, OccurredAt: at.Add(time.Duration(i) * time.Minute), Actor: "dr-a",
					Action: audit.ActionRead, Verb: "review.read", Outcome: audit.OutcomeSuccess, PatientRef: "Patient/1",
					Resources: []string{fmt.Sprintf("Observation/%d", i)}, SourceIP: "10.1.1.1", Purpose: "TREAT"}
				if i == 2 {
					ev.Actor, ev.Detail = "dr-outside", map[string]any{audit.DetailCareTeam: false}
				}
				_, err := audit.Append(ctx, tx, ev)
				return err
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}
	dir := t.TempDir()
	key := filepath.Join(dir, "signing.pem")
	cpFile := filepath.Join(dir, "checkpoints.jsonl")
	cli := &auditCLI{t: t, env: map[string]string{"VIGIL_DATABASE_URL": db.OwnerURL, "VIGIL_AUDIT_SIGNING_KEY": key, "VIGIL_AUDIT_ACTOR": "alice"}}

	if code, _, stderr := cli.run("keygen", "--out", key); code != 0 {
		t.Fatalf("keygen: %d %s", code, stderr)
	}
	if code, _, stderr := cli.run("checkpoint", "--out", cpFile); code != 0 || !strings.Contains(stderr, "2 checkpoint(s)") {
		t.Fatalf("checkpoint: %d %s", code, stderr)
	}
	code, stdout, stderr := cli.run("verify", "--public-key", key+".pub", "--checkpoints", cpFile)
	if code != 0 || stdout != "OK\n" {
		t.Fatalf("verify: %d %q %s", code, stdout, stderr)
	}
	if code, stdout, _ := cli.run("verify", "--tenant", "t2", "--since", cpFile, "--public-key", key+".pub"); code != 0 || stdout != "OK\n" {
		t.Fatalf("verify --since: %d %q", code, stdout)
	}

	code, stdout, stderr = cli.run("search", "--tenant", "t1", "--patient", "Patient/1", "--limit", "4")
	if code != 0 || strings.Count(stdout, "\n") != 4 || !strings.Contains(stderr, "--cursor ") {
		t.Fatalf("search: %d %q %s", code, stdout, stderr)
	}
	cursor := strings.TrimSpace(stderr[strings.Index(stderr, "--cursor ")+len("--cursor "):])
	// The first search is itself audited (with the patient), so page 2 ends with its record.
	if code, stdout, _ = cli.run("search", "--tenant", "t1", "--patient", "Patient/1", "--limit", "4", "--cursor", cursor); code != 0 || strings.Count(stdout, "\n") != 3 || !strings.Contains(stdout, `"verb":"audit.search"`) {
		t.Fatalf("search page 2: %d %q", code, stdout)
	}
	if code, stdout, _ = cli.run("export", "--tenant", "t1", "--format", "fhir", "--user", "dr-a"); code != 0 ||
		!strings.Contains(stdout, `"resourceType":"Bundle"`) || strings.Count(stdout, `"resourceType":"AuditEvent"`) != 5 {
		t.Fatalf("export: %d %q", code, stdout)
	}
	if code, stdout, _ = cli.run("disclosures", "--tenant", "t1", "--patient", "Patient/1"); code != 0 ||
		!strings.Contains(stdout, "dr-outside") || strings.Contains(stdout, "dr-a ") {
		t.Fatalf("disclosures: %d %q", code, stdout)
	}
	if code, stdout, _ = cli.run("alerts", "--tenant", "t1"); code != 0 || !strings.Contains(stdout, "no alerts") {
		t.Fatalf("alerts: %d %q", code, stdout)
	}

	// Partitions are kept ahead by the maintenance role (derived from the owner URL).
	code, stdout, stderr = cli.run("partitions", "--ahead", "2")
	n := time.Now().UTC()
	next := time.Date(n.Year(), n.Month()+2, 1, 0, 0, 0, 0, time.UTC)
	if code != 0 || !strings.Contains(stdout, fmt.Sprintf("audit_events_y%04dm%02d", next.Year(), int(next.Month()))) {
		t.Fatalf("partitions: %d %q %s", code, stdout, stderr)
	}

	// Offline: an unfiltered export verifies without the database.
	exportFile := filepath.Join(dir, "t1.ndjson")
	if code, _, stderr := cli.run("export", "--tenant", "t1", "--out", exportFile); code != 0 {
		t.Fatalf("export: %d %s", code, stderr)
	}
	if code, stdout, stderr := cli.run("verify", "--file", exportFile, "--public-key", key+".pub", "--checkpoints", cpFile); code != 0 || stdout != "OK\n" {
		t.Fatalf("verify --file: %d %q %s", code, stdout, stderr)
	}

	// A superuser rewrites t1's chain from seq 2 with fresh hashes: only the exported checkpoint catches it.
	err := pgx.BeginFunc(ctx, db.Owner, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL session_replication_role = replica`); err != nil {
			return err
		}
		var recs []audit.Record
		if err := audit.Records(ctx, tx, "t1", 1, func(r *audit.Record) error { recs = append(recs, *r); return nil }); err != nil {
			return err
		}
		prev := make([]byte, 32)
		for i := range recs {
			r := &recs[i]
			if r.Seq == 2 {
				r.Actor = "mallory"
			}
			r.PrevHash = prev
			canon, err := audit.EncodeCanonical(r)
			if err != nil {
				return err
			}
			r.Hash = audit.ChainHash(prev, canon)
			prev = r.Hash
			if _, err := tx.Exec(ctx, `UPDATE audit_events SET actor = $2, prev_hash = $3, hash = $4 WHERE tenant_id = 't1' AND seq = $1`,
				r.Seq, r.Actor, r.PrevHash, r.Hash); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, `UPDATE audit_heads SET hash = $1 WHERE tenant_id = 't1'; `, prev)
		if err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM audit_checkpoint_exports; DELETE FROM audit_checkpoints WHERE tenant_id = 't1'`)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if code, stdout, _ = cli.run("verify"); code != 0 {
		t.Fatalf("verify without anchors should not see the rewrite: %d %q", code, stdout)
	}
	code, stdout, _ = cli.run("verify", "--public-key", key+".pub", "--checkpoints", cpFile)
	if code != 1 || stdout != "tenant t1: record seq 6 broken: checkpoint mismatch\n" {
		t.Fatalf("verify after rewrite: %d %q", code, stdout)
	}
}
