package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Client is a FHIR R4 REST client. It implements Source. A Client is safe for
// concurrent use.
type Client struct {
	cfg  ClientConfig
	base *url.URL
}

var _ Source = (*Client)(nil)

// NewClient returns a Client for cfg (copied, defaults applied). It refuses a
// plain-http BaseURL unless cfg.AllowInsecureLoopback is set and the host is
// a loopback address.
func NewClient(cfg ClientConfig) (*Client, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	base, err := url.Parse(strings.TrimRight(cfg.BaseURL, "/"))
	if err != nil {
		return nil, fmt.Errorf("fhir: ClientConfig.BaseURL: %w", err)
	}
	return &Client{cfg: cfg, base: base}, nil
}

// Read returns the current version of typ/id. A 404 or 410 answer gives
// ErrNotFound; a body naming another resource gives ErrInvalid. When the body
// has no meta.versionId, VersionID is taken from a weak ETag if present.
func (c *Client) Read(ctx context.Context, typ, id string) (*Resource, error) {
	op := "read " + typ
	if !validType(typ) || !validID(id) {
		return nil, fmt.Errorf("fhir: %s: malformed type or id: %w", safeOp(op, typ), ErrInvalid)
	}
	body, hdr, err := c.get(ctx, op, c.resolve(typ, id))
	if err != nil {
		return nil, err
	}
	r, err := newResource(body)
	if err != nil {
		return nil, fmt.Errorf("fhir: %s: %w", op, err)
	}
	if r.Type != typ || r.ID != id {
		return nil, fmt.Errorf("fhir: %s: response is a different resource than requested: %w", op, ErrInvalid)
	}
	if r.VersionID == "" {
		r.VersionID = etagVersion(hdr.Get("ETag"))
	}
	return r, nil
}

// VRead returns version of typ/id. A body whose meta.versionId differs from
// version gives ErrInvalid; a body without one gets VersionID = version.
func (c *Client) VRead(ctx context.Context, typ, id, version string) (*Resource, error) {
	op := "vread " + typ
	if !validType(typ) || !validID(id) || !validID(version) {
		return nil, fmt.Errorf("fhir: %s: malformed type, id or version: %w", safeOp(op, typ), ErrInvalid)
	}
	body, _, err := c.get(ctx, op, c.resolve(typ, id, "_history", version))
	if err != nil {
		return nil, err
	}
	r, err := newResource(body)
	if err != nil {
		return nil, fmt.Errorf("fhir: %s: %w", op, err)
	}
	if r.Type != typ || r.ID != id {
		return nil, fmt.Errorf("fhir: %s: response is a different resource than requested: %w", op, ErrInvalid)
	}
	switch r.VersionID {
	case version:
	case "":
		r.VersionID = version
	default:
		return nil, fmt.Errorf("fhir: %s: response is a different version than requested: %w", op, ErrInvalid)
	}
	return r, nil
}

// Search runs GET [base]/typ?params and follows Bundle.link[relation=next]
// (only to the BaseURL's scheme and host) for at most MaxPages pages.
// It returns the entries whose search.mode is "match" (or absent) and whose
// type is typ, each with Raw = the exact bytes of entry.resource; a resource
// seen on two pages is returned once.
func (c *Client) Search(ctx context.Context, typ string, params url.Values) ([]*Resource, error) {
	op := "search " + typ
	if !validType(typ) {
		return nil, fmt.Errorf("fhir: search: malformed type: %w", ErrInvalid)
	}
	u := c.resolve(typ)
	u.RawQuery = params.Encode()
	var out []*Resource
	seen := map[string]bool{}
	visited := map[string]bool{}
	for page := 1; ; page++ {
		if page > c.cfg.MaxPages {
			return nil, fmt.Errorf("fhir: %s: more than %d result pages (ClientConfig.MaxPages): %w", op, c.cfg.MaxPages, ErrInvalid)
		}
		visited[u.String()] = true
		body, _, err := c.get(ctx, op, u)
		if err != nil {
			return nil, err
		}
		rs, next, err := parseSearchPage(body, typ)
		if err != nil {
			return nil, fmt.Errorf("fhir: %s: page %d: %w", op, page, err)
		}
		for _, r := range rs {
			k := r.Type + "/" + r.ID
			if !seen[k] {
				seen[k] = true
				out = append(out, r)
			}
		}
		if next == "" {
			return out, nil
		}
		nu, err := u.Parse(next)
		if err != nil || !strings.EqualFold(nu.Scheme, c.base.Scheme) || !strings.EqualFold(nu.Host, c.base.Host) {
			return nil, fmt.Errorf("fhir: %s: page %d: next link points outside ClientConfig.BaseURL: %w", op, page, ErrInvalid)
		}
		if visited[nu.String()] {
			return nil, fmt.Errorf("fhir: %s: page %d: next link loops: %w", op, page, ErrInvalid)
		}
		u = nu
	}
}

// searchBundle is the part of a searchset Bundle the client reads.
type searchBundle struct {
	ResourceType string `json:"resourceType"`
	Type         string `json:"type"`
	Link         []struct {
		Relation string `json:"relation"`
		URL      string `json:"url"`
	} `json:"link"`
	Entry []struct {
		Resource json.RawMessage `json:"resource"`
		Search   *struct {
			Mode string `json:"mode"`
		} `json:"search"`
	} `json:"entry"`
}

func parseSearchPage(body []byte, typ string) ([]*Resource, string, error) {
	if !isJSONObject(body) {
		return nil, "", invalidf("fhir: response is not a JSON object")
	}
	var b searchBundle
	if err := json.Unmarshal(body, &b); err != nil {
		return nil, "", invalidf("fhir: response: %s", jsonErrorDetail(err))
	}
	if b.ResourceType != "Bundle" || b.Type != "searchset" {
		return nil, "", invalidf("fhir: response is not a searchset Bundle")
	}
	var out []*Resource
	for i, e := range b.Entry {
		if e.Search != nil && e.Search.Mode != "" && e.Search.Mode != "match" {
			continue // include or outcome
		}
		if len(e.Resource) == 0 || string(e.Resource) == "null" {
			return nil, "", invalidf("fhir: entry %d has no resource", i)
		}
		r, err := newResource(e.Resource)
		if err != nil {
			return nil, "", fmt.Errorf("fhir: entry %d: %w", i, err)
		}
		if r.Type != typ {
			continue // an _include the server did not mark as such
		}
		out = append(out, r)
	}
	next := ""
	for _, l := range b.Link {
		if l.Relation == "next" {
			next = l.URL
		}
	}
	return out, next, nil
}

// resolve joins path segments (already validated) onto the base URL.
func (c *Client) resolve(segs ...string) *url.URL {
	u := *c.base
	u.RawQuery, u.Fragment = "", ""
	for _, s := range segs {
		u.Path = strings.TrimSuffix(u.Path, "/") + "/" + s
	}
	u.RawPath = ""
	return &u
}

// attemptError is the outcome of one failed attempt.
type attemptError struct {
	err        error
	retryable  bool
	retryAfter time.Duration // from a Retry-After header, if any
}

// get performs GET u with retries, returning the body of a 200 answer.
func (c *Client) get(ctx context.Context, op string, u *url.URL) ([]byte, http.Header, error) {
	deadline := time.Now().Add(c.cfg.MaxRetryTime)
	for attempt := 1; ; attempt++ {
		body, hdr, ae := c.once(ctx, u)
		if ae == nil {
			return body, hdr, nil
		}
		if !ae.retryable {
			return nil, nil, fmt.Errorf("fhir: %s: %w", op, ae.err)
		}
		if attempt >= c.cfg.MaxAttempts {
			return nil, nil, fmt.Errorf("fhir: %s: gave up after %d attempts: %w: %w", op, attempt, ErrUnavailable, ae.err)
		}
		wait := backoff(c.cfg.BaseBackoff, attempt)
		if ae.retryAfter > 0 {
			wait = ae.retryAfter
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, nil, fmt.Errorf("fhir: %s: retry time exhausted after %d attempts (ClientConfig.MaxRetryTime): %w: %w", op, attempt, ErrUnavailable, ae.err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, nil, fmt.Errorf("fhir: %s: %w", op, ctx.Err())
		case <-t.C:
		}
	}
}

// backoff returns base·2^(attempt-1), capped, with jitter in [d/2, d].
func backoff(base time.Duration, attempt int) time.Duration {
	d := base
	for i := 1; i < attempt && d < maxBackoff; i++ {
		d *= 2
	}
	d = min(d, maxBackoff)
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// once performs a single attempt.
func (c *Client) once(ctx context.Context, u *url.URL) ([]byte, http.Header, *attemptError) {
	if err := ctx.Err(); err != nil {
		return nil, nil, &attemptError{err: err}
	}
	actx, cancel := context.WithTimeout(ctx, c.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, nil, &attemptError{err: fmt.Errorf("build request: %w", ErrInvalid)}
	}
	req.Header.Set("Accept", mimeFHIRJSON)
	if c.cfg.TokenSource != nil {
		tok, err := c.cfg.TokenSource(actx)
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, &attemptError{err: ctx.Err()}
			}
			return nil, nil, &attemptError{err: fmt.Errorf("token source: %w", err), retryable: true}
		}
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.cfg.HTTPClient.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, nil, &attemptError{err: ctx.Err()}
		}
		// A refused redirect (see sameOriginRedirect) is permanent.
		return nil, nil, &attemptError{err: stripURL(err), retryable: !errors.Is(err, ErrInvalid)}
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
		if err != nil {
			if ctx.Err() != nil {
				return nil, nil, &attemptError{err: ctx.Err()}
			}
			return nil, nil, &attemptError{err: fmt.Errorf("read body: %w", stripURL(err)), retryable: true}
		}
		if len(body) > MaxBodyBytes {
			return nil, nil, &attemptError{err: fmt.Errorf("response body exceeds %d bytes: %w", MaxBodyBytes, ErrInvalid)}
		}
		return body, resp.Header, nil
	case code == http.StatusNotFound || code == http.StatusGone:
		drain(resp.Body)
		return nil, nil, &attemptError{err: fmt.Errorf("status %d: %w", code, ErrNotFound)}
	case code == http.StatusTooManyRequests || code >= 500:
		drain(resp.Body)
		return nil, nil, &attemptError{
			err:        fmt.Errorf("status %d", code),
			retryable:  true,
			retryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()),
		}
	default:
		drain(resp.Body)
		return nil, nil, &attemptError{err: fmt.Errorf("unexpected status %d: %w", code, ErrInvalid)}
	}
}

func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10)) }

// stripURL drops the request URL (it can name a patient) from a transport error.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return fmt.Errorf("%s: %w", strings.ToLower(ue.Op), ue.Err)
	}
	return err
}

// parseRetryAfter reads delay-seconds or an HTTP-date; 0 when absent or invalid.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n <= 0 {
			return 0
		}
		if n > int64(24*time.Hour/time.Second) {
			n = int64(24 * time.Hour / time.Second)
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// etagVersion extracts the version from W/"3" (or "3").
func etagVersion(etag string) string {
	v := strings.TrimPrefix(strings.TrimSpace(etag), "W/")
	v = strings.Trim(v, `"`)
	if !validID(v) {
		return ""
	}
	return v
}

// safeOp keeps a malformed (caller-supplied) type out of the error text.
func safeOp(op, typ string) string {
	if validType(typ) {
		return op
	}
	return strings.Fields(op)[0]
}

// IsRetryable reports whether err is transient: the server was unavailable
// (ErrUnavailable: 5xx, 429 or network failures, after the client's own
// bounded retries) or a network timeout. It is false for ErrNotFound,
// ErrInvalid and for context cancellation or deadline.
func IsRetryable(err error) bool {
	switch {
	case err == nil:
		return false
	case errors.Is(err, ErrUnavailable):
		return true
	case errors.Is(err, ErrNotFound), errors.Is(err, ErrInvalid),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return false
	}
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}
