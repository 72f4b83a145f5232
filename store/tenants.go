package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrNotFound is returned by Get-style lookups that find nothing.
var ErrNotFound = errors.New("store: not found")

// LLM modes.
const (
	LLMOff    = "off"    // baseline drafter only
	LLMShadow = "shadow" // the model drafts and is recorded; decisions use the baseline
	LLMOn     = "on"     // the model's (grounded) drafts are used
)

// Issuer binds an identity provider (and optionally specific clients) to a tenant.
type Issuer struct {
	Issuer    string   `json:"issuer"`
	JWKSURL   string   `json:"jwks_url"`
	Audience  string   `json:"audience,omitempty"`
	ClientIDs []string `json:"client_ids,omitempty"`
}

// FHIRConfig is the tenant's FHIR server. Its bearer token lives in Secrets.
type FHIRConfig struct {
	BaseURL               string `json:"base_url"`
	AllowInsecureLoopback bool   `json:"allow_insecure_loopback,omitempty"`
	ObservationDays       int    `json:"observation_days,omitempty"`
	MaxRetrySeconds       int    `json:"max_retry_seconds,omitempty"`
}

// LLMEndpoint is one model endpoint the tenant allows; BAA marks it as covered
// by a business associate agreement. Only BAA endpoints may be called.
type LLMEndpoint struct {
	BaseURL string `json:"base_url"`
	BAA     bool   `json:"baa"`
}

// LLMConfig selects the drafter. The API key lives in Secrets.
type LLMConfig struct {
	Mode                  string        `json:"mode"`
	BaseURL               string        `json:"base_url,omitempty"`
	Model                 string        `json:"model,omitempty"`
	TimeoutSeconds        float64       `json:"timeout_seconds,omitempty"`
	Temperature           *float32      `json:"temperature,omitempty"`
	Allowlist             []LLMEndpoint `json:"allowlist,omitempty"`
	AllowInsecureLoopback bool          `json:"allow_insecure_loopback,omitempty"`
}

// TenantConfig is everything the registry holds about a tenant except secrets.
type TenantConfig struct {
	Issuers []Issuer   `json:"issuers"`
	FHIR    FHIRConfig `json:"fhir"`
	LLM     LLMConfig  `json:"llm"`
	// Thresholds maps a route (queue) to the minimum effective confidence for
	// SUGGESTED; "default" applies to routes not listed.
	Thresholds map[string]float64 `json:"thresholds"`
	Queues     []string           `json:"queues"`
	// QueueDepartments maps a queue to the department that owns its items
	// (department-scoped roles see other departments' items only through
	// the care team or break-the-glass). Unmapped queues belong to no department.
	QueueDepartments map[string]string `json:"queue_departments,omitempty"`
	NotifierURL      string            `json:"notifier_url,omitempty"`
	AckSLAMinutes    int               `json:"ack_sla_minutes,omitempty"`
	ExcludedLabels   []string          `json:"excluded_labels,omitempty"`
	// Rules is the per-tenant rule configuration (local code map, threshold
	// overrides), decoded by the rules engine.
	Rules json.RawMessage `json:"rules,omitempty"`
	// PseudonymSalt keys patient pseudonyms shown in logs and tables.
	PseudonymSalt string `json:"pseudonym_salt"`
}

// Secrets are sealed before storage.
type Secrets struct {
	FHIRToken string `json:"fhir_token,omitempty"`
	LLMAPIKey string `json:"llm_api_key,omitempty"`
}

// Tenant is one row of the registry.
type Tenant struct {
	ID         string
	Name       string
	Config     TenantConfig
	SecretsEnc []byte
	SecretsKey string
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// DefaultQueues are the queues a tenant gets unless it names its own.
var defaultQueues = []string{"oncall", "physician", "triage", "pharmacy", "front_desk"}

// DefaultQueues returns the queues a tenant gets unless it names its own.
func DefaultQueues() []string { return append([]string(nil), defaultQueues...) }

// WithDefaults fills unset fields.
func (c TenantConfig) WithDefaults() TenantConfig {
	if c.LLM.Mode == "" {
		c.LLM.Mode = LLMOff
	}
	if len(c.Queues) == 0 {
		c.Queues = DefaultQueues()
	}
	if c.Thresholds == nil {
		c.Thresholds = map[string]float64{"default": 0.8}
	}
	if c.AckSLAMinutes == 0 {
		c.AckSLAMinutes = 15
	}
	if c.LLM.TimeoutSeconds == 0 {
		c.LLM.TimeoutSeconds = 20
	}
	return c
}

// Validate names the first bad setting.
func (c TenantConfig) Validate() error {
	switch c.LLM.Mode {
	case LLMOff, LLMShadow, LLMOn:
	default:
		return fmt.Errorf("store: tenant llm.mode %q: want off, shadow or on", c.LLM.Mode)
	}
	if c.LLM.Mode != LLMOff {
		if c.LLM.BaseURL == "" || c.LLM.Model == "" {
			return fmt.Errorf("store: tenant llm.mode %s needs llm.base_url and llm.model", c.LLM.Mode)
		}
		allowed := false
		for _, e := range c.LLM.Allowlist {
			if e.BaseURL == c.LLM.BaseURL && e.BAA {
				allowed = true
			}
		}
		if !allowed {
			return fmt.Errorf("store: tenant llm.base_url is not on llm.allowlist with baa=true")
		}
	}
	if c.FHIR.BaseURL != "" {
		if u, err := url.Parse(c.FHIR.BaseURL); err != nil || !u.IsAbs() {
			return fmt.Errorf("store: tenant fhir.base_url must be an absolute URL")
		}
	}
	for route, th := range c.Thresholds {
		if th < 0 || th > 1 {
			return fmt.Errorf("store: tenant thresholds[%s] = %v: want 0..1", route, th)
		}
	}
	if c.NotifierURL != "" {
		if u, err := url.Parse(c.NotifierURL); err != nil || !u.IsAbs() {
			return fmt.Errorf("store: tenant notifier_url must be an absolute URL")
		}
	}
	for _, is := range c.Issuers {
		if is.Issuer == "" || is.JWKSURL == "" {
			return fmt.Errorf("store: tenant issuers need issuer and jwks_url")
		}
	}
	if c.LLM.TimeoutSeconds < 0 || c.AckSLAMinutes < 0 {
		return fmt.Errorf("store: tenant timeouts must not be negative")
	}
	return nil
}

// Threshold returns the confidence threshold for a route.
func (c TenantConfig) Threshold(route string) float64 {
	if t, ok := c.Thresholds[route]; ok {
		return t
	}
	if t, ok := c.Thresholds["default"]; ok {
		return t
	}
	return 0.8
}

// GetTenant reads one tenant from the registry.
func GetTenant(ctx context.Context, q Querier, id string) (*Tenant, error) {
	var t Tenant
	var cfg []byte
	err := q.QueryRow(ctx, `SELECT id, name, config, secrets, coalesce(secrets_key, ''), created_at, updated_at FROM tenants WHERE id = $1`, id).
		Scan(&t.ID, &t.Name, &cfg, &t.SecretsEnc, &t.SecretsKey, &t.CreatedAt, &t.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("store: tenant %q: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("store: get tenant: %w", err)
	}
	if err := json.Unmarshal(cfg, &t.Config); err != nil {
		return nil, fmt.Errorf("store: tenant %q config: %w", id, err)
	}
	t.Config = t.Config.WithDefaults()
	return &t, nil
}

// ListTenants returns every tenant, ordered by id.
func ListTenants(ctx context.Context, q Querier) ([]*Tenant, error) {
	rows, err := q.Query(ctx, `SELECT id FROM tenants ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("store: list tenants: %w", err)
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: list tenants: %w", err)
	}
	out := make([]*Tenant, 0, len(ids))
	for _, id := range ids {
		t, err := GetTenant(ctx, q, id)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, nil
}

// PutTenant inserts or updates a tenant (owner connection: the app role may only read the registry).
func PutTenant(ctx context.Context, q Querier, t *Tenant) error {
	if !ValidTenantID(t.ID) {
		return fmt.Errorf("store: tenant id %q: want 2-63 chars of a-z, 0-9 and '-'", t.ID)
	}
	cfg := t.Config.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return err
	}
	b, err := json.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("store: encode tenant config: %w", err)
	}
	_, err = q.Exec(ctx, `INSERT INTO tenants (id, name, config, secrets, secrets_key) VALUES ($1, $2, $3, $4, nullif($5, ''))
		ON CONFLICT (id) DO UPDATE SET name = excluded.name, config = excluded.config,
			secrets = coalesce(excluded.secrets, tenants.secrets), secrets_key = coalesce(excluded.secrets_key, tenants.secrets_key), updated_at = now()`,
		t.ID, t.Name, b, t.SecretsEnc, t.SecretsKey)
	if err != nil {
		return fmt.Errorf("store: put tenant: %w", err)
	}
	return nil
}

// Querier is what pgx.Tx, *pgx.Conn and *pgxpool.Pool have in common.
type Querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}
