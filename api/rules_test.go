package api

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/access"
	"github.com/vigil-health/vigil/internal/testdb"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
)

type fakeAuth map[string]access.Principal

func (f fakeAuth) Validate(_ context.Context, raw string) (*access.Principal, error) {
	p, ok := f[raw]
	if !ok {
		return nil, &access.TokenError{Reason: access.ReasonMalformed}
	}
	return &p, nil
}

type fakeIssuers map[string][]string

func (f fakeIssuers) TenantsForIssuer(_ context.Context, issuer, _ string) ([]string, error) {
	return f[issuer], nil
}

type nopEnqueue struct{}

func (nopEnqueue) EnqueueTriage(context.Context, pgx.Tx, string, string) (int64, error) {
	return 1, nil
}
func (nopEnqueue) EnqueueDelivery(context.Context, pgx.Tx, string, string) (int64, error) {
	return 1, nil
}
func (nopEnqueue) EnqueueDraft(context.Context, pgx.Tx, string, string) (int64, error) { return 1, nil }

const libraryScopes = "user/Library.c user/Library.u user/Library.rs"

type rulesAPI struct {
	t   *testing.T
	srv *httptest.Server
	db  *testdb.DB
}

func setupRulesAPI(t *testing.T) *rulesAPI {
	t.Helper()
	db := testdb.New(t)
	for _, id := range []string{"clinic-a", "clinic-b"} {
		if err := store.PutTenant(context.Background(), db.Owner, &store.Tenant{ID: id, Name: id}); err != nil {
			t.Fatal(err)
		}
	}
	key, err := seal.NewLocalKey(make([]byte, 32))
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.New(key)
	if err != nil {
		t.Fatal(err)
	}
	scopes := strings.Fields(libraryScopes)
	auth := fakeAuth{
		"admin-a": {Subject: "informaticist-a", Issuer: "iss-a", ClientID: "c", Role: access.RoleAdmin, Scopes: scopes},
		"admin-b": {Subject: "informaticist-b", Issuer: "iss-b", ClientID: "c", Role: access.RoleAdmin, Scopes: scopes},
		"nurse-a": {Subject: "nurse-a", Issuer: "iss-a", ClientID: "c", Role: access.RoleNurse, Scopes: scopes},
		"admin-a-readonly": {Subject: "informaticist-a", Issuer: "iss-a", ClientID: "c", Role: access.RoleAdmin,
			Scopes: []string{"user/Library.rs"}},
	}
	s, err := New(Deps{DB: db.App, Enqueue: nopEnqueue{}, Sealer: sealer, Auth: auth,
		Issuers: fakeIssuers{"iss-a": {"clinic-a"}, "iss-b": {"clinic-b"}}, Policy: &access.Policy{}}, Config{})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return &rulesAPI{t: t, srv: srv, db: db}
}

func (a *rulesAPI) do(method, path, token string, body any) (int, map[string]any) {
	a.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			a.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, err := http.NewRequest(method, a.srv.URL+path, rd)
	if err != nil {
		a.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// packBody is the default pack renamed to version, with replacements applied to analytes.yaml.
func packBody(t *testing.T, version string, analytes ...string) map[string]any {
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
	for i := 0; i+1 < len(analytes); i += 2 {
		files["analytes.yaml"] = strings.Replace(files["analytes.yaml"], analytes[i], analytes[i+1], 1)
	}
	return map[string]any{"files": files}
}

func TestRulesAPI(t *testing.T) {
	t.Parallel()
	a := setupRulesAPI(t)

	t.Run("a bad pack is refused whole with file, rule and position", func(t *testing.T) {
		files := map[string]string{}
		for _, n := range []string{"pack.yaml", "analytes.yaml", "lexicon.yaml", "critical.rules.yaml"} {
			b, err := os.ReadFile("../rules/testdata/badpack/" + n)
			if err != nil {
				t.Fatal(err)
			}
			files[n] = string(b)
		}
		code, out := a.do("POST", "/api/v1/rules/packs", "admin-a", map[string]any{"files": files})
		if code != http.StatusBadRequest {
			t.Fatalf("status %d: %v", code, out)
		}
		errs, _ := out["errors"].([]any)
		if len(errs) == 0 {
			t.Fatalf("no compile errors in %v", out)
		}
		e := errs[0].(map[string]any)
		if e["file"] != "critical.rules.yaml" || e["rule_id"] != "critical-potassium-low" || e["line"].(float64) < 1 || e["column"].(float64) < 1 || e["message"] == "" {
			t.Errorf("compile error %v", e)
		}
	})

	tests := []struct {
		name   string
		method string
		path   string
		token  string
		body   any
		status int
		check  func(t *testing.T, out map[string]any)
	}{
		{"nurse may not publish", "POST", "/api/v1/rules/packs", "nurse-a", packBody(t, "site-1"), http.StatusForbidden, nil},
		{"scope user/Library.c required", "POST", "/api/v1/rules/packs", "admin-a-readonly", packBody(t, "site-1"), http.StatusForbidden, nil},
		{"not a pack file", "POST", "/api/v1/rules/packs", "admin-a", map[string]any{"files": map[string]string{"../etc/passwd": "x"}}, http.StatusBadRequest, nil},
		{"publish", "POST", "/api/v1/rules/packs", "admin-a", packBody(t, "site-1"), http.StatusCreated, func(t *testing.T, out map[string]any) {
			if out["version"] != "site-1" || len(out["sha256"].(string)) != 64 {
				t.Errorf("published %v", out)
			}
		}},
		{"publish again: identical, no-op", "POST", "/api/v1/rules/packs", "admin-a", packBody(t, "site-1"), http.StatusOK, nil},
		{"same version, other bytes", "POST", "/api/v1/rules/packs", "admin-a", packBody(t, "site-1", "    low: 120\n    high: 160", "    low: 120\n    high: 150"), http.StatusConflict, nil},
		{"publish a pack that fails a golden case", "POST", "/api/v1/rules/packs", "admin-a", packBody(t, "k-7", "    low: 2.8\n    high: 6.2", "    low: 2.8\n    high: 7.0"), http.StatusCreated, nil},
		{"tenant B does not see A's versions", "GET", "/api/v1/rules/packs", "admin-b", nil, http.StatusOK, func(t *testing.T, out map[string]any) {
			if vs := out["versions"].([]any); len(vs) != 0 {
				t.Errorf("B lists %v", vs)
			}
		}},
		{"tenant B cannot activate A's version", "POST", "/api/v1/rules/packs/site-1/activate", "admin-b", nil, http.StatusNotFound, nil},
		{"nurse may not activate", "POST", "/api/v1/rules/packs/site-1/activate", "nurse-a", nil, http.StatusForbidden, nil},
		{"failing golden case refuses activation", "POST", "/api/v1/rules/packs/k-7/activate", "admin-a", nil, http.StatusUnprocessableEntity, func(t *testing.T, out map[string]any) {
			failed, _ := out["failed_cases"].([]any)
			if len(failed) == 0 || !strings.Contains(fmt.Sprint(failed), "potassium 6.9") {
				t.Errorf("failed cases %v", out)
			}
		}},
		{"activate", "POST", "/api/v1/rules/packs/site-1/activate", "admin-a", nil, http.StatusOK, func(t *testing.T, out map[string]any) {
			if out["version"] != "site-1" || out["cases_passed"] != out["cases_total"] {
				t.Errorf("activation %v", out)
			}
		}},
		{"list shows the active version", "GET", "/api/v1/rules/packs", "admin-a", nil, http.StatusOK, func(t *testing.T, out map[string]any) {
			if act := out["active"].(map[string]any); act["version"] != "site-1" || act["default"] != false {
				t.Errorf("active %v", act)
			}
			if vs := out["versions"].([]any); len(vs) != 2 {
				t.Errorf("versions %v", vs)
			}
		}},
		{"unknown version", "POST", "/api/v1/rules/packs/nope/activate", "admin-a", nil, http.StatusNotFound, nil},
	}
	for _, tc := range tests { // in order: later steps depend on earlier ones
		code, out := a.do(tc.method, tc.path, tc.token, tc.body)
		if code != tc.status {
			t.Errorf("%s: status %d, want %d: %v", tc.name, code, tc.status, out)
			continue
		}
		if tc.check != nil {
			t.Run(tc.name, func(t *testing.T) { tc.check(t, out) })
		}
	}

	var verbs []string
	rows, err := a.db.Owner.Query(context.Background(), `SELECT verb || ' ' || outcome FROM audit_events WHERE tenant_id = 'clinic-a' AND verb LIKE 'rules.%' ORDER BY seq`)
	if err != nil {
		t.Fatal(err)
	}
	verbs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"rules.publish failure", "rules.publish failure", "rules.publish success", "rules.publish success",
		"rules.publish failure", "rules.publish success", "rules.activate failure", "rules.activate success", "rules.list success", "rules.activate failure"}
	if strings.Join(verbs, ",") != strings.Join(want, ",") {
		t.Errorf("audit:\n got %v\nwant %v", verbs, want)
	}
}
