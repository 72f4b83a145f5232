package app_test

import (
	"context"
	"encoding/json"
	"io/fs"
	"net/http"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/vigil-health/vigil/rules"
)

// Cross-tenant cases for the rule-pack endpoints (rules.publish,
// rules.activate, rules.list), used by TestSecurityLeakAcrossTenants.

const libraryScopes = "user/Library.c user/Library.u user/Library.rs"

// rulesLeakPackFiles is the default pack under another version.
func rulesLeakPackFiles(t *testing.T, version string) map[string]string {
	t.Helper()
	files := map[string]string{}
	err := fs.WalkDir(rules.DefaultPackFS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(rules.DefaultPackFS(), p)
		files[p] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	files["pack.yaml"] = strings.Replace(files["pack.yaml"], `version: "2026.12.1"`, `version: "`+version+`"`, 1)
	return files
}

// seedRulesB stores two pack versions for tenant b directly (owner
// connection, so that no B request changes B's audit chain): "b-shared",
// which A's publish case uploads too, and "b-secret", which A never sees.
// It returns b-secret's sha256.
func seedRulesB(t *testing.T, h *harness, b *peerTenant) string {
	t.Helper()
	var secret string
	for _, v := range []string{"b-shared", "b-secret"} {
		files := rulesLeakPackFiles(t, v)
		m := fstest.MapFS{}
		for n, c := range files {
			m[n] = &fstest.MapFile{Data: []byte(c)}
		}
		p, err := rules.Compile(m)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.db.Owner.Exec(context.Background(), `INSERT INTO rule_packs (tenant_id, version, sha256, name, files, published_by)
			VALUES ($1, $2, $3, $4, $5, 'b-informaticist') ON CONFLICT DO NOTHING`, b.id, v, p.SHA256(), p.Name(), files); err != nil {
			t.Fatal(err)
		}
		secret = p.SHA256()
	}
	return secret
}

func rulesRowsOf(t *testing.T, h *harness, tenant string) string {
	t.Helper()
	var s string
	err := h.db.Owner.QueryRow(context.Background(), `SELECT
		(SELECT coalesce(string_agg(version || sha256, ',' ORDER BY version), '') FROM rule_packs WHERE tenant_id = $1) || '|' ||
		(SELECT coalesce(string_agg(version, ',' ORDER BY id), '') FROM rule_pack_activations WHERE tenant_id = $1) || '|' ||
		(SELECT count(*)::text FROM rule_cases WHERE tenant_id = $1)`, tenant).Scan(&s)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// rulesLeakCase drives one rule-pack endpoint with tenant A's admin against
// tenant B's versions: B's versions are never listed or activated, and an
// upload of the same bytes under the same version lands in A only.
func rulesLeakCase(h *harness, b *peerTenant, name string) func(t *testing.T) {
	return func(t *testing.T) {
		bSHA := seedRulesB(t, h, b)
		before := rulesRowsOf(t, h, b.id)
		admin := mint(t, h.idp, "attacker-admin", "admin", libraryScopes, nil)
		noB := func(what string, r response) {
			t.Helper()
			for _, s := range []string{b.id, "b-secret", bSHA, "b-informaticist"} {
				if strings.Contains(string(r.body), s) {
					t.Errorf("%s: response names tenant B's %q: %s", what, s, r.body)
				}
			}
		}
		switch name {
		case "rules.list":
			r := h.call("GET", "/api/v1/rules/packs", admin, nil, nil)
			if r.status != http.StatusOK {
				t.Fatalf("list: %d %s", r.status, r.body)
			}
			noB("list", r)
		case "rules.activate":
			for _, v := range []string{"b-secret", bSHA} {
				r := h.call("POST", "/api/v1/rules/packs/"+v+"/activate", admin, nil, nil)
				if r.status != http.StatusNotFound {
					t.Errorf("activating B's version %s: status %d, want 404: %s", v, r.status, r.body)
				}
				noB("activate", r)
			}
		case "rules.publish":
			// The same bytes B stored under the same version: a new version of
			// A's (201, not a 409 that would tell A that B has it), nothing of B's.
			body, _ := json.Marshal(map[string]any{"files": rulesLeakPackFiles(t, "b-shared")})
			r := h.call("POST", "/api/v1/rules/packs", admin, body, nil)
			if r.status != http.StatusCreated {
				t.Fatalf("A's publish: %d %s", r.status, r.body)
			}
			if strings.Contains(string(r.body), b.id) || strings.Contains(string(r.body), "b-informaticist") {
				t.Errorf("publish response names tenant B: %s", r.body)
			}
		}
		if after := rulesRowsOf(t, h, b.id); after != before {
			t.Errorf("tenant B's rule tables changed: %s -> %s", before, after)
		}
	}
}
