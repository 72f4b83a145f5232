package access

import (
	"errors"
	"fmt"
)

// Sentinel errors. Match them with errors.Is; never match on error text.
var (
	// ErrInvalidToken is wrapped by every *TokenError: the bearer token was
	// rejected and the request is unauthenticated (HTTP 401).
	ErrInvalidToken = errors.New("access: invalid token")
	// ErrKeysUnavailable is wrapped (with ErrInvalidToken) when an issuer's
	// JWKS could not be fetched, so the router may answer 503 instead of 401.
	ErrKeysUnavailable = errors.New("access: signing keys unavailable")
	// ErrWrongTenant means the token's issuer or client is not bound to the
	// tenant it tried to act for (HTTP 403).
	ErrWrongTenant = errors.New("access: token not valid for this tenant")
	// ErrInsufficientScope means the token lacks a scope the endpoint needs (HTTP 403).
	ErrInsufficientScope = errors.New("access: insufficient scope")
	// ErrForbidden means the principal may not do what it asked (HTTP 403).
	ErrForbidden = errors.New("access: forbidden")
	// ErrInvalidInput means an argument failed validation (HTTP 400).
	ErrInvalidInput = errors.New("access: invalid input")
)

// TokenError explains why a token was rejected. Reason is a short fixed
// phrase safe to write to the audit trail ("expired", "bad signature", …); it
// never contains the token or any claim value.
type TokenError struct {
	Reason string
	// Err is an optional underlying cause that is not about the token's
	// content (ErrKeysUnavailable plus the fetch error). Never the token.
	Err error
}

// Error returns "access: invalid token: <reason>".
func (e *TokenError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("%s: %s: %v", ErrInvalidToken, e.Reason, e.Err)
	}
	return ErrInvalidToken.Error() + ": " + e.Reason
}

// Unwrap returns ErrInvalidToken and the cause, if any.
func (e *TokenError) Unwrap() []error {
	if e.Err != nil {
		return []error{ErrInvalidToken, e.Err}
	}
	return []error{ErrInvalidToken}
}

func tokenErr(reason string) *TokenError { return &TokenError{Reason: reason} }

// Token rejection reasons (TokenError.Reason). Stable strings: audit
// consumers and dashboards group by them.
const (
	ReasonMalformed        = "malformed"
	ReasonTooLarge         = "token too large"
	ReasonAlgNotAllowed    = "algorithm not allowed"
	ReasonCritHeader       = "unsupported critical header"
	ReasonUnknownIssuer    = "unknown issuer"
	ReasonUnknownKey       = "unknown signing key"
	ReasonKeysUnavailable  = "signing keys unavailable"
	ReasonBadSignature     = "bad signature"
	ReasonWrongAudience    = "wrong audience"
	ReasonMissingExp       = "missing exp"
	ReasonExpired          = "expired"
	ReasonNotYetValid      = "not yet valid"
	ReasonMissingIat       = "missing iat"
	ReasonIssuedInFuture   = "issued in the future"
	ReasonLifetimeExceeded = "lifetime exceeds maximum"
	ReasonBadLifetime      = "expires before issued"
	ReasonMissingSubject   = "missing subject"
	ReasonBadClaims        = "malformed claims"
)

// ScopeError says which scope an endpoint required. The scope string is
// configuration, not PHI, so it is safe to return to the client
// (WWW-Authenticate: Bearer error="insufficient_scope", scope="…").
type ScopeError struct {
	Required string
}

// Error returns "access: insufficient scope: requires <scope>".
func (e *ScopeError) Error() string {
	return ErrInsufficientScope.Error() + ": requires " + e.Required
}

// Unwrap returns ErrInsufficientScope.
func (e *ScopeError) Unwrap() error { return ErrInsufficientScope }

// NewScopeError returns a *ScopeError for required, for the router to return
// when HasScope fails.
func NewScopeError(required string) error { return &ScopeError{Required: required} }
