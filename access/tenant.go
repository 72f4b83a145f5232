package access

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vigil-health/vigil/store"
)

// TenantIssuers says which tenants a token from issuer and clientID may act for.
type TenantIssuers interface {
	TenantsForIssuer(ctx context.Context, issuer, clientID string) ([]string, error)
}

// BindTenant sets p.TenantID after checking that p's issuer (and client id,
// where the tenant lists client ids) is bound to the tenant in the registry.
//
// The tenant asked for is requestedTenant (from the URL or header); if that
// is empty, the token's "tenant" claim; if that is empty too and the issuer
// is bound to exactly one tenant, that one. A "tenant" claim that disagrees
// with requestedTenant, or names a tenant the issuer is not bound to, is
// refused: a tenant claim alone proves nothing. Errors wrap ErrWrongTenant
// (or the registry's error).
func BindTenant(ctx context.Context, p *Principal, requestedTenant string, reg TenantIssuers) error {
	if p == nil || reg == nil {
		return fmt.Errorf("%w: no principal or registry", ErrWrongTenant)
	}
	if requestedTenant != "" && p.TenantClaim != "" && requestedTenant != p.TenantClaim {
		return fmt.Errorf("%w: tenant claim does not match the requested tenant", ErrWrongTenant)
	}
	want := requestedTenant
	if want == "" {
		want = p.TenantClaim
	}
	tenants, err := reg.TenantsForIssuer(ctx, p.Issuer, p.ClientID)
	if err != nil {
		return fmt.Errorf("access: bind tenant: %w", err)
	}
	if want == "" {
		if len(tenants) != 1 {
			return fmt.Errorf("%w: tenant not specified", ErrWrongTenant)
		}
		want = tenants[0]
	}
	if !slices.Contains(tenants, want) {
		return fmt.Errorf("%w: issuer or client not bound to the tenant", ErrWrongTenant)
	}
	p.TenantID = want
	return nil
}

// IssuerBinding is one entry of a tenant's config "issuers" list (the same
// JSON as store.Issuer).
type IssuerBinding struct {
	Issuer    string   `json:"issuer"`
	JWKSURL   string   `json:"jwks_url,omitempty"`
	ClientIDs []string `json:"client_ids,omitempty"`
	Audience  string   `json:"audience,omitempty"`
}

// Binds reports whether the binding admits a token from issuer and clientID:
// the issuer must match exactly, and when ClientIDs is non-empty the client
// must be listed.
func (b IssuerBinding) Binds(issuer, clientID string) bool {
	if b.Issuer == "" || b.Issuer != issuer {
		return false
	}
	return len(b.ClientIDs) == 0 || (clientID != "" && slices.Contains(b.ClientIDs, clientID))
}

// NewRegistryIssuers returns a TenantIssuers that reads the global tenants
// registry (config->'issuers') on every call.
func NewRegistryIssuers(db *store.DB) TenantIssuers { return registryIssuers{db: db} }

type registryIssuers struct{ db *store.DB }

func (r registryIssuers) TenantsForIssuer(ctx context.Context, issuer, clientID string) ([]string, error) {
	if issuer == "" {
		return nil, nil
	}
	var out []string
	err := r.db.Global(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, config->'issuers' FROM tenants
			WHERE jsonb_typeof(config->'issuers') = 'array'
			  AND config->'issuers' @> jsonb_build_array(jsonb_build_object('issuer', $1::text))
			ORDER BY id`, issuer)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var raw []byte
			if err := rows.Scan(&id, &raw); err != nil {
				return err
			}
			var bs []IssuerBinding
			if err := json.Unmarshal(raw, &bs); err != nil {
				continue // a malformed tenant config binds nothing
			}
			for _, b := range bs {
				if b.Binds(issuer, clientID) {
					out = append(out, id)
					break
				}
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("access: tenant registry: %w", err)
	}
	return out, nil
}

// maxIssuerCacheEntries bounds CachedTenantIssuers (issuer × client pairs
// come from validated tokens, so the set is small; the bound is a backstop).
const maxIssuerCacheEntries = 4096

// CachedTenantIssuers wraps inner with a cache of ttl (so a changed binding
// takes effect within ttl). Errors are not cached. now may be nil (time.Now).
// Safe for concurrent use.
func CachedTenantIssuers(inner TenantIssuers, ttl time.Duration, now func() time.Time) TenantIssuers {
	if now == nil {
		now = time.Now
	}
	return &cachedIssuers{inner: inner, ttl: ttl, now: now, m: map[[2]string]cachedTenants{}}
}

type cachedTenants struct {
	tenants []string
	at      time.Time
}

type cachedIssuers struct {
	inner TenantIssuers
	ttl   time.Duration
	now   func() time.Time
	mu    sync.Mutex
	m     map[[2]string]cachedTenants
}

func (c *cachedIssuers) TenantsForIssuer(ctx context.Context, issuer, clientID string) ([]string, error) {
	k := [2]string{issuer, clientID}
	now := c.now()
	c.mu.Lock()
	e, ok := c.m[k]
	c.mu.Unlock()
	if ok && now.Sub(e.at) < c.ttl {
		return slices.Clone(e.tenants), nil
	}
	ts, err := c.inner.TenantsForIssuer(ctx, issuer, clientID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if len(c.m) >= maxIssuerCacheEntries {
		clear(c.m)
	}
	c.m[k] = cachedTenants{tenants: slices.Clone(ts), at: now}
	c.mu.Unlock()
	return ts, nil
}

// IssuerJWKSURLs reads every tenant's issuer bindings from the registry and
// returns issuer → JWKS URL, for ValidatorConfig.JWKSURLs. Bindings without a
// jwks_url are skipped; one issuer bound with two different JWKS URLs is an
// error (which keys would be trusted would depend on the tenant).
func IssuerJWKSURLs(ctx context.Context, db *store.DB) (map[string]string, error) {
	out := map[string]string{}
	err := db.Global(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `
			SELECT id, config->'issuers' FROM tenants
			WHERE jsonb_typeof(config->'issuers') = 'array' ORDER BY id`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id string
			var raw []byte
			if err := rows.Scan(&id, &raw); err != nil {
				return err
			}
			var bs []IssuerBinding
			if err := json.Unmarshal(raw, &bs); err != nil {
				return fmt.Errorf("tenant %s: malformed issuers", id)
			}
			for _, b := range bs {
				if b.Issuer == "" || b.JWKSURL == "" {
					continue
				}
				if prev, ok := out[b.Issuer]; ok && prev != b.JWKSURL {
					return fmt.Errorf("issuer %q has two JWKS URLs (tenant %s)", b.Issuer, id)
				}
				out[b.Issuer] = b.JWKSURL
			}
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("access: issuer jwks urls: %w", err)
	}
	return out, nil
}
