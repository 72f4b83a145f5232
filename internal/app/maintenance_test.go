package app_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vigil-health/vigil/audit"
	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/migrations"
	"github.com/vigil-health/vigil/workers"
)

// The periodic audit jobs run under River's leader: a signed checkpoint is
// written, exported to a file outside the database and marked exported;
// partitions are ensured ahead; the anomaly scan runs.
func TestAuditMaintenanceJobs(t *testing.T) {
	t.Parallel()
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	dir := t.TempDir()
	var maint *pgxpool.Pool
	h := newHarness(t, harnessOpts{appCfg: func(c *app.Config) {
		u, _ := url.Parse(c.AppDatabaseURL)
		u.User = url.User(migrations.MaintRole)
		p, err := pgxpool.New(context.Background(), u.String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(p.Close)
		maint = p
		c.Workers.Maintenance = workers.Maintenance{SigningKey: priv, CheckpointDir: dir, MaintPool: p, Anomalies: true}
	}})
	h.postRef(h.refs["scn-msg-refill"])
	h.waitDecided(h.refs["scn-msg-refill"])
	h.waitFor("an exported checkpoint", func() bool {
		return h.count(`SELECT count(*) FROM audit_checkpoint_exports`) > 0
	})
	files, _ := filepath.Glob(filepath.Join(dir, "checkpoints-*.jsonl"))
	if len(files) != 1 {
		t.Fatalf("checkpoint files %v", files)
	}
	f, err := os.Open(files[0])
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cps, err := audit.ReadCheckpoints(f)
	if err != nil || len(cps) == 0 {
		t.Fatalf("exported checkpoints: %d, %v", len(cps), err)
	}
	// The exported, signed checkpoint verifies the chain offline.
	rep, err := audit.Verify(context.Background(), h.db.Owner, audit.VerifyOptions{TenantID: tenantID, PublicKey: pub, Checkpoints: cps})
	if err != nil || !rep.OK {
		t.Fatalf("verify against exported checkpoint: %v %v", rep, err)
	}
	h.waitFor("partitions created ahead by the maintenance role", func() bool {
		ps, err := audit.ListPartitions(context.Background(), maint)
		return err == nil && len(ps) >= 4
	})
}
