package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"

	"github.com/golang-jwt/jwt/v5"
)

// Fuzz keys are derived from fixed seeds so that the committed corpus
// (testdata/fuzz/FuzzValidate) holds validly signed tokens in every worker.
func fuzzKeys() (testKey, testKey) {
	edSeed := sha256.Sum256([]byte("vigil-fuzz-ed25519"))
	ecRaw := sha256.Sum256([]byte("vigil-fuzz-p256"))
	ec, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), ecRaw[:])
	if err != nil {
		panic(err)
	}
	return testKey{kid: "fz-ed", alg: "EdDSA", priv: ed25519.NewKeyFromSeed(edSeed[:])},
		testKey{kid: "fz-es", alg: "ES256", priv: ec}
}

const fuzzIssuerPath = "/realms/fuzz"

func fuzzClaims(iss string) jwt.MapClaims {
	return jwt.MapClaims{
		"iss": iss, "sub": "user-1", "aud": testAudience, "azp": "ui",
		"iat": testBase.Unix(), "exp": testBase.Unix() + 600,
		"scope": "user/Task.rs", "vigil_role": "nurse", "act": map[string]any{"sub": "x"},
	}
}

func FuzzValidate(f *testing.F) {
	ed, es := fuzzKeys()
	idp := newTestIdP(f, ed, es)
	// The issuer is fixed in the committed corpus, whatever port the server got.
	const iss = "https://idp.fuzz.example" + fuzzIssuerPath
	v, err := NewValidator(ValidatorConfig{
		JWKSURLs:              map[string]string{iss: idp.jwksURL()},
		Audience:              testAudience,
		AllowInsecureLoopback: true,
		Now:                   newFakeClock(testBase).Now,
	})
	if err != nil {
		f.Fatal(err)
	}
	for _, k := range []testKey{ed, es} {
		tok := sign(f, k, fuzzClaims(iss))
		if _, err := v.Validate(context.Background(), tok); err != nil {
			f.Fatalf("seed token (%s) rejected: %v", k.alg, err)
		}
		f.Add(tok)
	}
	f.Add("eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		p, err := v.Validate(context.Background(), raw)
		if err == nil {
			if p == nil || p.Subject == "" || p.Issuer != iss || p.TenantID != "" {
				t.Fatalf("accepted with principal %+v", p)
			}
			return
		}
		var te *TokenError
		if !errors.As(err, &te) || !errors.Is(err, ErrInvalidToken) || te.Reason == "" {
			t.Fatalf("error %v is not a *TokenError", err)
		}
		if len(raw) >= 8 && strings.Contains(err.Error(), raw) {
			t.Fatalf("error echoes the token")
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, s := range []string{"user/Task.rs", "patient/*.read", "system/Observation.cruds?category=vital-signs",
		"user/Task.write", "openid", "user/Task.sr", "x/y.z", "user/*.*"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sc, err := ParseScope(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidInput) {
				t.Fatalf("error %v does not wrap ErrInvalidInput", err)
			}
			if HasScope([]string{s}, s) {
				t.Fatal("an unparseable scope satisfied itself")
			}
			return
		}
		// The canonical form parses back to the same scope.
		again, err := ParseScope(sc.String())
		if err != nil || again != sc {
			t.Fatalf("round trip %q → %q → %+v, %v", s, sc.String(), again, err)
		}
		if sc.Perms == 0 || sc.Perms&^permAll != 0 {
			t.Fatalf("perms %b", sc.Perms)
		}
		// A scope satisfies itself, and never a scope in another context.
		if !HasScope([]string{s}, sc.String()) {
			t.Fatalf("%q does not satisfy itself", s)
		}
		for _, ctx := range []ScopeContext{ContextPatient, ContextUser, ContextSystem} {
			if ctx == sc.Context {
				continue
			}
			other := sc
			other.Context = ctx
			if HasScope([]string{s}, other.String()) {
				t.Fatalf("%q satisfied %q", s, other.String())
			}
		}
	})
}
