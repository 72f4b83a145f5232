package access

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// testBase is the fixed "now" of token tests.
var testBase = time.Date(2026, 12, 4, 12, 0, 0, 0, time.UTC)

// fakeClock is a settable clock.
type fakeClock struct{ ns atomic.Int64 }

func newFakeClock(t time.Time) *fakeClock {
	c := &fakeClock{}
	c.ns.Store(t.UnixNano())
	return c
}
func (c *fakeClock) Now() time.Time          { return time.Unix(0, c.ns.Load()).UTC() }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

type testKey struct {
	kid  string
	alg  string
	priv crypto.Signer
}

func (k testKey) method() jwt.SigningMethod { return jwt.GetSigningMethod(k.alg) }

// Keys are generated once per test binary (RSA generation is slow).
var (
	keysOnce sync.Once
	rsaKey1  *rsa.PrivateKey
	rsaKey2  *rsa.PrivateKey
	ecKey    *ecdsa.PrivateKey
	edKey    ed25519.PrivateKey
)

func testKeys(t testing.TB) {
	t.Helper()
	keysOnce.Do(func() {
		var err error
		if rsaKey1, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if rsaKey2, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			panic(err)
		}
		if ecKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
			panic(err)
		}
		if _, edKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
			panic(err)
		}
	})
}

// testIdP serves a JWKS over loopback http and signs tokens.
type testIdP struct {
	srv     *httptest.Server
	issuer  string
	mu      sync.Mutex
	keys    []testKey
	status  int
	fetches atomic.Int32
}

func newTestIdP(t testing.TB, keys ...testKey) *testIdP {
	t.Helper()
	idp := &testIdP{keys: keys, status: http.StatusOK}
	idp.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		idp.fetches.Add(1)
		idp.mu.Lock()
		defer idp.mu.Unlock()
		if idp.status != http.StatusOK {
			w.WriteHeader(idp.status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": jwksOf(idp.keys)})
	}))
	t.Cleanup(idp.srv.Close)
	idp.issuer = idp.srv.URL + "/realms/test"
	return idp
}

func (idp *testIdP) setKeys(keys ...testKey) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.keys = keys
}

func (idp *testIdP) setStatus(s int) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.status = s
}

func (idp *testIdP) jwksURL() string { return idp.srv.URL + "/jwks" }

func b64u(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func jwksOf(keys []testKey) []map[string]string {
	var out []map[string]string
	for _, k := range keys {
		m := map[string]string{"kid": k.kid, "use": "sig", "alg": k.alg}
		switch p := k.priv.Public().(type) {
		case *rsa.PublicKey:
			m["kty"], m["n"], m["e"] = "RSA", b64u(p.N.Bytes()), b64u(big.NewInt(int64(p.E)).Bytes())
		case *ecdsa.PublicKey:
			x, y := make([]byte, 32), make([]byte, 32)
			p.X.FillBytes(x)
			p.Y.FillBytes(y)
			m["kty"], m["crv"], m["x"], m["y"] = "EC", "P-256", b64u(x), b64u(y)
		case ed25519.PublicKey:
			m["kty"], m["crv"], m["x"] = "OKP", "Ed25519", b64u(p)
		}
		out = append(out, m)
	}
	return out
}

// claimsAt returns a valid claim set for idp at now.
func (idp *testIdP) claimsAt(now time.Time) jwt.MapClaims {
	return jwt.MapClaims{
		"iss":        idp.issuer,
		"sub":        "user-123",
		"aud":        testAudience,
		"azp":        "review-ui",
		"iat":        now.Unix(),
		"exp":        now.Add(10 * time.Minute).Unix(),
		"jti":        "tok-1",
		"scope":      "openid user/Task.rs user/Observation.read",
		"vigil_role": "physician",
		"department": "cardiology",
	}
}

func sign(t testing.TB, k testKey, c jwt.MapClaims) string {
	t.Helper()
	tok := jwt.NewWithClaims(k.method(), c)
	if k.kid != "" {
		tok.Header["kid"] = k.kid
	}
	s, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return s
}

const testAudience = "https://vigil.example/api"

func newTestValidator(t testing.TB, clock *fakeClock, idps ...*testIdP) *Validator {
	t.Helper()
	urls := map[string]string{}
	for _, idp := range idps {
		urls[idp.issuer] = idp.jwksURL()
	}
	v, err := NewValidator(ValidatorConfig{
		JWKSURLs:              urls,
		Audience:              testAudience,
		AllowInsecureLoopback: true,
		Now:                   clock.Now,
	})
	if err != nil {
		t.Fatalf("NewValidator: %v", err)
	}
	return v
}
