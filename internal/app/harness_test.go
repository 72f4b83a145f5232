package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/internal/app"
	"github.com/vigil-health/vigil/internal/devidp"
	"github.com/vigil-health/vigil/internal/fixtures"
	"github.com/vigil-health/vigil/internal/testdb"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage"
)

const tenantID = "clinic-a"

// harness is one isolated Vigil: its own database, FHIR server, IdP,
// notifier webhook and (optionally) OpenAI-compatible LLM server.
type harness struct {
	t       testing.TB
	db      *testdb.DB
	fhir    *fhir.Store
	fhirSrv *httptest.Server
	idp     *devidp.IdP
	app     *app.App
	api     *httptest.Server
	refs    map[string]fhir.Ref // scenario id → pinned ref

	mu    sync.Mutex
	hooks [][]byte
}

type harnessOpts struct {
	llmURL   string // "" → LLM mode off (baseline)
	llmMode  string
	drafters triage.DrafterProvider
	logger   *slog.Logger
	fhirWrap func(http.Handler) http.Handler
	appCfg   func(*app.Config)
}

func newHarness(t testing.TB, o harnessOpts) *harness {
	t.Helper()
	h := &harness{t: t, db: testdb.New(t)}
	ctx := context.Background()

	h.fhir = fhir.NewStore()
	var err error
	if h.refs, err = fixtures.Load(h.fhir); err != nil {
		t.Fatal(err)
	}
	var fh http.Handler = fhir.NewHandler(h.fhir)
	if o.fhirWrap != nil {
		fh = o.fhirWrap(fh)
	}
	h.fhirSrv = httptest.NewServer(fh)
	t.Cleanup(h.fhirSrv.Close)

	h.idp, err = devidp.New("http://127.0.0.1/test-idp", "vigil", nil)
	if err != nil {
		t.Fatal(err)
	}
	idpSrv := httptest.NewServer(h.idp.JWKSHandler())
	t.Cleanup(idpSrv.Close)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		h.hooks = append(h.hooks, b)
		h.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)

	cfg := store.TenantConfig{
		Issuers:       []store.Issuer{{Issuer: h.idp.Issuer, JWKSURL: idpSrv.URL + "/jwks"}},
		FHIR:          store.FHIRConfig{BaseURL: h.fhirSrv.URL, AllowInsecureLoopback: true, MaxRetrySeconds: 2},
		NotifierURL:   hook.URL,
		PseudonymSalt: "test-salt",
	}
	if o.llmURL != "" {
		mode := o.llmMode
		if mode == "" {
			mode = store.LLMOn
		}
		cfg.LLM = store.LLMConfig{Mode: mode, BaseURL: o.llmURL, Model: "test-model", TimeoutSeconds: 5,
			Allowlist: []store.LLMEndpoint{{BaseURL: o.llmURL, BAA: true}}, AllowInsecureLoopback: true}
	}
	if err := store.PutTenant(ctx, h.db.Owner, &store.Tenant{ID: tenantID, Name: "Clinic A", Config: cfg}); err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	_, _ = rand.Read(key)
	kek, err := seal.NewLocalKey(key)
	if err != nil {
		t.Fatal(err)
	}
	logger := o.logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	acfg := app.Config{AppDatabaseURL: h.db.AppURL, Keys: kek, Audience: "vigil", AllowInsecureLoopback: true,
		FHIRBaseBackoff: 10 * time.Millisecond, LLMBaseBackoff: 10 * time.Millisecond, Drafters: o.drafters, Logger: logger, NoRateLimit: true}
	if o.appCfg != nil {
		o.appCfg(&acfg)
	}
	h.app, err = app.New(ctx, acfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.app.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = h.app.Close(ctx)
	})
	h.api = httptest.NewServer(h.app.API)
	t.Cleanup(h.api.Close)
	return h
}

func (h *harness) token(role, scopes string) string {
	h.t.Helper()
	tok, err := h.idp.Mint(devidp.Token{Subject: "user-" + role, ClientID: "client-" + role, Role: role, Scopes: scopes})
	if err != nil {
		h.t.Fatal(err)
	}
	return tok
}

func (h *harness) integrationToken() string { return h.token("integration", "system/Subscription.c") }

func (h *harness) do(method, path, token string, body []byte) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.api.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// postRef posts a plain reference intake and returns the intake event id.
func (h *harness) postRef(ref fhir.Ref) string {
	h.t.Helper()
	body, _ := json.Marshal(map[string]string{"reference": ref.String()})
	status, resp := h.do("POST", "/fhir/r4/intake", h.integrationToken(), body)
	if status != http.StatusAccepted {
		h.t.Fatalf("intake %s: status %d: %s", ref, status, resp)
	}
	var out struct {
		Accepted []struct {
			IntakeEventID string `json:"intake_event_id"`
		} `json:"accepted"`
	}
	if err := json.Unmarshal(resp, &out); err != nil || len(out.Accepted) != 1 {
		h.t.Fatalf("intake response %s: %v", resp, err)
	}
	return out.Accepted[0].IntakeEventID
}

// decisionRow is a decision as another connection (the owner pool) sees it.
type decisionRow struct {
	ID, Disposition, Priority, Stage string
	Flags                            []string
	Revision                         int
}

// decisionsFor reads the decisions of one trigger through the owner pool, a
// different connection from the app's.
func (h *harness) decisionsFor(ref fhir.Ref) []decisionRow {
	h.t.Helper()
	ctx := context.Background()
	var out []decisionRow
	err := store.New(h.db.Owner).InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT id::text, disposition, priority, stage, flags, revision FROM decisions
			WHERE trigger_type = $1 AND trigger_id = $2 ORDER BY created_at`, ref.Type, ref.ID)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var d decisionRow
			if err := rows.Scan(&d.ID, &d.Disposition, &d.Priority, &d.Stage, &d.Flags, &d.Revision); err != nil {
				return err
			}
			out = append(out, d)
		}
		return rows.Err()
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// waitFor polls cond until it holds; the bound is generous because this
// machine is shared (it is a wait, not a timing assertion).
func (h *harness) waitFor(what string, cond func() bool) {
	h.t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			h.t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (h *harness) waitDecided(ref fhir.Ref) decisionRow {
	h.t.Helper()
	var got decisionRow
	h.waitFor("decision of "+ref.String(), func() bool {
		ds := h.decisionsFor(ref)
		if len(ds) > 0 && ds[0].Stage != triage.StageEscalated {
			got = ds[0]
			return true
		}
		return false
	})
	return got
}

func (h *harness) hookCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.hooks)
}

func (h *harness) count(sql string, args ...any) int {
	h.t.Helper()
	ctx := context.Background()
	var n int
	err := store.New(h.db.Owner).InTenant(ctx, tenantID, func(tx pgx.Tx) error {
		return tx.QueryRow(ctx, sql, args...).Scan(&n)
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return n
}
