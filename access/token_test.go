package access

import (
	"bytes"
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

func TestValidate(t *testing.T) {
	t.Parallel()
	testKeys(t)
	rs := testKey{kid: "rs-1", alg: "RS256", priv: rsaKey1}
	es := testKey{kid: "es-1", alg: "ES256", priv: ecKey}
	ed := testKey{kid: "ed-1", alg: "EdDSA", priv: edKey}
	idp := newTestIdP(t, rs, es, ed)
	other := newTestIdP(t, testKey{kid: "rs-1", alg: "RS256", priv: rsaKey2})
	clock := newFakeClock(testBase)
	v := newTestValidator(t, clock, idp, other)
	now := testBase

	pubDER, err := x509.MarshalPKIXPublicKey(&rsaKey1.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER})

	type tc struct {
		name   string
		token  func() string
		reason string // "" = valid
	}
	with := func(k testKey, mut func(jwt.MapClaims)) func() string {
		return func() string {
			c := idp.claimsAt(now)
			if mut != nil {
				mut(c)
			}
			return sign(t, k, c)
		}
	}
	raw := func(header, claims map[string]any, sig string) func() string {
		return func() string {
			h, _ := json.Marshal(header)
			c, _ := json.Marshal(claims)
			return b64u(h) + "." + b64u(c) + "." + sig
		}
	}
	cases := []tc{
		{"valid RS256", with(rs, nil), ""},
		{"valid ES256", with(es, nil), ""},
		{"valid EdDSA", with(ed, nil), ""},
		{"valid aud array", with(rs, func(c jwt.MapClaims) { c["aud"] = []string{"other", testAudience} }), ""},
		{"valid no kid single suitable key", with(testKey{alg: "EdDSA", priv: edKey}, nil), ""},
		{"expired within skew", with(rs, func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-10*time.Second).Unix()
		}), ""},
		{"expired", with(rs, func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(-10*time.Minute).Unix(), now.Add(-time.Minute).Unix()
		}), ReasonExpired},
		{"nbf in future", with(rs, func(c jwt.MapClaims) { c["nbf"] = now.Add(5 * time.Minute).Unix() }), ReasonNotYetValid},
		{"nbf within skew", with(rs, func(c jwt.MapClaims) { c["nbf"] = now.Add(20 * time.Second).Unix() }), ""},
		{"iat in future", with(rs, func(c jwt.MapClaims) {
			c["iat"], c["exp"] = now.Add(5*time.Minute).Unix(), now.Add(10*time.Minute).Unix()
		}), ReasonIssuedInFuture},
		{"lifetime too long", with(rs, func(c jwt.MapClaims) { c["exp"] = now.Add(time.Hour).Unix() }), ReasonLifetimeExceeded},
		{"exp before iat", with(rs, func(c jwt.MapClaims) { c["iat"], c["exp"] = now.Unix(), now.Add(-5*time.Second).Unix() }), ReasonBadLifetime},
		{"missing exp", with(rs, func(c jwt.MapClaims) { delete(c, "exp") }), ReasonMissingExp},
		{"missing iat", with(rs, func(c jwt.MapClaims) { delete(c, "iat") }), ReasonMissingIat},
		{"missing sub", with(rs, func(c jwt.MapClaims) { delete(c, "sub") }), ReasonMissingSubject},
		{"wrong audience", with(rs, func(c jwt.MapClaims) { c["aud"] = "https://other.example" }), ReasonWrongAudience},
		{"no audience", with(rs, func(c jwt.MapClaims) { delete(c, "aud") }), ReasonWrongAudience},
		{"unknown issuer", with(rs, func(c jwt.MapClaims) { c["iss"] = "https://evil.example" }), ReasonUnknownIssuer},
		{"unknown kid", with(testKey{kid: "nope", alg: "RS256", priv: rsaKey1}, nil), ReasonUnknownKey},
		{"kid of another key type", with(testKey{kid: "es-1", alg: "RS256", priv: rsaKey1}, nil), ReasonUnknownKey},
		{"signed by another issuer's key", with(testKey{kid: "rs-1", alg: "RS256", priv: rsaKey2}, nil), ReasonBadSignature},
		{"other issuer's token is fine with its own key", func() string {
			c := idp.claimsAt(now)
			c["iss"] = other.issuer
			return sign(t, testKey{kid: "rs-1", alg: "RS256", priv: rsaKey2}, c)
		}, ""},
		{"tampered payload", func() string {
			tok := with(rs, nil)()
			parts := strings.Split(tok, ".")
			c := idp.claimsAt(now)
			c["vigil_role"] = "admin"
			b, _ := json.Marshal(c)
			return parts[0] + "." + b64u(b) + "." + parts[2]
		}, ReasonBadSignature},
		{"alg none", raw(map[string]any{"alg": "none", "typ": "JWT"}, idp.claimsAt(now), ""), ReasonAlgNotAllowed},
		{"alg None", raw(map[string]any{"alg": "None", "kid": "rs-1"}, idp.claimsAt(now), ""), ReasonAlgNotAllowed},
		{"no alg", raw(map[string]any{"kid": "rs-1"}, idp.claimsAt(now), "AAAA"), ReasonAlgNotAllowed},
		{"HS256 with public key bytes", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, idp.claimsAt(now))
			tok.Header["kid"] = "rs-1"
			s, err := tok.SignedString(pubPEM)
			if err != nil {
				t.Fatal(err)
			}
			return s
		}, ReasonAlgNotAllowed},
		{"HS256 with raw modulus", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodHS256, idp.claimsAt(now))
			s, _ := tok.SignedString(rsaKey1.N.Bytes())
			return s
		}, ReasonAlgNotAllowed},
		{"RS384 not allowed", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS384, idp.claimsAt(now))
			tok.Header["kid"] = "rs-1"
			s, _ := tok.SignedString(rsaKey1)
			return s
		}, ReasonAlgNotAllowed},
		{"crit header", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodRS256, idp.claimsAt(now))
			tok.Header["kid"] = "rs-1"
			tok.Header["crit"] = []string{"exp"}
			s, _ := tok.SignedString(rsaKey1)
			return s
		}, ReasonCritHeader},
		{"empty", func() string { return "" }, ReasonMalformed},
		{"two segments", func() string { return "abc.def" }, ReasonMalformed},
		{"garbage segments", func() string { return "a.b.c" }, ReasonMalformed},
		{"padded base64", func() string {
			tok := with(rs, nil)()
			parts := strings.Split(tok, ".")
			return parts[0] + "." + base64.URLEncoding.EncodeToString([]byte(`{"iss":1}`)) + "." + parts[2]
		}, ReasonBadClaims},
		{"claims wrong type", raw(map[string]any{"alg": "RS256", "kid": "rs-1"}, map[string]any{"exp": "soon"}, "AAAA"), ReasonBadClaims},
		{"too large", func() string { return strings.Repeat("a", maxTokenBytes) + ".b.c" }, ReasonTooLarge},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			tok := c.token()
			p, err := v.Validate(context.Background(), tok)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if p.Subject != "user-123" || p.TenantID != "" {
					t.Fatalf("principal = %+v", p)
				}
				return
			}
			var te *TokenError
			if !errors.As(err, &te) || !errors.Is(err, ErrInvalidToken) {
				t.Fatalf("err = %v, want *TokenError wrapping ErrInvalidToken", err)
			}
			if te.Reason != c.reason {
				t.Fatalf("reason = %q, want %q", te.Reason, c.reason)
			}
			if !strings.HasPrefix(err.Error(), "access: ") {
				t.Errorf("error %q lacks the access: prefix", err)
			}
			for _, part := range strings.Split(tok, ".") {
				if len(part) >= 8 && strings.Contains(err.Error(), part) {
					t.Fatalf("error contains part of the token: %q", err)
				}
			}
		})
	}
}

func TestValidatePrincipal(t *testing.T) {
	t.Parallel()
	testKeys(t)
	rs := testKey{kid: "rs-1", alg: "RS256", priv: rsaKey1}
	idp := newTestIdP(t, rs)
	v := newTestValidator(t, newFakeClock(testBase), idp)

	tests := []struct {
		name string
		mut  func(jwt.MapClaims)
		want Principal
	}{
		{"azp, vigil_role, scope string", nil, Principal{
			Subject: "user-123", Issuer: idp.issuer, ClientID: "review-ui", Role: RolePhysician,
			Department: "cardiology", Scopes: []string{"openid", "user/Task.rs", "user/Observation.read"},
			TokenID: "tok-1", ExpiresAt: testBase.Add(10 * time.Minute),
		}},
		{"client_id, roles[0], scope array, act, tenant", func(c jwt.MapClaims) {
			delete(c, "azp")
			delete(c, "vigil_role")
			delete(c, "department")
			c["client_id"] = "ehr-backend"
			c["roles"] = []string{"integration", "admin"}
			c["scope"] = []string{"system/Task.c", "system/Observation.rs"}
			c["act"] = map[string]any{"sub": "svc-42"}
			c["tenant"] = "clinic-a"
		}, Principal{
			Subject: "user-123", Issuer: idp.issuer, ClientID: "ehr-backend", Role: RoleIntegration,
			Scopes: []string{"system/Task.c", "system/Observation.rs"}, TokenID: "tok-1",
			ExpiresAt: testBase.Add(10 * time.Minute), OnBehalfOf: "svc-42", TenantClaim: "clinic-a",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := idp.claimsAt(testBase)
			if tt.mut != nil {
				tt.mut(c)
			}
			p, err := v.Validate(context.Background(), sign(t, rs, c))
			if err != nil {
				t.Fatal(err)
			}
			got, _ := json.Marshal(p)
			want, _ := json.Marshal(tt.want)
			if !bytes.Equal(got, want) {
				t.Fatalf("principal\n got %s\nwant %s", got, want)
			}
		})
	}
}

func TestPrincipalLogValue(t *testing.T) {
	t.Parallel()
	p := &Principal{Subject: "user-123", Issuer: "https://idp.example", ClientID: "review-ui", Role: RoleNurse,
		Department: "oncology", Scopes: []string{"user/Task.rs"}, TokenID: "jti-secret", TenantID: "clinic-a", OnBehalfOf: "pat-9"}
	var buf bytes.Buffer
	log := slog.New(slog.NewJSONHandler(&buf, nil))
	log.Info("request", "principal", p)
	log.Info("request", "principal", *p) // a value must redact too
	out := buf.String()
	for _, want := range []string{"user-123", "nurse", "review-ui"} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q: %s", want, out)
		}
	}
	for _, leak := range []string{"idp.example", "oncology", "Task", "jti-secret", "clinic-a", "pat-9"} {
		if strings.Contains(out, leak) {
			t.Errorf("log leaks %q: %s", leak, out)
		}
	}
}

func TestJWKSRotation(t *testing.T) {
	t.Parallel()
	testKeys(t)
	k1 := testKey{kid: "2026-11", alg: "RS256", priv: rsaKey1}
	k2 := testKey{kid: "2026-12", alg: "ES256", priv: ecKey}
	idp := newTestIdP(t, k1)
	clock := newFakeClock(testBase)
	v := newTestValidator(t, clock, idp)
	ctx := context.Background()
	validate := func(k testKey) error {
		_, err := v.Validate(ctx, sign(t, k, idp.claimsAt(clock.Now())))
		return err
	}
	reasonOf := func(err error) string {
		var te *TokenError
		if errors.As(err, &te) {
			return te.Reason
		}
		return ""
	}

	if err := validate(k1); err != nil {
		t.Fatalf("old key before rotation: %v", err)
	}
	if err := validate(k1); err != nil || idp.fetches.Load() != 1 {
		t.Fatalf("cached: err %v, fetches %d, want 1", err, idp.fetches.Load())
	}

	idp.setKeys(k2) // the IdP rotates

	// A burst of tokens with the new kid right after a fetch: the refetch is
	// rate-limited, so none of them fetch.
	for range 5 {
		if err := validate(k2); reasonOf(err) != ReasonUnknownKey {
			t.Fatalf("new kid within refetch interval: %v", err)
		}
	}
	if n := idp.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d during rate limit, want 1", n)
	}

	clock.Advance(DefaultJWKSRefetch + time.Second)
	if err := validate(k2); err != nil {
		t.Fatalf("new kid after refetch interval: %v", err)
	}
	if n := idp.fetches.Load(); n != 2 {
		t.Fatalf("fetches = %d, want 2", n)
	}
	// The old key is gone from the set.
	clock.Advance(DefaultJWKSRefetch + time.Second)
	if err := validate(k1); reasonOf(err) != ReasonUnknownKey {
		t.Fatalf("retired key: %v, want unknown signing key", err)
	}

	// After the cache TTL the set is fetched again even for a known kid.
	before := idp.fetches.Load()
	clock.Advance(DefaultJWKSCacheTTL + time.Second)
	if err := validate(k2); err != nil {
		t.Fatal(err)
	}
	if n := idp.fetches.Load(); n != before+1 {
		t.Fatalf("fetches = %d after TTL, want %d", n, before+1)
	}

	// The IdP goes down: the stale set serves for one more TTL, then not.
	idp.setStatus(http.StatusInternalServerError)
	clock.Advance(DefaultJWKSCacheTTL + time.Second)
	if err := validate(k2); err != nil {
		t.Fatalf("stale keys within grace: %v", err)
	}
	clock.Advance(DefaultJWKSCacheTTL + time.Second)
	err := validate(k2)
	if reasonOf(err) != ReasonKeysUnavailable || !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, ErrInvalidToken) {
		t.Fatalf("IdP down past grace: %v", err)
	}
}

func TestJWKSUnavailable(t *testing.T) {
	t.Parallel()
	testKeys(t)
	k := testKey{kid: "k", alg: "EdDSA", priv: edKey}
	idp := newTestIdP(t, k)
	idp.setStatus(http.StatusServiceUnavailable)
	clock := newFakeClock(testBase)
	v := newTestValidator(t, clock, idp)
	for range 3 {
		_, err := v.Validate(context.Background(), sign(t, k, idp.claimsAt(testBase)))
		if !errors.Is(err, ErrKeysUnavailable) {
			t.Fatalf("err = %v, want ErrKeysUnavailable", err)
		}
	}
	if n := idp.fetches.Load(); n != 1 {
		t.Fatalf("fetches = %d while down, want 1 (rate-limited)", n)
	}
	idp.setStatus(http.StatusOK)
	clock.Advance(DefaultJWKSRefetch)
	if _, err := v.Validate(context.Background(), sign(t, k, idp.claimsAt(clock.Now()))); err != nil {
		t.Fatalf("after recovery: %v", err)
	}
}

func TestNewValidatorConfig(t *testing.T) {
	t.Parallel()
	ok := ValidatorConfig{JWKSURLs: map[string]string{"https://idp.example": "https://idp.example/jwks"}, Audience: "a"}
	tests := []struct {
		name    string
		mut     func(*ValidatorConfig)
		wantErr bool
	}{
		{"https ok", func(*ValidatorConfig) {}, false},
		{"no issuers", func(c *ValidatorConfig) { c.JWKSURLs = nil }, true},
		{"no audience", func(c *ValidatorConfig) { c.Audience = "" }, true},
		{"http remote", func(c *ValidatorConfig) { c.JWKSURLs = map[string]string{"i": "http://idp.example/jwks"} }, true},
		{"http remote even with loopback flag", func(c *ValidatorConfig) {
			c.JWKSURLs = map[string]string{"i": "http://idp.example/jwks"}
			c.AllowInsecureLoopback = true
		}, true},
		{"http loopback without flag", func(c *ValidatorConfig) { c.JWKSURLs = map[string]string{"i": "http://127.0.0.1:1/jwks"} }, true},
		{"http loopback with flag", func(c *ValidatorConfig) {
			c.JWKSURLs = map[string]string{"i": "http://127.0.0.1:1/jwks"}
			c.AllowInsecureLoopback = true
		}, false},
		{"skew 2m", func(c *ValidatorConfig) { c.ClockSkew = 2 * time.Minute }, false},
		{"skew too large", func(c *ValidatorConfig) { c.ClockSkew = 3 * time.Minute }, true},
		{"negative lifetime", func(c *ValidatorConfig) { c.MaxLifetime = -time.Minute }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			cfg := ok
			tt.mut(&cfg)
			_, err := NewValidator(cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && !strings.HasPrefix(err.Error(), "access: ") {
				t.Fatalf("error %q lacks prefix", err)
			}
		})
	}
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	testKeys(t)
	good := jwksOf([]testKey{{kid: "a", alg: "RS256", priv: rsaKey1}})[0]
	tests := []struct {
		name  string
		doc   string
		keys  int
		isErr bool
	}{
		{"one rsa", mustJSON(map[string]any{"keys": []any{good}}), 1, false},
		{"enc key skipped", mustJSON(map[string]any{"keys": []any{good, map[string]string{"kty": "RSA", "use": "enc", "n": good["n"], "e": good["e"]}}}), 1, false},
		{"HS key skipped", `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`, 0, true},
		{"small rsa skipped", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`, 0, true},
		{"P-384 skipped", `{"keys":[{"kty":"EC","crv":"P-384","x":"AA","y":"AA"}]}`, 0, true},
		{"point not on curve", `{"keys":[{"kty":"EC","crv":"P-256","x":"` + b64u(make([]byte, 32)) + `","y":"` + b64u(make([]byte, 32)) + `"}]}`, 0, true},
		{"not json", `nope`, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s, err := ParseJWKS([]byte(tt.doc))
			if (err != nil) != tt.isErr {
				t.Fatalf("err = %v", err)
			}
			if err == nil && s.Len() != tt.keys {
				t.Fatalf("keys = %d, want %d", s.Len(), tt.keys)
			}
		})
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func TestJWKSRedirectToPlainHTTPRefused(t *testing.T) {
	t.Parallel()
	testKeys(t)
	k := testKey{kid: "k", alg: "EdDSA", priv: edKey}
	srv := httptest.NewServer(http.RedirectHandler("http://jwks.example/keys", http.StatusFound))
	t.Cleanup(srv.Close)
	const iss = "https://idp.redirect.example"
	v, err := NewValidator(ValidatorConfig{
		JWKSURLs: map[string]string{iss: srv.URL}, Audience: testAudience,
		AllowInsecureLoopback: true, Now: newFakeClock(testBase).Now,
	})
	if err != nil {
		t.Fatal(err)
	}
	c := (&testIdP{issuer: iss}).claimsAt(testBase)
	_, err = v.Validate(context.Background(), sign(t, k, c))
	if !errors.Is(err, ErrKeysUnavailable) || !errors.Is(err, ErrInsecureTransport) {
		t.Fatalf("err = %v, want keys unavailable (insecure redirect)", err)
	}
}
