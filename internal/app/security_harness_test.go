package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/internal/devidp"
	"github.com/vigil-health/vigil/internal/fixtures"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage"
)

// Helpers shared by the security_*_test.go files.

// syncBuffer is an io.Writer safe for the concurrent writers of one process
// (request handlers, River, the HTTP server's error log).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// captureLogger logs everything (debug and up) as JSON into a buffer.
func captureLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

// peerTenant is a second tenant on the same database and the same app: its
// own identity provider (issuer), FHIR server and notifier, with the same
// fixture data, so both tenants have the same patient and resource ids.
type peerTenant struct {
	id    string
	idp   *devidp.IdP
	refs  map[string]fhir.Ref
	mu    sync.Mutex
	hooks int
}

// addTenant registers another tenant. Call it before the first API request,
// so the app's token validator is built knowing its issuer.
func (h *harness) addTenant(id string) *peerTenant {
	h.t.Helper()
	p := &peerTenant{id: id, refs: map[string]fhir.Ref{}}
	st := fhir.NewStore()
	refs, err := fixtures.Load(st)
	if err != nil {
		h.t.Fatal(err)
	}
	for k, v := range refs {
		p.refs[k] = v
	}
	fsrv := httptest.NewServer(fhir.NewHandler(st))
	h.t.Cleanup(fsrv.Close)
	p.idp, err = devidp.New("http://127.0.0.1/test-idp-"+id, "vigil", nil)
	if err != nil {
		h.t.Fatal(err)
	}
	jwks := httptest.NewServer(p.idp.JWKSHandler())
	h.t.Cleanup(jwks.Close)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		p.mu.Lock()
		p.hooks++
		p.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	h.t.Cleanup(hook.Close)
	cfg := store.TenantConfig{
		Issuers:       []store.Issuer{{Issuer: p.idp.Issuer, JWKSURL: jwks.URL + "/jwks"}},
		FHIR:          store.FHIRConfig{BaseURL: fsrv.URL, AllowInsecureLoopback: true, MaxRetrySeconds: 2},
		NotifierURL:   hook.URL,
		PseudonymSalt: "test-salt-" + id,
	}
	if err := store.PutTenant(context.Background(), h.db.Owner, &store.Tenant{ID: id, Name: id, Config: cfg}); err != nil {
		h.t.Fatal(err)
	}
	return p
}

func (p *peerTenant) hookCount() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.hooks
}

// mint signs a token with idp for subject, role and scopes; extra claims override.
func mint(t testing.TB, idp *devidp.IdP, subject, role, scopes string, extra map[string]any) string {
	t.Helper()
	tok, err := idp.Mint(devidp.Token{Subject: subject, ClientID: "client-" + subject, Role: role, Scopes: scopes, Extra: extra})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// response is one API answer.
type response struct {
	status    int
	header    http.Header
	body      []byte
	requestID string
}

// call sends a request to the app's API with optional bearer token and headers.
func (h *harness) call(method, path, token string, body []byte, header map[string]string) response {
	h.t.Helper()
	req, err := http.NewRequest(method, h.api.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return response{status: resp.StatusCode, header: resp.Header, body: b, requestID: resp.Header.Get("X-Request-Id")}
}

// postRefAs posts a plain-reference intake with token and returns the intake event id.
func (h *harness) postRefAs(token string, ref fhir.Ref) string {
	h.t.Helper()
	body, _ := json.Marshal(map[string]string{"reference": ref.String()})
	r := h.call("POST", "/fhir/r4/intake", token, body, nil)
	if r.status != http.StatusAccepted {
		h.t.Fatalf("intake %s: status %d: %s", ref, r.status, r.body)
	}
	var out struct {
		Accepted []struct {
			IntakeEventID string `json:"intake_event_id"`
		} `json:"accepted"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil || len(out.Accepted) != 1 {
		h.t.Fatalf("intake response %s: %v", r.body, err)
	}
	return out.Accepted[0].IntakeEventID
}

// waitDecidedIn waits until tenant's decision of ref is past the escalation stage.
func (h *harness) waitDecidedIn(tenant string, ref fhir.Ref) {
	h.t.Helper()
	h.waitFor("decision of "+ref.String()+" in "+tenant, func() bool {
		var stage string
		err := store.New(h.db.Owner).InTenant(context.Background(), tenant, func(tx pgx.Tx) error {
			return tx.QueryRow(context.Background(), `SELECT stage FROM decisions WHERE tenant_id = $1 AND trigger_type = $2 AND trigger_id = $3`,
				tenant, ref.Type, ref.ID).Scan(&stage)
		})
		return err == nil && stage != triage.StageEscalated
	})
}

// strings1 runs a one-column query through the owner pool (a superuser: no RLS).
func (h *harness) strings1(sql string, args ...any) []string {
	h.t.Helper()
	rows, err := h.db.Owner.Query(context.Background(), sql, args...)
	if err != nil {
		h.t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		h.t.Fatal(err)
	}
	return out
}

// auditOf returns "tenant outcome verb" for every audit event of a request id.
func (h *harness) auditOf(requestID string) []string {
	h.t.Helper()
	return h.strings1(`SELECT tenant_id || ' ' || outcome || ' ' || verb FROM audit_events WHERE request_id = $1 ORDER BY seq`, requestID)
}
