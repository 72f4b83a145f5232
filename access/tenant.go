package access

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

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

// IssuerBinding is one entry of a tenant's config "issuers" list.
type IssuerBinding struct {
	Issuer    string   `json:"issuer"`
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
