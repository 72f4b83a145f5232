package access

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"sync"
	"time"
)

// keySet caches one issuer's JWKS.
type keySet struct {
	v      *Validator
	issuer string
	url    string

	mu          sync.RWMutex
	keys        []jwk
	fetchedAt   time.Time // last successful fetch
	lastAttempt time.Time // last fetch attempt, successful or not

	fetchMu sync.Mutex // one fetch per issuer at a time
}

type jwk struct {
	kid string
	alg string // optional "alg" of the JWK; empty means any compatible
	key any    // *rsa.PublicKey, *ecdsa.PublicKey (P-256) or ed25519.PublicKey
}

func (k jwk) suits(alg string) bool {
	if k.alg != "" && k.alg != alg {
		return false
	}
	switch alg {
	case algRS256:
		_, ok := k.key.(*rsa.PublicKey)
		return ok
	case algES256:
		ek, ok := k.key.(*ecdsa.PublicKey)
		return ok && ek.Curve == elliptic.P256()
	case algEdDSA:
		_, ok := k.key.(ed25519.PublicKey)
		return ok
	}
	return false
}

// find returns the key for kid and alg. Without a kid it returns the only
// suitable key, if there is exactly one.
func find(keys []jwk, kid, alg string) any {
	var only any
	n := 0
	for _, k := range keys {
		if !k.suits(alg) {
			continue
		}
		if kid != "" {
			if k.kid == kid {
				return k.key
			}
			continue
		}
		only = k.key
		n++
	}
	if n == 1 {
		return only
	}
	return nil
}

func (s *keySet) snapshot() ([]jwk, time.Time, time.Time) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.keys, s.fetchedAt, s.lastAttempt
}

// key returns the verification key for kid/alg, fetching the JWKS when the
// cache is empty or stale, or (rate-limited) when the kid is unknown, which
// is how a key rotation is picked up.
func (s *keySet) key(ctx context.Context, kid, alg string) (any, *TokenError) {
	cfg := &s.v.cfg
	keys, fetchedAt, _ := s.snapshot()
	now := cfg.Now()
	fresh := !fetchedAt.IsZero() && now.Sub(fetchedAt) < cfg.JWKSCacheTTL
	if fresh {
		if k := find(keys, kid, alg); k != nil {
			return k, nil
		}
	}

	s.fetchMu.Lock()
	defer s.fetchMu.Unlock()
	keys, fetchedAt2, lastAttempt := s.snapshot()
	now = cfg.Now()
	fresh = !fetchedAt2.IsZero() && now.Sub(fetchedAt2) < cfg.JWKSCacheTTL
	if fresh {
		if k := find(keys, kid, alg); k != nil {
			return k, nil
		}
		if fetchedAt2 != fetchedAt {
			// Someone fetched while we waited, and the kid is still unknown.
			return nil, tokenErr(ReasonUnknownKey)
		}
	}
	stale := !fetchedAt2.IsZero() && now.Sub(fetchedAt2) < 2*cfg.JWKSCacheTTL
	if !lastAttempt.IsZero() && now.Sub(lastAttempt) < cfg.JWKSRefetchInterval {
		// Rate-limited: answer from what we have.
		if !stale {
			return nil, &TokenError{Reason: ReasonKeysUnavailable, Err: ErrKeysUnavailable}
		}
		if k := find(keys, kid, alg); k != nil {
			return k, nil
		}
		return nil, tokenErr(ReasonUnknownKey)
	}

	newKeys, err := s.fetch(ctx)
	s.mu.Lock()
	s.lastAttempt = now
	if err == nil {
		s.keys, s.fetchedAt = newKeys, now
	}
	s.mu.Unlock()
	if err != nil {
		if stale {
			if k := find(keys, kid, alg); k != nil {
				return k, nil
			}
		}
		return nil, &TokenError{Reason: ReasonKeysUnavailable, Err: fmt.Errorf("%w: %w", ErrKeysUnavailable, err)}
	}
	if k := find(newKeys, kid, alg); k != nil {
		return k, nil
	}
	return nil, tokenErr(ReasonUnknownKey)
}

func (s *keySet) fetch(ctx context.Context) ([]jwk, error) {
	// The fetch serves every request waiting on this issuer, so one caller
	// hanging up must not abort it (and then rate-limit the retry).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), DefaultJWKSTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url, nil)
	if err != nil {
		return nil, fmt.Errorf("jwks: request: %w", err)
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	req.Header.Set("User-Agent", defaultHTTPUserAgent)
	resp, err := s.v.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("jwks: fetch for issuer %q: %w", s.issuer, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxJWKSBytes))
		return nil, fmt.Errorf("jwks: fetch for issuer %q: status %d", s.issuer, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxJWKSBytes+1))
	if err != nil {
		return nil, fmt.Errorf("jwks: read for issuer %q: %w", s.issuer, err)
	}
	if len(body) > maxJWKSBytes {
		return nil, fmt.Errorf("jwks: issuer %q: document larger than %d bytes", s.issuer, maxJWKSBytes)
	}
	keys, err := ParseJWKS(body)
	if err != nil {
		return nil, fmt.Errorf("jwks: issuer %q: %w", s.issuer, err)
	}
	return keys.keys, nil
}

// JWKS is a parsed JSON Web Key Set holding only signature-verification keys
// Vigil accepts: RSA (≥ 2048 bits), EC P-256 and OKP Ed25519.
type JWKS struct {
	keys []jwk
}

// Len is the number of usable keys.
func (s *JWKS) Len() int { return len(s.keys) }

type rawJWK struct {
	Kty string `json:"kty"`
	Kid string `json:"kid"`
	Use string `json:"use"`
	Alg string `json:"alg"`
	Crv string `json:"crv"`
	N   string `json:"n"`
	E   string `json:"e"`
	X   string `json:"x"`
	Y   string `json:"y"`
}

// ParseJWKS parses a JWKS document (RFC 7517). Keys that are not for
// signatures, of unsupported types or malformed are skipped, so an issuer can
// publish encryption keys beside its signing keys; a set with no usable key is
// an error.
func ParseJWKS(b []byte) (*JWKS, error) {
	var doc struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, errors.New("malformed JWKS document")
	}
	if len(doc.Keys) > maxJWKSKeys {
		return nil, fmt.Errorf("JWKS has more than %d keys", maxJWKSKeys)
	}
	out := &JWKS{}
	for _, rk := range doc.Keys {
		var r rawJWK
		if err := json.Unmarshal(rk, &r); err != nil {
			continue
		}
		if r.Use != "" && r.Use != "sig" {
			continue
		}
		if r.Alg != "" && r.Alg != algRS256 && r.Alg != algES256 && r.Alg != algEdDSA {
			continue
		}
		key, err := r.publicKey()
		if err != nil {
			continue
		}
		out.keys = append(out.keys, jwk{kid: r.Kid, alg: r.Alg, key: key})
	}
	if len(out.keys) == 0 {
		return nil, errors.New("JWKS has no usable signing key")
	}
	return out, nil
}

func b64(s string) ([]byte, error) { return base64.RawURLEncoding.Strict().DecodeString(s) }

func (r rawJWK) publicKey() (any, error) {
	switch r.Kty {
	case "RSA":
		nb, err := b64(r.N)
		if err != nil || len(nb) == 0 {
			return nil, errors.New("bad n")
		}
		eb, err := b64(r.E)
		if err != nil || len(eb) == 0 || len(eb) > 4 {
			return nil, errors.New("bad e")
		}
		n := new(big.Int).SetBytes(nb)
		e := int(new(big.Int).SetBytes(eb).Int64())
		if bits := n.BitLen(); bits < minRSAKeyBits || bits > maxRSAKeyBits {
			return nil, errors.New("rsa key size")
		}
		if e < 3 || e%2 == 0 {
			return nil, errors.New("bad e")
		}
		return &rsa.PublicKey{N: n, E: e}, nil
	case "EC":
		if r.Crv != "P-256" {
			return nil, errors.New("unsupported curve")
		}
		x, err1 := b64(r.X)
		y, err2 := b64(r.Y)
		if err1 != nil || err2 != nil || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("bad point")
		}
		pt := append(append([]byte{4}, x...), y...)
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
	case "OKP":
		if r.Crv != "Ed25519" {
			return nil, errors.New("unsupported curve")
		}
		x, err := b64(r.X)
		if err != nil || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("bad key")
		}
		return ed25519.PublicKey(x), nil
	}
	return nil, errors.New("unsupported kty")
}
