package access

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

// Validator defaults and limits.
const (
	DefaultMaxLifetime   = 15 * time.Minute
	DefaultClockSkew     = 30 * time.Second
	MaxClockSkew         = 2 * time.Minute
	DefaultJWKSCacheTTL  = 10 * time.Minute
	DefaultJWKSRefetch   = 30 * time.Second
	DefaultJWKSTimeout   = 10 * time.Second
	maxTokenBytes        = 16 << 10
	maxJWKSBytes         = 512 << 10
	maxJWKSKeys          = 100
	minRSAKeyBits        = 2048
	maxRSAKeyBits        = 8192
	maxJWKSRedirects     = 3
	algRS256, algES256   = "RS256", "ES256"
	algEdDSA             = "EdDSA"
	defaultHTTPUserAgent = "vigil-access/1"
)

// allowedAlgs is the algorithm allowlist. No "none", no HMAC (HS*): an HMAC
// "verified" with a public key is the classic algorithm-confusion attack.
var allowedAlgs = []string{algRS256, algES256, algEdDSA}

// ValidatorConfig configures a Validator. NewValidator copies it.
type ValidatorConfig struct {
	// JWKSURLs maps each trusted issuer (the exact "iss" value) to its JWKS
	// URL. Required. URLs must be https, except loopback http with
	// AllowInsecureLoopback.
	JWKSURLs map[string]string
	// Audience must appear in the token's "aud". Required.
	Audience string
	// MaxLifetime caps exp-iat. Default DefaultMaxLifetime (15m).
	MaxLifetime time.Duration
	// ClockSkew is the leeway applied to exp, nbf and iat. Default
	// DefaultClockSkew (30s); at most MaxClockSkew (2m).
	ClockSkew time.Duration
	// HTTPClient fetches JWKS documents. Default: a client with a
	// DefaultJWKSTimeout timeout. Redirects are re-checked with CheckOutboundURL.
	HTTPClient *http.Client
	// AllowInsecureLoopback permits http:// JWKS URLs on loopback hosts (tests, dev).
	AllowInsecureLoopback bool
	// Now is the clock. Default time.Now.
	Now func() time.Time
	// JWKSCacheTTL is how long a fetched JWKS is used before it is fetched
	// again. Default DefaultJWKSCacheTTL (10m). If a refresh fails, the old
	// keys stay usable for one more TTL.
	JWKSCacheTTL time.Duration
	// JWKSRefetchInterval is the minimum time between two fetches of one
	// issuer's JWKS (an unknown kid triggers a fetch, so this bounds what a
	// stream of forged kids can cost). Default DefaultJWKSRefetch (30s).
	JWKSRefetchInterval time.Duration
}

// WithDefaults returns a copy of c with zero fields set to their defaults.
func (c ValidatorConfig) WithDefaults() ValidatorConfig {
	if c.MaxLifetime == 0 {
		c.MaxLifetime = DefaultMaxLifetime
	}
	if c.ClockSkew == 0 {
		c.ClockSkew = DefaultClockSkew
	}
	if c.JWKSCacheTTL == 0 {
		c.JWKSCacheTTL = DefaultJWKSCacheTTL
	}
	if c.JWKSRefetchInterval == 0 {
		c.JWKSRefetchInterval = DefaultJWKSRefetch
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.HTTPClient == nil {
		c.HTTPClient = &http.Client{Timeout: DefaultJWKSTimeout}
	}
	return c
}

func (c ValidatorConfig) validate() error {
	if len(c.JWKSURLs) == 0 {
		return errors.New("access: validator config: JWKSURLs: at least one issuer required")
	}
	for iss, u := range c.JWKSURLs {
		if strings.TrimSpace(iss) == "" {
			return errors.New("access: validator config: JWKSURLs: empty issuer")
		}
		if err := CheckOutboundURL(u, c.AllowInsecureLoopback); err != nil {
			return fmt.Errorf("access: validator config: JWKSURLs[%q]: %w", iss, err)
		}
	}
	if strings.TrimSpace(c.Audience) == "" {
		return errors.New("access: validator config: Audience required")
	}
	if c.MaxLifetime < 0 {
		return errors.New("access: validator config: MaxLifetime must be positive")
	}
	if c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew {
		return fmt.Errorf("access: validator config: ClockSkew must be between 0 and %s", MaxClockSkew)
	}
	if c.JWKSCacheTTL < 0 || c.JWKSRefetchInterval < 0 {
		return errors.New("access: validator config: JWKS durations must be positive")
	}
	return nil
}

// Validator checks bearer JWTs against the trusted issuers' JWKS. It is
// immutable after construction apart from its key caches, and safe for
// concurrent use.
type Validator struct {
	cfg     ValidatorConfig
	client  *http.Client
	issuers map[string]*keySet
	parser  *jwt.Parser
}

// NewValidator checks cfg, applies defaults and returns a Validator. It does
// not fetch keys; the first token of each issuer does.
func NewValidator(cfg ValidatorConfig) (*Validator, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	urls := make(map[string]string, len(cfg.JWKSURLs))
	for k, v := range cfg.JWKSURLs {
		urls[k] = v
	}
	cfg.JWKSURLs = urls
	// Copy the client so we can re-check redirects without touching the caller's.
	client := *cfg.HTTPClient
	insecure := cfg.AllowInsecureLoopback
	client.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= maxJWKSRedirects {
			return errors.New("access: jwks: too many redirects")
		}
		return CheckOutboundURL(req.URL.String(), insecure)
	}
	v := &Validator{
		cfg:     cfg,
		client:  &client,
		issuers: make(map[string]*keySet, len(urls)),
		// Only parsing is delegated; every check is ours (see Validate).
		parser: jwt.NewParser(jwt.WithStrictDecoding()),
	}
	for iss, u := range urls {
		v.issuers[iss] = &keySet{v: v, issuer: iss, url: u}
	}
	return v, nil
}

// Principal is the authenticated caller. Only Subject, Role and ClientID are
// ever logged (see LogValue).
type Principal struct {
	Subject  string
	Issuer   string
	ClientID string // "azp", else "client_id"
	// TenantID is empty until BindTenant succeeds.
	TenantID   string
	Role       Role   // "vigil_role", else roles[0]
	Department string // "department"
	Scopes     []string
	TokenID    string // "jti"
	ExpiresAt  time.Time
	OnBehalfOf string // "act"."sub" (token exchange: the client acts for this subject)
	// TenantClaim is the token's "tenant" claim, if any. It proves nothing
	// by itself: BindTenant refuses it unless the issuer is bound to it.
	TenantClaim string
}

// LogValue implements slog.LogValuer: subject, role and client only. It has
// a value receiver so that Principal values and pointers both redact.
func (p Principal) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("subject", p.Subject),
		slog.String("role", string(p.Role)),
		slog.String("client", p.ClientID),
	)
}

// HasScope reports whether p's granted scopes satisfy required (see HasScope).
func (p *Principal) HasScope(required string) bool { return HasScope(p.Scopes, required) }

type claims struct {
	jwt.RegisteredClaims
	AZP        string           `json:"azp"`
	ClientID   string           `json:"client_id"`
	Scope      jwt.ClaimStrings `json:"scope"`
	SCP        jwt.ClaimStrings `json:"scp"`
	VigilRole  string           `json:"vigil_role"`
	Roles      jwt.ClaimStrings `json:"roles"`
	Department string           `json:"department"`
	Tenant     string           `json:"tenant"`
	Act        *struct {
		Sub string `json:"sub"`
	} `json:"act"`
}

// Validate verifies raw (a compact JWS, without "Bearer ") and returns its
// principal, with TenantID empty (see BindTenant). Every rejection is a
// *TokenError wrapping ErrInvalidToken; neither the token nor any claim value
// appears in the error.
func (v *Validator) Validate(ctx context.Context, raw string) (*Principal, error) {
	if raw == "" || strings.Count(raw, ".") != 2 {
		return nil, tokenErr(ReasonMalformed)
	}
	if len(raw) > maxTokenBytes {
		return nil, tokenErr(ReasonTooLarge)
	}
	var c claims
	tok, parts, err := v.parser.ParseUnverified(raw, &c)
	if tok != nil && tok.Header != nil {
		// The algorithm check comes first so "none" and HS* are always reported as such.
		alg, _ := tok.Header["alg"].(string)
		if !slices.Contains(allowedAlgs, alg) {
			return nil, tokenErr(ReasonAlgNotAllowed)
		}
	}
	if err != nil {
		if errors.Is(err, jwt.ErrTokenMalformed) && tok != nil && tok.Header != nil {
			return nil, tokenErr(ReasonBadClaims)
		}
		return nil, tokenErr(ReasonMalformed)
	}
	if _, ok := tok.Header["crit"]; ok {
		// RFC 7515 §4.1.11: we understand no extensions, so any "crit" is fatal.
		return nil, tokenErr(ReasonCritHeader)
	}
	alg := tok.Method.Alg()
	ks, ok := v.issuers[c.Issuer]
	if !ok {
		return nil, tokenErr(ReasonUnknownIssuer)
	}
	kid, _ := tok.Header["kid"].(string)
	key, terr := ks.key(ctx, kid, alg)
	if terr != nil {
		return nil, terr
	}
	if err := tok.Method.Verify(parts[0]+"."+parts[1], tok.Signature, key); err != nil {
		return nil, tokenErr(ReasonBadSignature)
	}
	// Claims, only once the signature is good (so reasons don't leak to forgers).
	if !slices.Contains(c.Audience, v.cfg.Audience) {
		return nil, tokenErr(ReasonWrongAudience)
	}
	now := v.cfg.Now()
	skew := v.cfg.ClockSkew
	if c.ExpiresAt == nil {
		return nil, tokenErr(ReasonMissingExp)
	}
	if !now.Before(c.ExpiresAt.Add(skew)) {
		return nil, tokenErr(ReasonExpired)
	}
	if c.NotBefore != nil && now.Add(skew).Before(c.NotBefore.Time) {
		return nil, tokenErr(ReasonNotYetValid)
	}
	if c.IssuedAt == nil {
		return nil, tokenErr(ReasonMissingIat)
	}
	if now.Add(skew).Before(c.IssuedAt.Time) {
		return nil, tokenErr(ReasonIssuedInFuture)
	}
	life := c.ExpiresAt.Sub(c.IssuedAt.Time)
	if life <= 0 {
		return nil, tokenErr(ReasonBadLifetime)
	}
	if life > v.cfg.MaxLifetime {
		return nil, tokenErr(ReasonLifetimeExceeded)
	}
	if strings.TrimSpace(c.Subject) == "" {
		return nil, tokenErr(ReasonMissingSubject)
	}
	p := &Principal{
		Subject:     c.Subject,
		Issuer:      c.Issuer,
		ClientID:    c.AZP,
		Department:  c.Department,
		TokenID:     c.ID,
		ExpiresAt:   c.ExpiresAt.Time,
		TenantClaim: c.Tenant,
	}
	if p.ClientID == "" {
		p.ClientID = c.ClientID
	}
	switch {
	case c.VigilRole != "":
		p.Role = Role(c.VigilRole)
	case len(c.Roles) > 0:
		p.Role = Role(c.Roles[0])
	}
	scopes := c.Scope
	if len(scopes) == 0 {
		scopes = c.SCP
	}
	for _, s := range scopes {
		p.Scopes = append(p.Scopes, strings.Fields(s)...)
	}
	if c.Act != nil {
		p.OnBehalfOf = c.Act.Sub
	}
	return p, nil
}
