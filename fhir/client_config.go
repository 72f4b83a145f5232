package fhir

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Client defaults and limits.
const (
	// DefaultTimeout bounds one HTTP request.
	DefaultTimeout = 10 * time.Second
	// DefaultMaxAttempts is the number of tries per request, the first included.
	DefaultMaxAttempts = 5
	// DefaultMaxRetryTime bounds the total time one call spends retrying.
	DefaultMaxRetryTime = 2 * time.Minute
	// DefaultBaseBackoff is the wait before the second attempt; it doubles per attempt.
	DefaultBaseBackoff = 200 * time.Millisecond
	// DefaultMaxPages bounds how many search result pages one Search follows.
	DefaultMaxPages = 50
	// MaxBodyBytes is the largest response body the client accepts.
	MaxBodyBytes = 16 << 20

	maxBackoff   = 30 * time.Second
	mimeFHIRJSON = "application/fhir+json"
)

// ClientConfig configures a Client. The zero value of each field selects its
// default (see WithDefaults); NewClient copies the config.
type ClientConfig struct {
	// BaseURL is the FHIR server's base, e.g. "https://ehr.example/fhir/R4".
	// It must be https, unless AllowInsecureLoopback is set and the host is a
	// loopback address (127.0.0.0/8, ::1, localhost). Required.
	BaseURL string
	// HTTPClient sends the requests. Default: a client whose transport requires
	// TLS 1.2 or later and that follows at most 5 redirects, only to the same
	// scheme and host.
	HTTPClient *http.Client
	// Timeout bounds each HTTP request (each attempt). Default 10s.
	Timeout time.Duration
	// MaxAttempts is the number of tries per request, the first included.
	// Default 5; 1 disables retries.
	MaxAttempts int
	// MaxRetryTime bounds the total time one request spends on attempts and
	// waits. A wait (backoff or Retry-After) that would end past it is not
	// taken: the call fails with ErrUnavailable at once. Default 2m.
	MaxRetryTime time.Duration
	// BaseBackoff is the wait before the second attempt; it doubles for each
	// further attempt (capped at 30s), with random jitter in [d/2, d].
	// Default 200ms.
	BaseBackoff time.Duration
	// TokenSource, if set, is called before every attempt; its result is sent
	// as "Authorization: Bearer <token>". A failing TokenSource is retried like
	// a network error.
	TokenSource func(ctx context.Context) (string, error)
	// AllowInsecureLoopback permits a plain-http BaseURL when its host is a
	// loopback address. For development and tests only.
	AllowInsecureLoopback bool
	// MaxPages bounds the pages one Search follows; a search with more pages
	// fails with ErrInvalid rather than returning a silently truncated result.
	// Default 50.
	MaxPages int
}

// WithDefaults returns a copy of c with every zero field set to its default.
func (c ClientConfig) WithDefaults() ClientConfig {
	if c.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		c.HTTPClient = &http.Client{Transport: tr, CheckRedirect: sameOriginRedirect}
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.MaxRetryTime == 0 {
		c.MaxRetryTime = DefaultMaxRetryTime
	}
	if c.BaseBackoff == 0 {
		c.BaseBackoff = DefaultBaseBackoff
	}
	if c.MaxPages == 0 {
		c.MaxPages = DefaultMaxPages
	}
	return c
}

// validate checks a config after WithDefaults; errors name the setting.
func (c ClientConfig) validate() error {
	if c.BaseURL == "" {
		return fmt.Errorf("fhir: ClientConfig.BaseURL is required")
	}
	u, err := url.Parse(c.BaseURL)
	if err != nil || !u.IsAbs() || u.Host == "" || u.Opaque != "" {
		return fmt.Errorf("fhir: ClientConfig.BaseURL is not an absolute http(s) URL")
	}
	if u.User != nil {
		return fmt.Errorf("fhir: ClientConfig.BaseURL must not carry credentials (use TokenSource)")
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("fhir: ClientConfig.BaseURL must not have a query or fragment")
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
	case "http":
		if !c.AllowInsecureLoopback {
			return fmt.Errorf("fhir: ClientConfig.BaseURL must use https (plain http needs ClientConfig.AllowInsecureLoopback and a loopback host)")
		}
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("fhir: ClientConfig.BaseURL uses plain http to a non-loopback host; ClientConfig.AllowInsecureLoopback permits only 127.0.0.0/8, ::1 and localhost")
		}
	default:
		return fmt.Errorf("fhir: ClientConfig.BaseURL must use https")
	}
	switch {
	case c.Timeout < 0:
		return fmt.Errorf("fhir: ClientConfig.Timeout must not be negative")
	case c.MaxAttempts < 0:
		return fmt.Errorf("fhir: ClientConfig.MaxAttempts must not be negative")
	case c.MaxRetryTime < 0:
		return fmt.Errorf("fhir: ClientConfig.MaxRetryTime must not be negative")
	case c.BaseBackoff < 0:
		return fmt.Errorf("fhir: ClientConfig.BaseBackoff must not be negative")
	case c.MaxPages < 0:
		return fmt.Errorf("fhir: ClientConfig.MaxPages must not be negative")
	}
	return nil
}

func isLoopbackHost(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameOriginRedirect refuses redirects that change scheme or host (the bearer
// token must not travel elsewhere) and stops after 5.
func sameOriginRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 5 {
		return fmt.Errorf("fhir: too many redirects: %w", ErrInvalid)
	}
	first := via[0].URL
	if !strings.EqualFold(req.URL.Scheme, first.Scheme) || !strings.EqualFold(req.URL.Host, first.Host) {
		return fmt.Errorf("fhir: redirect to another origin refused: %w", ErrInvalid)
	}
	return nil
}
