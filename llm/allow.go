package llm

import (
	"fmt"
	"net/url"
	"strings"
)

// Endpoint is one entry of a tenant's LLM allowlist.
type Endpoint struct {
	// BaseURL is the OpenAI-compatible base URL, e.g. https://example.openai.azure.com/v1.
	BaseURL string `json:"base_url"`
	// BAA records that a business associate agreement covers this endpoint.
	BAA bool `json:"baa"`
}

// CheckAllowed returns nil only when baseURL is on allow with BAA true.
// URLs are compared by scheme, host (case-insensitive, default port
// dropped) and path (trailing slash ignored); query strings and fragments
// never match. Errors wrap ErrEndpointNotAllowed and do not quote the URL's
// user info.
func CheckAllowed(baseURL string, allow []Endpoint) error {
	want, ok := canonicalURL(baseURL)
	if !ok {
		return fmt.Errorf("llm: endpoint is not a valid absolute URL: %w", ErrEndpointNotAllowed)
	}
	for _, e := range allow {
		got, ok := canonicalURL(e.BaseURL)
		if !ok || got != want {
			continue
		}
		if !e.BAA {
			return fmt.Errorf("llm: endpoint %s is listed without a BAA: %w", want, ErrEndpointNotAllowed)
		}
		return nil
	}
	return fmt.Errorf("llm: endpoint %s is not on the tenant's allowlist: %w", want, ErrEndpointNotAllowed)
}

func canonicalURL(s string) (string, bool) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || !u.IsAbs() || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", false
	}
	scheme := strings.ToLower(u.Scheme)
	host := strings.ToLower(u.Hostname())
	port := u.Port()
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host += ":" + port
	}
	return scheme + "://" + host + strings.TrimRight(u.EscapedPath(), "/"), true
}
