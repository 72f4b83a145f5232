package triage_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/internal/testdb"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage"
)

var informaticist = triage.Actor{Subject: "informaticist-1", Role: "admin", Purpose: "HOPERAT"}

// packFiles reads the default pack's files, renames its version and applies edits
// (old → new replacements in one file each).
func packFiles(t testing.TB, version string, edits ...[3]string) map[string][]byte {
	t.Helper()
	files := map[string][]byte{}
	err := fs.WalkDir(rules.DefaultPackFS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(rules.DefaultPackFS(), p)
		files[p] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	edits = append(edits, [3]string{"pack.yaml", `version: "2026.12.1"`, `version: "` + version + `"`})
	for _, e := range edits {
		s := string(files[e[0]])
		if !strings.Contains(s, e[1]) {
			t.Fatalf("edit %s: %q not found", e[0], e[1])
		}
		files[e[0]] = []byte(strings.Replace(s, e[1], e[2], 1))
	}
	return files
}

// sodiumHigh lowers the critical high sodium limit from 160 to v mmol/L.
func sodiumHigh(v string) [3]string {
	return [3]string{"analytes.yaml", "    low: 120\n    high: 160", "    low: 120\n    high: " + v}
}

// potassiumHigh changes the adult critical high potassium limit (6.2).
func potassiumHigh(v string) [3]string {
	return [3]string{"analytes.yaml", "    low: 2.8\n    high: 6.2", "    low: 2.8\n    high: " + v}
}

type packBundle struct {
	db    *testdb.DB
	packs *triage.PackStore
	ctx   context.Context
}

func setupPacks(t *testing.T, tenants ...string) *packBundle {
	t.Helper()
	db := testdb.New(t)
	ctx := context.Background()
	for _, id := range tenants {
		if err := store.PutTenant(ctx, db.Owner, &store.Tenant{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := triage.NewPackStore(db.App, triage.PackStoreConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return &packBundle{db: db, packs: ps, ctx: ctx}
}

func (b *packBundle) audit(t *testing.T, tenant, verb string) []string {
	t.Helper()
	rows, err := b.db.Owner.Query(b.ctx, `SELECT outcome || ' ' || coalesce(detail->>'rule_pack', '') FROM audit_events WHERE tenant_id = $1 AND verb = $2 ORDER BY seq`, tenant, verb)
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (b *packBundle) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := b.db.Owner.QueryRow(b.ctx, q, args...).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestPackPublishAndActivate(t *testing.T) {
	t.Parallel()
	b := setupPacks(t, "clinic-a", "clinic-b")
	ctx := b.ctx
	def, err := rules.DefaultPack()
	if err != nil {
		t.Fatal(err)
	}

	// No activation: the default pack.
	p, err := b.packs.Active(ctx, "clinic-a")
	if err != nil || p.SHA256() != def.SHA256() {
		t.Fatalf("Active before any activation = %v, %v; want the default pack", p, err)
	}

	v1 := packFiles(t, "site-1")
	pv, err := b.packs.Publish(ctx, "clinic-a", v1, informaticist)
	if err != nil {
		t.Fatal(err)
	}
	if pv.Version != "site-1" || len(pv.SHA256) != 64 || pv.Checks.CasesTotal == 0 || pv.Checks.CasesPassed != pv.Checks.CasesTotal {
		t.Fatalf("published %+v", pv)
	}
	compiled, err := b.packs.Version(ctx, "clinic-a", "site-1")
	if err != nil || compiled.SHA256() != pv.SHA256 {
		t.Fatalf("Version(site-1) = %v, %v; want sha %s", compiled, err, pv.SHA256)
	}

	t.Run("publishing the same bytes again is a no-op", func(t *testing.T) {
		again, err := b.packs.Publish(ctx, "clinic-a", v1, informaticist)
		if err != nil || !again.Duplicate || again.SHA256 != pv.SHA256 {
			t.Fatalf("republish = %+v, %v", again, err)
		}
	})
	t.Run("other bytes under a published version are refused", func(t *testing.T) {
		_, err := b.packs.Publish(ctx, "clinic-a", packFiles(t, "site-1", sodiumHigh("150")), informaticist)
		if !errors.Is(err, triage.ErrPackExists) {
			t.Fatalf("err = %v, want ErrPackExists", err)
		}
	})
	t.Run("files that are not pack files are refused", func(t *testing.T) {
		files := packFiles(t, "site-x")
		files["notes.txt"] = []byte("hello")
		if _, err := b.packs.Publish(ctx, "clinic-a", files, informaticist); !errors.Is(err, triage.ErrPackFiles) {
			t.Fatalf("err = %v, want ErrPackFiles", err)
		}
	})
	t.Run("the app role cannot change or remove a stored version", func(t *testing.T) {
		for _, q := range []string{`UPDATE rule_packs SET name = 'x'`, `DELETE FROM rule_packs`, `UPDATE rule_pack_activations SET version = 'x'`, `DELETE FROM rule_pack_activations`} {
			err := b.db.App.InTenant(ctx, "clinic-a", func(tx pgx.Tx) error { _, err := tx.Exec(ctx, q); return err })
			if err == nil {
				t.Errorf("app role: %s succeeded", q)
			}
		}
		// Not even the owner: the table is append-only.
		if _, err := b.db.Owner.Exec(ctx, `UPDATE rule_packs SET name = 'x'`); err == nil {
			t.Error("owner UPDATE rule_packs succeeded")
		}
		if _, err := b.db.Owner.Exec(ctx, `DELETE FROM rule_packs`); err == nil {
			t.Error("owner DELETE rule_packs succeeded")
		}
	})

	// Still the default until activated.
	if p, _ := b.packs.Active(ctx, "clinic-a"); p.SHA256() != def.SHA256() {
		t.Fatal("a published but not activated pack is active")
	}
	act, err := b.packs.Activate(ctx, "clinic-a", "site-1", informaticist)
	if err != nil {
		t.Fatal(err)
	}
	if act.CasesPassed != act.CasesTotal || act.CasesTotal < 14 || act.Previous != "" {
		t.Fatalf("activation %+v", act)
	}
	if p, err := b.packs.Active(ctx, "clinic-a"); err != nil || p.Version() != "site-1" || p.SHA256() != pv.SHA256 {
		t.Fatalf("Active after activation = %v, %v", p, err)
	}
	// Tenant B sees neither the version nor the activation.
	if p, _ := b.packs.Active(ctx, "clinic-b"); p.SHA256() != def.SHA256() {
		t.Fatal("clinic-a's activation changed clinic-b's pack")
	}
	if _, err := b.packs.Activate(ctx, "clinic-b", "site-1", informaticist); !errors.Is(err, triage.ErrNotFound) {
		t.Fatalf("clinic-b activating clinic-a's version: %v, want ErrNotFound", err)
	}
	if l, err := b.packs.List(ctx, "clinic-b"); err != nil || len(l) != 0 {
		t.Fatalf("clinic-b lists %v, %v", l, err)
	}

	// A second version, activated: picked up on the next call, without restart.
	if _, err := b.packs.Publish(ctx, "clinic-a", packFiles(t, "site-2", sodiumHigh("150")), informaticist); err != nil {
		t.Fatal(err)
	}
	act2, err := b.packs.Activate(ctx, "clinic-a", "site-2", informaticist)
	if err != nil || act2.Previous != "site-1" {
		t.Fatalf("activate site-2 = %+v, %v", act2, err)
	}
	if p, _ := b.packs.Active(ctx, "clinic-a"); p.Version() != "site-2" {
		t.Fatalf("Active = %s, want site-2", p.Version())
	}
	l, err := b.packs.List(ctx, "clinic-a")
	if err != nil || len(l) != 2 {
		t.Fatalf("List = %v, %v", l, err)
	}
	for _, v := range l {
		if v.Active != (v.Version == "site-2") || len(v.Activations) != 1 || len(v.Files) != 7 {
			t.Errorf("listed %s: active %v, %d activations, files %v", v.Version, v.Active, len(v.Activations), v.Files)
		}
	}
	if got := b.audit(t, "clinic-a", "rules.activate"); strings.Join(got, ",") != "success site-1,success site-2" {
		t.Errorf("rules.activate audit = %v", got)
	}
	if got := b.audit(t, "clinic-a", "rules.publish"); len(got) < 3 || got[0] != "success site-1" {
		t.Errorf("rules.publish audit = %v", got)
	}
}

func TestPackBadPackRefusedWhole(t *testing.T) {
	t.Parallel()
	b := setupPacks(t, "clinic-a")
	files := map[string][]byte{}
	for _, n := range []string{"pack.yaml", "analytes.yaml", "lexicon.yaml", "critical.rules.yaml"} {
		data, err := os.ReadFile("../rules/testdata/badpack/" + n)
		if err != nil {
			t.Fatal(err)
		}
		files[n] = data
	}
	_, err := b.packs.Publish(b.ctx, "clinic-a", files, informaticist)
	var ce rules.CompileErrors
	if !errors.As(err, &ce) || len(ce) == 0 {
		t.Fatalf("err = %v, want rules.CompileErrors", err)
	}
	found := false
	for _, e := range ce {
		if e.RuleID == "critical-potassium-low" && e.File == "critical.rules.yaml" && e.Line > 0 {
			found = true
		}
	}
	if !found {
		t.Errorf("compile errors do not name critical-potassium-low with file and line: %v", err)
	}
	if n := b.count(t, `SELECT count(*) FROM rule_packs`); n != 0 {
		t.Errorf("%d packs stored after a refused upload", n)
	}
	if got := b.audit(t, "clinic-a", "rules.publish"); len(got) != 1 || !strings.HasPrefix(got[0], "failure") {
		t.Errorf("refused publish audit = %v", got)
	}
}

func TestPackActivationNeedsGoldenCases(t *testing.T) {
	t.Parallel()
	b := setupPacks(t, "clinic-a")
	ctx := b.ctx
	tests := []struct {
		name    string
		version string
		edits   [][3]string
		cases   map[string]string // tenant golden cases to import first
		failing string            // a failing case name must contain this
	}{
		{name: "default case fails", version: "k-7", edits: [][3]string{potassiumHigh("7.0")}, failing: "default/potassium 6.9"},
		{name: "tenant case fails", version: "na-150", edits: [][3]string{sodiumHigh("150")},
			cases: map[string]string{"sodium-155-not-critical.json": sodium155Case}, failing: "tenant/sodium 155"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if tc.cases != nil {
				files := map[string][]byte{}
				for n, c := range tc.cases {
					files[n] = []byte(c)
				}
				if n, err := b.packs.ImportCases(ctx, "clinic-a", files, informaticist); err != nil || n != len(files) {
					t.Fatalf("import cases = %d, %v", n, err)
				}
			}
			pv, err := b.packs.Publish(ctx, "clinic-a", packFiles(t, tc.version, tc.edits...), informaticist)
			if err != nil {
				t.Fatal(err)
			}
			if pv.Checks.CasesPassed == pv.Checks.CasesTotal {
				t.Errorf("publish checks %+v: want a failing case recorded", pv.Checks)
			}
			_, err = b.packs.Activate(ctx, "clinic-a", tc.version, informaticist)
			var ae *triage.ActivationError
			if !errors.As(err, &ae) {
				t.Fatalf("Activate = %v, want *ActivationError", err)
			}
			if len(ae.Failed) == 0 || !strings.Contains(ae.Failed[0].Name, tc.failing) {
				t.Errorf("failed cases %v, want one named %q", ae.Error(), tc.failing)
			}
			if p, _ := b.packs.Active(ctx, "clinic-a"); p.Version() == tc.version {
				t.Error("refused version is active")
			}
		})
	}
	if n := b.count(t, `SELECT count(*) FROM rule_pack_activations`); n != 0 {
		t.Errorf("%d activations after refusals", n)
	}
	if got := b.audit(t, "clinic-a", "rules.activate"); len(got) != 2 || got[0] != "failure k-7" || got[1] != "failure na-150" {
		t.Errorf("refused activations audit = %v", got)
	}
	if _, err := b.packs.ImportCases(ctx, "clinic-a", map[string][]byte{"bad.json": []byte(`{"name":"x"}`)}, informaticist); !errors.Is(err, triage.ErrCases) {
		t.Errorf("importing a case without trigger: %v, want ErrCases", err)
	}
}

// sodium155Case: the tenant's policy is that sodium 155 mmol/L is not critical.
const sodium155Case = `{
  "name": "sodium 155 is not critical here",
  "trigger": {"resourceType": "Observation", "id": "na-1", "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "2951-2"}]},
    "valueQuantity": {"value": 155, "unit": "mmol/L", "system": "http://unitsofmeasure.org", "code": "mmol/L"}},
  "expect": {"escalates": false}
}`

// A tenant whose active pack no longer compiles (or no longer matches its
// hash) gets an error for every job, never another pack, and startup
// (Preload) names it.
func TestPackBrokenActivePackFailsLoudly(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		files func(t *testing.T) map[string][]byte
		sha   func(good string) string
		want  func(err error) bool
	}{
		{
			name: "does not compile",
			files: func(t *testing.T) map[string][]byte {
				return packFiles(t, "broken", [3]string{"critical.rules.yaml", "when: Fact == \"value\" && Analyte == \"potassium\" && BelowCriticalLow", "when: Fact == \"value\" && (Analyte =="})
			},
			want: func(err error) bool {
				var ce rules.CompileErrors
				return errors.As(err, &ce) && ce[0].RuleID == "critical-potassium-low" && ce[0].Line > 0 &&
					strings.Contains(err.Error(), `critical.rules.yaml`) && strings.Contains(err.Error(), `rule "critical-potassium-low"`)
			},
		},
		{
			name:  "hash mismatch",
			files: func(t *testing.T) map[string][]byte { return packFiles(t, "broken") },
			sha:   func(string) string { return strings.Repeat("ab", 32) },
			want:  func(err error) bool { return errors.Is(err, triage.ErrPackIntegrity) },
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setupPacks(t, "clinic-a", "clinic-b")
			files := tc.files(t)
			content := map[string]string{}
			for n, c := range files {
				content[n] = string(c)
			}
			sha := "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
			if tc.sha != nil {
				sha = tc.sha("")
			}
			// Stored behind the API's back (as if by an older Vigil that accepted it).
			if _, err := b.db.Owner.Exec(b.ctx, `INSERT INTO rule_packs (tenant_id, version, sha256, name, files, published_by) VALUES ('clinic-a', 'broken', $1, 'x', $2, 'test')`, sha, content); err != nil {
				t.Fatal(err)
			}
			if _, err := b.db.Owner.Exec(b.ctx, `INSERT INTO rule_pack_activations (tenant_id, version, sha256, activated_by, cases_passed, cases_total) VALUES ('clinic-a', 'broken', $1, 'test', 0, 0)`, sha); err != nil {
				t.Fatal(err)
			}
			p, err := b.packs.Active(b.ctx, "clinic-a")
			var ape *triage.ActivePackError
			if p != nil || !errors.As(err, &ape) || ape.Version != "broken" || !tc.want(err) {
				t.Fatalf("Active = %v, %v; want *ActivePackError for version broken", p, err)
			}
			if _, err := b.packs.Active(b.ctx, "clinic-b"); err != nil {
				t.Fatalf("another tenant is affected: %v", err)
			}
			err = b.packs.Preload(b.ctx)
			if !errors.As(err, &ape) || !strings.Contains(err.Error(), "clinic-a") || strings.Contains(err.Error(), "clinic-b") {
				t.Fatalf("Preload = %v; want an error naming clinic-a only", err)
			}
		})
	}
}

func TestPackActiveRecheck(t *testing.T) {
	t.Parallel()
	b := setupPacks(t, "clinic-a")
	now := time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)
	cached, err := triage.NewPackStore(b.db.App, triage.PackStoreConfig{Recheck: 5 * time.Second, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := cached.Active(b.ctx, "clinic-a"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.packs.Publish(b.ctx, "clinic-a", packFiles(t, "site-1"), informaticist); err != nil {
		t.Fatal(err)
	}
	if _, err := b.packs.Activate(b.ctx, "clinic-a", "site-1", informaticist); err != nil {
		t.Fatal(err)
	}
	if p, _ := cached.Active(b.ctx, "clinic-a"); p.Version() == "site-1" {
		t.Fatal("recheck interval not honoured")
	}
	now = now.Add(6 * time.Second)
	if p, _ := cached.Active(b.ctx, "clinic-a"); p.Version() != "site-1" {
		t.Fatalf("after the recheck interval Active = %s, want site-1", p.Version())
	}
}
