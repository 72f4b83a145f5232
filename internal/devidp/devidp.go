// Package devidp is a local OAuth 2.0 token issuer for the demo and the tests:
// it serves a JWKS document over HTTP and mints short-lived EdDSA-signed JWT
// access tokens. It speaks the real protocol (JWKS + JWT), so the API's token
// validation runs unchanged against it. Never used in production.
package devidp

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// IdP holds one signing key.
type IdP struct {
	Issuer   string
	Audience string
	kid      string
	priv     ed25519.PrivateKey
	pub      ed25519.PublicKey
	now      func() time.Time
}

// New creates an issuer with a fresh Ed25519 key. now may be nil (time.Now).
func New(issuer, audience string, now func() time.Time) (*IdP, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("devidp: generate key: %w", err)
	}
	if now == nil {
		now = time.Now
	}
	kidb := make([]byte, 6)
	_, _ = rand.Read(kidb)
	return &IdP{Issuer: issuer, Audience: audience, kid: "dev-" + base64.RawURLEncoding.EncodeToString(kidb), priv: priv, pub: pub, now: now}, nil
}

// JWKSHandler serves the public key as a JWKS document.
func (i *IdP) JWKSHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "OKP", "crv": "Ed25519", "alg": "EdDSA", "use": "sig", "kid": i.kid,
			"x": base64.RawURLEncoding.EncodeToString(i.pub),
		}}})
	})
}

// Token describes who a minted token is for.
type Token struct {
	Subject    string
	ClientID   string
	Role       string
	Department string
	Scopes     string        // space-separated SMART scopes
	Lifetime   time.Duration // default 10 minutes
	Extra      map[string]any
}

// Mint signs a token.
func (i *IdP) Mint(t Token) (string, error) {
	now := i.now()
	life := t.Lifetime
	if life == 0 {
		life = 10 * time.Minute
	}
	c := jwt.MapClaims{
		"iss": i.Issuer, "aud": i.Audience, "sub": t.Subject, "azp": t.ClientID,
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(life).Unix(),
		"scope": t.Scopes, "jti": fmt.Sprintf("%x", now.UnixNano()),
	}
	if t.Role != "" {
		c["vigil_role"] = t.Role
	}
	if t.Department != "" {
		c["department"] = t.Department
	}
	for k, v := range t.Extra {
		c[k] = v
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	tok.Header["kid"] = i.kid
	s, err := tok.SignedString(i.priv)
	if err != nil {
		return "", fmt.Errorf("devidp: sign: %w", err)
	}
	return s, nil
}
