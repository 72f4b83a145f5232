package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/testdb"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
)

func runRulesCLI(env map[string]string, args ...string) (int, string, string) {
	var out, errb bytes.Buffer
	g := &globals{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return env[k] }, Logger: slog.New(slog.DiscardHandler)}
	code := runRules(context.Background(), g, args)
	return code, out.String(), errb.String()
}

// The "done when" of issue 3: each input escalates by the right rule, and the
// refill request raises no red flag.
func TestRulesEvalDoneWhen(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file        string
		args        []string
		trigger     string
		disposition string
		rules       []string // must all fire
		kind        string   // kind of rules[0]
	}{
		{file: "potassium-6.9.json", trigger: "Observation/k-1", disposition: "ESCALATED", rules: []string{"critical-potassium-high"}, kind: "critical"},
		{file: "glucose-28-bundle.json", trigger: "Observation/glu-1", disposition: "ESCALATED", rules: []string{"critical-glucose-high"}, kind: "critical"},
		{file: "hh-unknown-unit.json", trigger: "Observation/hh-1", disposition: "ESCALATED", rules: []string{"critical-lab-flag", "guard-unknown-unit"}, kind: "critical"},
		{file: "chest-pressure.json", trigger: "Communication/msg-chest", disposition: "ESCALATED", rules: []string{"redflag-chest-pain"}, kind: "red_flag"},
		{file: "refill.json", trigger: "Communication/msg-refill", disposition: "NONE"},
		// --trigger picks another entry of the bundle; the glucose becomes context and does not fire.
		{file: "glucose-28-bundle.json", args: []string{"--trigger", "Observation/k-old"}, trigger: "Observation/k-old", disposition: "ESCALATED", rules: []string{"critical-potassium-high"}, kind: "critical"},
	}
	for _, tc := range tests {
		t.Run(tc.file+strings.Join(tc.args, ""), func(t *testing.T) {
			t.Parallel()
			args := append([]string{"eval", "--now", "2026-12-04T12:00:00Z"}, tc.args...)
			code, out, errOut := runRulesCLI(nil, append(args, filepath.Join("testdata", "rules", tc.file))...)
			if code != 0 {
				t.Fatalf("exit %d: %s", code, errOut)
			}
			var res struct {
				Trigger string `json:"trigger"`
				Fired   []struct {
					ID, Kind, Disposition, Priority string
					Flags                           []string
					Values                          []map[string]any
				} `json:"fired"`
				Floor struct {
					Disposition string
					Priority    string
					Flags       []string
					Escalates   bool
				} `json:"floor"`
			}
			if err := json.Unmarshal([]byte(out), &res); err != nil {
				t.Fatalf("output is not JSON: %v\n%s", err, out)
			}
			if res.Trigger != tc.trigger || res.Floor.Disposition != tc.disposition {
				t.Fatalf("trigger %s floor %s, want %s %s\n%s", res.Trigger, res.Floor.Disposition, tc.trigger, tc.disposition, out)
			}
			var ids []string
			for _, h := range res.Fired {
				ids = append(ids, h.ID)
				if h.Disposition == "" || h.Priority == "" || h.Flags == nil || len(h.Values) == 0 {
					t.Errorf("fired rule %s lacks disposition, priority, flags or triggering values: %+v", h.ID, h)
				}
				if (h.Kind == "critical" || h.Kind == "red_flag") && !res.Floor.Escalates {
					t.Errorf("%s fired but the floor does not escalate", h.ID)
				}
			}
			for _, want := range tc.rules {
				if !slices.Contains(ids, want) {
					t.Errorf("fired %v, want %s", ids, want)
				}
			}
			if tc.rules == nil {
				if len(res.Fired) != 0 || res.Floor.Escalates {
					t.Errorf("fired %v; want no red flag at all", ids)
				}
				return
			}
			if res.Fired[slices.Index(ids, tc.rules[0])].Kind != tc.kind {
				t.Errorf("%s kind = %s, want %s", tc.rules[0], res.Fired[0].Kind, tc.kind)
			}
		})
	}
}

func TestRulesLint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		dir      string
		code     int
		contains []string
	}{
		{"bad pack", "../../rules/testdata/badpack", 1, []string{`critical.rules.yaml:10:75`, `rule "critical-potassium-low"`, "when:"}},
		{"default pack", "../../rules/packs/default", 0, []string{"ok: pack vigil-default"}},
		{"missing dir", "testdata/no-such-pack", 1, []string{"read pack"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runRulesCLI(nil, "lint", tc.dir)
			if code != tc.code {
				t.Fatalf("exit %d, want %d: %s%s", code, tc.code, out, errOut)
			}
			for _, c := range tc.contains {
				if !strings.Contains(out+errOut, c) {
					t.Errorf("output lacks %q:\n%s%s", c, out, errOut)
				}
			}
		})
	}
	// eval and test refuse a bad pack the same way, before reading any input.
	code, _, errOut := runRulesCLI(nil, "eval", "--pack", "../../rules/testdata/badpack", filepath.Join("testdata", "rules", "refill.json"))
	if code != 1 || !strings.Contains(errOut, `rule "critical-potassium-low"`) {
		t.Errorf("eval with a bad pack: exit %d: %s", code, errOut)
	}
}

func TestRulesTestAndDiff(t *testing.T) {
	t.Parallel()
	code, out, errOut := runRulesCLI(nil, "test", "../../rules/testdata/cases")
	if code != 0 || !strings.Contains(out, "16 of 16 cases pass") {
		t.Fatalf("test: exit %d\n%s%s", code, out, errOut)
	}
	// A pack with a higher potassium limit: the test fails, the diff names the case.
	dir := t.TempDir()
	ents, err := os.ReadDir("../../rules/packs/default")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		b, err := os.ReadFile(filepath.Join("../../rules/packs/default", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		if e.Name() == "analytes.yaml" {
			s = strings.Replace(s, "    low: 2.8\n    high: 6.2", "    low: 2.8\n    high: 7.0", 1)
		}
		if e.Name() == "pack.yaml" {
			s = strings.Replace(s, `version: "2026.12.1"`, `version: "k-7"`, 1)
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), []byte(s), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	code, out, _ = runRulesCLI(nil, "test", "--pack", dir, "../../rules/testdata/cases")
	if code != 1 || !strings.Contains(out, "FAIL  potassium 6.9") {
		t.Errorf("test with k-7: exit %d\n%s", code, out)
	}
	code, out, errOut = runRulesCLI(nil, "diff", "default", dir, "../../rules/testdata/cases")
	if code != 0 || !strings.Contains(out, "CHANGED  potassium 6.9") || !strings.Contains(out, "critical-potassium-high") {
		t.Errorf("diff: exit %d\n%s%s", code, out, errOut)
	}
	if strings.Contains(out, "CHANGED  glucose") {
		t.Errorf("diff lists an unchanged case:\n%s", out)
	}
}

func TestRulesPublishActivateCLI(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	if err := store.PutTenant(ctx, db.Owner, &store.Tenant{ID: "clinic-a", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"VIGIL_DATABASE_URL": db.OwnerURL, "VIGIL_AUDIT_ACTOR": "informaticist"}
	steps := []struct {
		args     []string
		code     int
		contains string
	}{
		{[]string{"publish", "--tenant", "clinic-a", "../../rules/testdata/badpack"}, 1, `rule "critical-potassium-low"`},
		{[]string{"publish", "../../rules/packs/default"}, 2, "--tenant is required"},
		{[]string{"publish", "--tenant", "clinic-a", "../../rules/packs/default"}, 0, "published: pack vigil-default version 2026.12.1"},
		{[]string{"cases", "import", "--tenant", "clinic-a", "../../rules/testdata/cases"}, 0, "imported 16 golden case(s)"},
		{[]string{"activate", "--tenant", "clinic-a", "no-such-version"}, 1, "not published"},
		{[]string{"activate", "--tenant", "clinic-a", "2026.12.1"}, 0, "activated 2026.12.1"},
		{[]string{"list", "--tenant", "clinic-a"}, 0, "*       2026.12.1"},
	}
	for _, s := range steps {
		code, out, errOut := runRulesCLI(env, s.args...)
		if code != s.code || !strings.Contains(out+errOut, s.contains) {
			t.Fatalf("vigil rules %s: exit %d (want %d), want %q in:\n%s%s", strings.Join(s.args, " "), code, s.code, s.contains, out, errOut)
		}
	}
	var n int
	if err := db.Owner.QueryRow(ctx, `SELECT count(*) FROM audit_events WHERE tenant_id = 'clinic-a' AND verb LIKE 'rules.%' AND actor = 'cli:informaticist'`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n < 4 { // refused publish, publish, cases import, refused activation, activation
		t.Errorf("%d rules.* audit events by the CLI actor, want at least 4", n)
	}
}

// A tenant's active pack that no longer compiles stops startup, naming the
// tenant, the version, the file, the rule and the position.
func TestRulesBrokenActivePackStopsStartup(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	ctx := context.Background()
	if err := store.PutTenant(ctx, db.Owner, &store.Tenant{ID: "clinic-a", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	files := map[string]string{}
	for _, n := range []string{"pack.yaml", "analytes.yaml", "lexicon.yaml", "critical.rules.yaml"} {
		b, err := os.ReadFile(filepath.Join("../../rules/testdata/badpack", n))
		if err != nil {
			t.Fatal(err)
		}
		files[n] = string(b)
	}
	// As if stored by an older Vigil that accepted it.
	sha := strings.Repeat("0", 64)
	if _, err := db.Owner.Exec(ctx, `INSERT INTO rule_packs (tenant_id, version, sha256, name, files, published_by) VALUES ('clinic-a', 'old-1', $1, 'x', $2, 'test')`, sha, files); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Owner.Exec(ctx, `INSERT INTO rule_pack_activations (tenant_id, version, sha256, activated_by, cases_passed, cases_total) VALUES ('clinic-a', 'old-1', $1, 'test', 0, 0)`, sha); err != nil {
		t.Fatal(err)
	}
	key, err := seal.NewLocalKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	a, err := app.New(ctx, app.Config{AppDatabaseURL: db.AppURL, Keys: key})
	if err == nil {
		_ = a.Close(ctx)
		t.Fatal("app.New started with a broken active rule pack")
	}
	for _, want := range []string{"clinic-a", "old-1", "critical.rules.yaml:10:75", `rule "critical-potassium-low"`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("startup error lacks %q: %v", want, err)
		}
	}
}

func TestRulesReplayCLIErrors(t *testing.T) {
	t.Parallel()
	db := testdb.New(t)
	if err := store.PutTenant(context.Background(), db.Owner, &store.Tenant{ID: "clinic-a", Name: "A"}); err != nil {
		t.Fatal(err)
	}
	keyFile := filepath.Join(t.TempDir(), "kek")
	if err := seal.GenerateLocalKey(keyFile); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		env      map[string]string
		args     []string
		code     int
		contains string
	}{
		{"no key file", map[string]string{"VIGIL_DATABASE_URL": db.OwnerURL}, []string{"replay", "00000000-0000-0000-0000-000000000000"}, 1, "VIGIL_KEY_FILE"},
		{"unknown decision", map[string]string{"VIGIL_DATABASE_URL": db.OwnerURL, "VIGIL_KEY_FILE": keyFile},
			[]string{"replay", "00000000-0000-0000-0000-000000000000"}, 1, "not found"},
		{"unknown decision in a tenant", map[string]string{"VIGIL_DATABASE_URL": db.OwnerURL, "VIGIL_KEY_FILE": keyFile},
			[]string{"replay", "--tenant", "clinic-a", "00000000-0000-0000-0000-000000000000"}, 1, "not found"},
		{"usage", nil, []string{"replay"}, 2, "usage: vigil rules replay"},
		{"unknown subcommand", nil, []string{"frobnicate"}, 2, "unknown command"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, out, errOut := runRulesCLI(tc.env, tc.args...)
			if code != tc.code || !strings.Contains(out+errOut, tc.contains) {
				t.Errorf("exit %d (want %d), want %q in:\n%s%s", code, tc.code, tc.contains, out, errOut)
			}
		})
	}
}
