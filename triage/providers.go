package triage

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/fhir"
	"github.com/vigil-health/vigil/llm"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
)

const sealPurposeTenantSecrets = "tenant_secrets"

// SealTenantSecrets encrypts s for the tenant (tx scoped to it) and returns what PutTenant stores.
func SealTenantSecrets(ctx context.Context, tx pgx.Tx, sealer *seal.Sealer, tenantID string, s store.Secrets) ([]byte, string, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, "", err
	}
	return sealer.Seal(ctx, tx, tenantID, sealPurposeTenantSecrets, b)
}

// OpenTenantSecrets decrypts the tenant's secrets (empty when none are stored).
func OpenTenantSecrets(ctx context.Context, db *store.DB, sealer *seal.Sealer, t *store.Tenant) (store.Secrets, error) {
	var s store.Secrets
	if len(t.SecretsEnc) == 0 {
		return s, nil
	}
	err := db.InTenant(ctx, t.ID, func(tx pgx.Tx) error {
		b, err := sealer.Open(ctx, tx, t.ID, sealPurposeTenantSecrets, t.SecretsKey, t.SecretsEnc)
		if err != nil {
			return err
		}
		return json.Unmarshal(b, &s)
	})
	if err != nil {
		return s, fmt.Errorf("triage: tenant %s secrets: %w", t.ID, err)
	}
	return s, nil
}

// TenantSources builds a FHIR REST client per tenant from the registry, cached
// by configuration so a changed URL or token takes effect on the next job.
type TenantSources struct {
	DB          *store.DB
	Sealer      *seal.Sealer
	HTTPClient  *http.Client
	MaxRetry    time.Duration // bounded FHIR retry time (default 2 min; tenant may override)
	BaseBackoff time.Duration

	mu    sync.Mutex
	cache map[string]cachedSource
}

type cachedSource struct {
	sig string
	src fhir.Source
}

// Source implements SourceProvider.
func (ts *TenantSources) Source(ctx context.Context, t *store.Tenant) (fhir.Source, error) {
	if t.Config.FHIR.BaseURL == "" {
		return nil, fmt.Errorf("triage: tenant %s has no fhir.base_url", t.ID)
	}
	sig := fmt.Sprintf("%s|%v|%d|%s", t.Config.FHIR.BaseURL, t.Config.FHIR.AllowInsecureLoopback, t.Config.FHIR.MaxRetrySeconds, t.UpdatedAt)
	ts.mu.Lock()
	if c, ok := ts.cache[t.ID]; ok && c.sig == sig {
		ts.mu.Unlock()
		return c.src, nil
	}
	ts.mu.Unlock()
	secrets, err := OpenTenantSecrets(ctx, ts.DB, ts.Sealer, t)
	if err != nil {
		return nil, err
	}
	maxRetry := ts.MaxRetry
	if s := t.Config.FHIR.MaxRetrySeconds; s > 0 {
		maxRetry = time.Duration(s) * time.Second
	}
	cfg := fhir.ClientConfig{BaseURL: t.Config.FHIR.BaseURL, HTTPClient: ts.HTTPClient, MaxRetryTime: maxRetry,
		BaseBackoff: ts.BaseBackoff, AllowInsecureLoopback: t.Config.FHIR.AllowInsecureLoopback}
	if tok := secrets.FHIRToken; tok != "" {
		cfg.TokenSource = func(context.Context) (string, error) { return tok, nil }
	}
	c, err := fhir.NewClient(cfg)
	if err != nil {
		return nil, fmt.Errorf("triage: tenant %s fhir client: %w", t.ID, err)
	}
	ts.mu.Lock()
	if ts.cache == nil {
		ts.cache = map[string]cachedSource{}
	}
	ts.cache[t.ID] = cachedSource{sig: sig, src: c}
	ts.mu.Unlock()
	return c, nil
}

// TenantDrafters builds the OpenAI-compatible drafter per tenant, cached by
// configuration so its circuit breaker persists across jobs.
type TenantDrafters struct {
	DB         *store.DB
	Sealer     *seal.Sealer
	HTTPClient *http.Client
	// Backoff overrides the drafter's retry backoff (tests use tiny values).
	BaseBackoff time.Duration

	mu    sync.Mutex
	cache map[string]cachedDrafter
}

type cachedDrafter struct {
	sig string
	d   llm.Drafter
}

// Drafter implements DrafterProvider.
func (td *TenantDrafters) Drafter(ctx context.Context, t *store.Tenant) (llm.Drafter, error) {
	c := t.Config.LLM
	if c.Mode == store.LLMOff {
		return nil, nil
	}
	if err := llm.CheckAllowed(c.BaseURL, toEndpoints(c.Allowlist)); err != nil {
		return nil, err
	}
	sig := fmt.Sprintf("%s|%s|%v|%v|%s", c.BaseURL, c.Model, c.TimeoutSeconds, c.Temperature, t.UpdatedAt)
	td.mu.Lock()
	if cd, ok := td.cache[t.ID]; ok && cd.sig == sig {
		td.mu.Unlock()
		return cd.d, nil
	}
	td.mu.Unlock()
	secrets, err := OpenTenantSecrets(ctx, td.DB, td.Sealer, t)
	if err != nil {
		return nil, err
	}
	d, err := llm.NewOpenAI(llm.OpenAIConfig{
		BaseURL: c.BaseURL, Model: c.Model, APIKey: secrets.LLMAPIKey,
		Timeout: time.Duration(c.TimeoutSeconds * float64(time.Second)), Temperature: c.Temperature,
		AllowInsecureLoopback: c.AllowInsecureLoopback, HTTPClient: td.HTTPClient, BaseBackoff: td.BaseBackoff,
	})
	if err != nil {
		return nil, fmt.Errorf("triage: tenant %s drafter: %w", t.ID, err)
	}
	td.mu.Lock()
	if td.cache == nil {
		td.cache = map[string]cachedDrafter{}
	}
	td.cache[t.ID] = cachedDrafter{sig: sig, d: d}
	td.mu.Unlock()
	return d, nil
}

func toEndpoints(in []store.LLMEndpoint) []llm.Endpoint {
	out := make([]llm.Endpoint, len(in))
	for i, e := range in {
		out[i] = llm.Endpoint{BaseURL: e.BaseURL, BAA: e.BAA}
	}
	return out
}

// StaticPacks serves one compiled pack to every tenant.
type StaticPacks struct{ Pack *rules.Pack }

// Active implements PackProvider.
func (s StaticPacks) Active(context.Context, string) (*rules.Pack, error) { return s.Pack, nil }
