package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/access"
	"github.com/vigil-health/vigil/api"
	"github.com/vigil-health/vigil/rules"
	"github.com/vigil-health/vigil/seal"
	"github.com/vigil-health/vigil/store"
	"github.com/vigil-health/vigil/triage"
	"github.com/vigil-health/vigil/workers"
)

// Config assembles a process. Zero values take the defaults noted.
type Config struct {
	// AppDatabaseURL connects as the non-owner app role. Required.
	AppDatabaseURL string
	// Keys wraps the tenants' data keys. Required.
	Keys seal.KeyProvider
	// Packs serves each tenant's active rule pack (default: the embedded default pack for all).
	Packs triage.PackProvider
	// Audience is the API's token audience (default "vigil").
	Audience string
	// AllowInsecureLoopback permits http:// to loopback hosts for FHIR, LLM,
	// JWKS and notifier URLs (development and tests only).
	AllowInsecureLoopback bool
	// HTTPClient is used for outbound calls (default: TLS 1.2+ client with 30 s timeout).
	HTTPClient *http.Client
	// FHIRMaxRetry bounds FHIR retries (default 2 min); FHIRBaseBackoff its first backoff.
	FHIRMaxRetry    time.Duration
	FHIRBaseBackoff time.Duration
	// LLMBaseBackoff overrides the drafter's retry backoff.
	LLMBaseBackoff time.Duration
	// RateLimit per client and per user (default 600 requests a minute).
	RateLimit access.LimiterConfig
	// NoRateLimit disables rate limiting (benchmarks of the pipeline only).
	NoRateLimit bool
	// Sources and Drafters override the registry-driven providers (fault-injection tests).
	Sources  triage.SourceProvider
	Drafters triage.DrafterProvider
	Workers  workers.Config
	API      api.Config
	Pipeline triage.Config
	Now      func() time.Time
	Logger   *slog.Logger
}

// App is a running Vigil process.
type App struct {
	DB       *store.DB
	Sealer   *seal.Sealer
	Runner   *workers.Runner
	Pipeline *triage.Pipeline
	API      *api.Server
	cfg      Config
}

// New connects and assembles everything; Start runs the workers.
func New(ctx context.Context, cfg Config) (*App, error) {
	if cfg.AppDatabaseURL == "" || cfg.Keys == nil {
		return nil, errors.New("app: AppDatabaseURL and Keys are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Audience == "" {
		cfg.Audience = "vigil"
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: access.ClientTLSConfig()}}
	}
	// The embedded default pack compiles at startup or the process stops.
	defaultPack, err := rules.DefaultPack()
	if err != nil {
		return nil, fmt.Errorf("app: default rule pack: %w", err)
	}
	db, err := store.Open(ctx, cfg.AppDatabaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Packs == nil {
		// Each tenant's active pack from the database (default pack when none
		// is activated); every active pack must compile at startup, or the
		// process stops naming tenant, version, file, rule and position.
		ps, err := triage.NewPackStore(db, triage.PackStoreConfig{Default: defaultPack, Now: cfg.Now, Logger: cfg.Logger})
		if err == nil {
			err = ps.Preload(ctx)
		}
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("app: rule packs: %w", err)
		}
		cfg.Packs = ps
	}
	a := &App{DB: db, cfg: cfg}
	if a.Sealer, err = seal.New(cfg.Keys); err != nil {
		db.Close()
		return nil, err
	}
	checkURL := func(u string) error { return access.CheckOutboundURL(u, cfg.AllowInsecureLoopback) }
	a.Runner, err = workers.New(workers.Deps{DB: db, Notifier: &triage.WebhookNotifier{Client: cfg.HTTPClient, CheckURL: checkURL},
		Now: cfg.Now, Logger: cfg.Logger}, cfg.Workers)
	if err != nil {
		db.Close()
		return nil, err
	}
	sources, drafters := cfg.Sources, cfg.Drafters
	if sources == nil {
		sources = &triage.TenantSources{DB: db, Sealer: a.Sealer, HTTPClient: cfg.HTTPClient, MaxRetry: cfg.FHIRMaxRetry, BaseBackoff: cfg.FHIRBaseBackoff}
	}
	if drafters == nil {
		drafters = &triage.TenantDrafters{DB: db, Sealer: a.Sealer, HTTPClient: cfg.HTTPClient, BaseBackoff: cfg.LLMBaseBackoff}
	}
	a.Pipeline, err = triage.NewPipeline(triage.Deps{
		DB: db, Sealer: a.Sealer, Sources: sources, Drafters: drafters,
		Packs: cfg.Packs, Enqueue: a.Runner, Now: cfg.Now, Logger: cfg.Logger,
	}, cfg.Pipeline)
	if err != nil {
		db.Close()
		return nil, err
	}
	a.Runner.SetProcessor(a.Pipeline)
	var limiter api.RateLimiter
	if !cfg.NoRateLimit {
		rl := cfg.RateLimit
		if rl.Limit == 0 {
			rl.Limit, rl.Window = 600, time.Minute
		}
		if rl.Now == nil {
			rl.Now = cfg.Now
		}
		l, err := access.NewLimiter(db, rl)
		if err != nil {
			db.Close()
			return nil, err
		}
		limiter = l
	}
	a.API, err = api.New(api.Deps{
		DB: db, Enqueue: a.Runner, Sealer: a.Sealer,
		Auth:    &registryAuth{db: db, cfg: cfg},
		Issuers: access.NewRegistryIssuers(db),
		Policy:  &access.Policy{CareTeam: access.NewCareTeam(db), Grants: access.NewGrantChecker(db), Now: cfg.Now},
		Limiter: limiter, Now: cfg.Now, Logger: cfg.Logger, Ready: a.fhirReachable,
	}, cfg.API)
	if err != nil {
		db.Close()
		return nil, err
	}
	return a, nil
}

// fhirReachable is part of /readyz: every tenant's FHIR server answers its
// capability statement (any non-5xx answer counts: the server is up).
func (a *App) fhirReachable(ctx context.Context) error {
	var tenants []*store.Tenant
	if err := a.DB.Global(ctx, func(tx pgx.Tx) error {
		var err error
		tenants, err = store.ListTenants(ctx, tx)
		return err
	}); err != nil {
		return errors.New("tenant registry")
	}
	for _, t := range tenants {
		base := t.Config.FHIR.BaseURL
		if base == "" {
			continue
		}
		if err := access.CheckOutboundURL(base, a.cfg.AllowInsecureLoopback); err != nil {
			return fmt.Errorf("fhir server of tenant %s: not allowed", t.ID)
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(base, "/")+"/metadata", nil)
		if err != nil {
			return fmt.Errorf("fhir server of tenant %s", t.ID)
		}
		resp, err := a.cfg.HTTPClient.Do(req)
		if err != nil {
			return fmt.Errorf("fhir server of tenant %s", t.ID)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			return fmt.Errorf("fhir server of tenant %s", t.ID)
		}
	}
	return nil
}

// Start runs the River workers.
func (a *App) Start(ctx context.Context) error { return a.Runner.Start(ctx) }

// Close stops the workers (waiting up to the context) and closes the pool.
func (a *App) Close(ctx context.Context) error {
	err := a.Runner.Stop(ctx)
	a.DB.Close()
	return err
}

// registryAuth validates tokens against the JWKS of every issuer in the
// tenant registry, rebuilding its validator when the registry changes.
type registryAuth struct {
	db  *store.DB
	cfg Config

	mu      sync.Mutex
	sig     string
	v       *access.Validator
	checked time.Time
}

func (r *registryAuth) Validate(ctx context.Context, raw string) (*access.Principal, error) {
	v, err := r.validator(ctx, false)
	if err != nil {
		return nil, err
	}
	p, err := v.Validate(ctx, raw)
	var te *access.TokenError
	if errors.As(err, &te) && te.Reason == access.ReasonUnknownIssuer {
		// A tenant may have been added since: reload at most every few seconds.
		if v2, err2 := r.validator(ctx, true); err2 == nil && v2 != v {
			return v2.Validate(ctx, raw)
		}
	}
	return p, err
}

func (r *registryAuth) validator(ctx context.Context, reload bool) (*access.Validator, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.v != nil && (!reload || time.Since(r.checked) < 5*time.Second) {
		return r.v, nil
	}
	r.checked = time.Now()
	var tenants []*store.Tenant
	if err := r.db.Global(ctx, func(tx pgx.Tx) error {
		var err error
		tenants, err = store.ListTenants(ctx, tx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("app: load issuers: %w", err)
	}
	urls := map[string]string{}
	sig := ""
	for _, t := range tenants {
		for _, is := range t.Config.Issuers {
			urls[is.Issuer] = is.JWKSURL
			sig += is.Issuer + "=" + is.JWKSURL + ";"
		}
	}
	if r.v != nil && sig == r.sig {
		return r.v, nil
	}
	if len(urls) == 0 {
		// No tenant trusts any issuer yet: a validator that knows none rejects every token.
		urls["urn:vigil:no-issuer"] = "https://127.0.0.1/none"
	}
	v, err := access.NewValidator(access.ValidatorConfig{JWKSURLs: urls, Audience: r.cfg.Audience, HTTPClient: r.cfg.HTTPClient,
		AllowInsecureLoopback: r.cfg.AllowInsecureLoopback, Now: r.cfg.Now})
	if err != nil {
		return nil, fmt.Errorf("app: token validator: %w", err)
	}
	r.v, r.sig = v, sig
	return v, nil
}
