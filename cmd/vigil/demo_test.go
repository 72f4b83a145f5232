package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/internal/testdb"
)

// The demo, as `make demo` runs it, on its own database: all four
// dispositions with their reasons, the escalations delivered to the webhook,
// and the audit chain verified.
func TestDemo(t *testing.T) {
	t.Parallel()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "vigil_demo_test_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx := context.Background()
		if c, err := pgx.Connect(ctx, testdb.ServerURL()); err == nil {
			_, _ = c.Exec(ctx, `DROP DATABASE IF EXISTS `+name+` WITH (FORCE)`)
			c.Close(ctx)
		}
	})
	g, out, errb := evalGlobals(map[string]string{"VIGIL_DATABASE_URL": testdb.ServerURL()})
	code := run(context.Background(), g, []string{"demo", "--db", name, "--state", t.TempDir()})
	if code != 0 {
		t.Fatalf("demo exit %d\nstdout:\n%s\nstderr:\n%s", code, out, errb)
	}
	s := out.String()
	for _, want := range []string{
		"ESCALATED      stat", "critical-potassium-high", "redflag-chest-pain",
		"HELD           urgent", "abnormal-lab-flag",
		"MANUAL_TRIAGE", "below threshold",
		"SUGGESTED", "grounded draft",
		"again: accepted as a duplicate", "refused with 400",
		"On-call webhook received 2 escalation message(s)",
		"Audit chain verification (vigil audit verify --tenant demo-clinic): OK",
		"drafter used: baseline",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("demo output lacks %q\n%s", want, s)
		}
	}
}
