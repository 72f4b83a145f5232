package access

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// issuerMap is an in-memory TenantIssuers: issuer → tenants.
type issuerMap map[string][]string

func (m issuerMap) TenantsForIssuer(_ context.Context, issuer, _ string) ([]string, error) {
	return m[issuer], nil
}

// TestRequestFlow runs the router's sequence: Validate, BindTenant, HasScope, Decide.
func TestRequestFlow(t *testing.T) {
	t.Parallel()
	testKeys(t)
	k := testKey{kid: "rs-1", alg: "RS256", priv: rsaKey1}
	idpA := newTestIdP(t, k)
	idpB := newTestIdP(t, testKey{kid: "b-1", alg: "EdDSA", priv: edKey})
	v := newTestValidator(t, newFakeClock(testBase), idpA, idpB)
	reg := issuerMap{idpA.issuer: {"clinic-a"}, idpB.issuer: {"clinic-b"}}
	pol := &Policy{}

	tests := []struct {
		name     string
		key      testKey
		idp      *testIdP
		mut      func(jwt.MapClaims)
		tenant   string
		scope    string
		action   Action
		wantErr  error // from the step that fails
		wantDeny string
	}{
		{name: "allowed", key: k, idp: idpA, tenant: "clinic-a", scope: "user/Task.rs", action: ActionQueueList},
		{name: "missing scope", key: k, idp: idpA, tenant: "clinic-a", scope: "user/Task.u", action: ActionItemEdit, wantErr: ErrInsufficientScope},
		{name: "wrong tenant", key: k, idp: idpA, tenant: "clinic-b", scope: "user/Task.rs", action: ActionQueueList, wantErr: ErrWrongTenant},
		{name: "tenant claim from other IdP", key: testKey{kid: "b-1", alg: "EdDSA", priv: edKey}, idp: idpB,
			mut: func(c jwt.MapClaims) { c["tenant"] = "clinic-a" }, tenant: "", scope: "user/Task.rs", action: ActionQueueList, wantErr: ErrWrongTenant},
		{name: "expired", key: k, idp: idpA, mut: func(c jwt.MapClaims) { c["iat"], c["exp"] = testBase.Unix()-900, testBase.Unix()-60 },
			tenant: "clinic-a", scope: "user/Task.rs", action: ActionQueueList, wantErr: ErrInvalidToken},
		{name: "role denies", key: k, idp: idpA, mut: func(c jwt.MapClaims) { c["vigil_role"] = "front_desk" },
			tenant: "clinic-a", scope: "user/Task.rs", action: ActionItemApprove, wantDeny: DenyRole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := tt.idp.claimsAt(testBase)
			if tt.mut != nil {
				tt.mut(c)
			}
			err := func() error {
				p, err := v.Validate(context.Background(), sign(t, tt.key, c))
				if err != nil {
					return err
				}
				if err := BindTenant(context.Background(), p, tt.tenant, reg); err != nil {
					return err
				}
				if !p.HasScope(tt.scope) {
					return NewScopeError(tt.scope)
				}
				d := pol.Decide(context.Background(), p, tt.action, Attributes{Department: "cardiology"})
				if d.Allow != (tt.wantDeny == "") || (!d.Allow && d.Reason != tt.wantDeny) {
					t.Fatalf("decision = %+v, want deny %q", d, tt.wantDeny)
				}
				return nil
			}()
			if tt.wantErr == nil && err != nil || tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

type countingIssuers struct {
	issuerMap
	calls int
}

func (c *countingIssuers) TenantsForIssuer(ctx context.Context, issuer, clientID string) ([]string, error) {
	c.calls++
	return c.issuerMap.TenantsForIssuer(ctx, issuer, clientID)
}

func TestCachedTenantIssuers(t *testing.T) {
	t.Parallel()
	inner := &countingIssuers{issuerMap: issuerMap{"https://idp.a": {"clinic-a"}}}
	clock := newFakeClock(testBase)
	c := CachedTenantIssuers(inner, time.Minute, clock.Now)
	for range 3 {
		if ts, _ := c.TenantsForIssuer(context.Background(), "https://idp.a", "ui"); len(ts) != 1 {
			t.Fatalf("tenants = %v", ts)
		}
	}
	if inner.calls != 1 {
		t.Fatalf("inner calls = %d, want 1", inner.calls)
	}
	inner.issuerMap["https://idp.a"] = nil // binding removed
	clock.Advance(time.Minute)
	if ts, _ := c.TenantsForIssuer(context.Background(), "https://idp.a", "ui"); len(ts) != 0 || inner.calls != 2 {
		t.Fatalf("after ttl: tenants = %v, calls = %d", ts, inner.calls)
	}
}
