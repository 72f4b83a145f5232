package llm

import (
	"bytes"
	"context"
	"crypto/tls"
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
	"sync"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// OpenAI defaults.
const (
	DefaultTimeout          = 20 * time.Second
	DefaultMaxAttempts      = 3
	DefaultBaseBackoff      = 500 * time.Millisecond
	DefaultMaxBackoff       = 5 * time.Second
	DefaultBreakerThreshold = 5
	DefaultBreakerCooldown  = 30 * time.Second
	// MaxResponseBytes bounds the HTTP response body read from the server.
	MaxResponseBytes = 1 << 20
)

// OpenAIConfig configures the OpenAI-compatible drafter. NewOpenAI copies it.
type OpenAIConfig struct {
	// BaseURL is the API base, e.g. https://api.openai.com/v1 or
	// http://127.0.0.1:8080/v1 (required). It must be https unless it is a
	// loopback address and AllowInsecureLoopback is set.
	BaseURL string
	// Model is the model id sent with every request (required).
	Model string
	// APIKey is sent as a bearer token; empty sends none (local servers).
	APIKey string
	// Timeout bounds one whole Draft call, retries and backoff included
	// (default 20 s). The caller's context may shorten it.
	Timeout time.Duration
	// MaxAttempts is the number of HTTP requests per Draft at most (default 3).
	MaxAttempts int
	// BaseBackoff is the first retry delay, doubled per retry with jitter
	// (default 500 ms).
	BaseBackoff time.Duration
	// MaxBackoff caps a retry delay (default 5 s). A Retry-After longer than
	// MaxBackoff, or than the time left before the deadline, ends the call
	// with ErrUnavailable instead of waiting.
	MaxBackoff time.Duration
	// Temperature, when non-nil, is sent as "temperature". go-openai omits a
	// zero temperature (omitempty); this drafter puts "temperature":0 back
	// into the request body so that 0 really is sent. Nil sends nothing and
	// the server's default applies. CallRecord.Params shows what was sent.
	Temperature *float32
	// MaxTokens, when > 0, is sent as "max_tokens".
	MaxTokens int
	// Strict requests structured output with a JSON schema and strict: true
	// (OpenAI, Azure OpenAI, vLLM, recent llama.cpp and Ollama). When false,
	// response_format json_object is requested and the output is parsed
	// tolerantly; it is validated the same way in both cases.
	Strict bool
	// AllowInsecureLoopback permits http:// for loopback hosts (development and tests).
	AllowInsecureLoopback bool
	// BreakerThreshold is the number of consecutive failed HTTP attempts
	// (network error, timeout, 429, 5xx, unreadable response) that opens the
	// circuit breaker (default 5).
	BreakerThreshold int
	// BreakerCooldown is how long an open breaker fails fast before letting
	// one probe through (default 30 s).
	BreakerCooldown time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
	// Sleep waits d or until ctx is done (default: a timer). Tests inject one.
	Sleep func(ctx context.Context, d time.Duration) error
	// HTTPClient sends the requests (default: a client requiring TLS 1.2+).
	HTTPClient *http.Client
}

// WithDefaults returns a copy of c with zero fields set to their defaults.
func (c OpenAIConfig) WithDefaults() OpenAIConfig {
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.BaseBackoff == 0 {
		c.BaseBackoff = DefaultBaseBackoff
	}
	if c.MaxBackoff == 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	if c.BreakerThreshold == 0 {
		c.BreakerThreshold = DefaultBreakerThreshold
	}
	if c.BreakerCooldown == 0 {
		c.BreakerCooldown = DefaultBreakerCooldown
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Sleep == nil {
		c.Sleep = sleepCtx
	}
	if c.HTTPClient == nil {
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
		c.HTTPClient = &http.Client{Transport: tr}
	}
	return c
}

func (c OpenAIConfig) validate() error {
	u, err := url.Parse(c.BaseURL)
	switch {
	case c.BaseURL == "" || err != nil || !u.IsAbs() || u.Host == "":
		return errors.New("llm: OpenAIConfig.BaseURL must be an absolute http(s) URL")
	case u.User != nil:
		return errors.New("llm: OpenAIConfig.BaseURL must not carry credentials (use APIKey)")
	case u.Scheme == "https":
	case u.Scheme == "http" && isLoopback(u.Hostname()) && c.AllowInsecureLoopback:
	case u.Scheme == "http":
		return errors.New("llm: OpenAIConfig.BaseURL must use https (plain http only for a loopback host with AllowInsecureLoopback)")
	default:
		return errors.New("llm: OpenAIConfig.BaseURL must be an http(s) URL")
	}
	switch {
	case strings.TrimSpace(c.Model) == "":
		return errors.New("llm: OpenAIConfig.Model is required")
	case c.Timeout < 0:
		return errors.New("llm: OpenAIConfig.Timeout must not be negative")
	case c.MaxAttempts < 1:
		return errors.New("llm: OpenAIConfig.MaxAttempts must be at least 1")
	case c.BaseBackoff < 0 || c.MaxBackoff < 0:
		return errors.New("llm: OpenAIConfig.BaseBackoff and MaxBackoff must not be negative")
	case c.Temperature != nil && (*c.Temperature < 0 || *c.Temperature > 2):
		return errors.New("llm: OpenAIConfig.Temperature must be within [0, 2]")
	case c.MaxTokens < 0:
		return errors.New("llm: OpenAIConfig.MaxTokens must not be negative")
	case c.BreakerThreshold < 1:
		return errors.New("llm: OpenAIConfig.BreakerThreshold must be at least 1")
	case c.BreakerCooldown < 0:
		return errors.New("llm: OpenAIConfig.BreakerCooldown must not be negative")
	}
	return nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// OpenAI drafts with an OpenAI-compatible chat completions endpoint. It is
// safe for concurrent use; its circuit breaker is shared by all calls.
type OpenAI struct {
	cfg     OpenAIConfig
	prompts *promptBuilder
	breaker *breaker
}

var _ Drafter = (*OpenAI)(nil)

// NewOpenAI validates cfg (after WithDefaults) and returns the drafter.
// Invalid configuration returns an error naming the setting. It does not
// check the tenant allowlist: call CheckAllowed first.
func NewOpenAI(cfg OpenAIConfig) (*OpenAI, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	pb, err := newPromptBuilder()
	if err != nil {
		return nil, err
	}
	return &OpenAI{
		cfg:     cfg,
		prompts: pb,
		breaker: &breaker{threshold: cfg.BreakerThreshold, cooldown: cfg.BreakerCooldown, now: cfg.Now},
	}, nil
}

// Name implements Drafter.
func (o *OpenAI) Name() string { return "openai" }

// BreakerState reports the circuit breaker's state.
func (o *OpenAI) BreakerState() State { return o.breaker.state() }

// Draft implements Drafter. See the Drafter documentation for errors; the
// returned Result is never nil, and on error its Call holds whatever was
// sent and received (Attempts 0 when nothing was sent: an excluded trigger,
// a bad request or an open circuit breaker).
func (o *OpenAI) Draft(ctx context.Context, req Request) (*Result, error) {
	start := o.cfg.Now()
	res := &Result{Call: CallRecord{
		Drafter: o.Name(), Model: o.cfg.Model, Endpoint: o.cfg.BaseURL,
		PromptID: PromptID, PromptVersion: PromptVersion,
	}}
	defer func() { res.Call.Latency = o.cfg.Now().Sub(start) }()
	p, err := o.prompts.build(req)
	if err != nil {
		return res, err // nothing was sent
	}
	res.Call.Pseudonyms = p.Pseudonyms

	if !o.breaker.allow() {
		return res, fmt.Errorf("llm: draft: circuit breaker open: %w", ErrUnavailable)
	}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.Timeout)
	defer cancel()

	chatReq := o.chatRequest(p, req.Queues)
	var resp openai.ChatCompletionResponse
	for attempt := 1; ; attempt++ {
		rec := &recorder{base: o.cfg.HTTPClient, injectZeroTemp: o.cfg.Temperature != nil && *o.cfg.Temperature == 0}
		ccfg := openai.DefaultConfig(o.cfg.APIKey)
		ccfg.BaseURL = strings.TrimRight(o.cfg.BaseURL, "/")
		ccfg.HTTPClient = rec
		client := openai.NewClientWithConfig(ccfg)

		resp, err = client.CreateChatCompletion(ctx, chatReq)
		res.Call.Attempts = attempt
		rec.fill(&res.Call)
		if err == nil {
			o.breaker.success()
			break
		}
		retryable, reason := classify(ctx, err, rec)
		if ctx.Err() != nil {
			o.breaker.release()
			if errors.Is(ctx.Err(), context.DeadlineExceeded) {
				o.breaker.failure()
			}
			return res, fmt.Errorf("llm: draft: %s: %w: %w", reason, ErrUnavailable, ctx.Err())
		}
		if reason == "response is not a chat completion" {
			o.breaker.failure()
			return res, &OutputError{Reason: reason}
		}
		if retryable {
			o.breaker.failure()
		} else {
			o.breaker.release()
		}
		if !retryable || attempt >= o.cfg.MaxAttempts {
			return res, fmt.Errorf("llm: draft: %s after %d attempt(s): %w", reason, attempt, ErrUnavailable)
		}
		wait, ok := o.backoff(attempt, rec.header)
		if dl, has := ctx.Deadline(); !ok || (has && o.cfg.Now().Add(wait).After(dl)) {
			return res, fmt.Errorf("llm: draft: %s; retry delay exceeds the limit: %w", reason, ErrUnavailable)
		}
		if !o.breaker.allow() {
			return res, fmt.Errorf("llm: draft: %s; circuit breaker open: %w", reason, ErrUnavailable)
		}
		if err := o.cfg.Sleep(ctx, wait); err != nil {
			o.breaker.release()
			return res, fmt.Errorf("llm: draft: waiting to retry: %w: %w", ErrUnavailable, err)
		}
	}

	if resp.Model != "" {
		res.Call.Model = resp.Model
	}
	res.Call.PromptTokens = resp.Usage.PromptTokens
	res.Call.CompletionTokens = resp.Usage.CompletionTokens
	if len(resp.Choices) == 0 {
		return res, &OutputError{Reason: "no choices in response"}
	}
	ch := resp.Choices[0]
	switch {
	case ch.FinishReason == openai.FinishReasonLength:
		return res, &OutputError{Reason: "output truncated (finish_reason length)"}
	case ch.Message.Refusal != "" && strings.TrimSpace(ch.Message.Content) == "":
		return res, &OutputError{Reason: "model refused"}
	}
	d, err := ParseDraft([]byte(ch.Message.Content), req.Queues)
	if err != nil {
		return res, err
	}
	mapEvidence(&d, p.Pseudonyms)
	res.Draft = d
	return res, nil
}

// mapEvidence replaces pseudonyms by the references they stand for. An
// evidence string that is not a pseudonym is kept as written, so the
// grounding verifier reports it as a resource missing from the snapshot.
func mapEvidence(d *Draft, pseudonyms map[string]string) {
	for i := range d.Claims {
		for j, e := range d.Claims[i].Evidence {
			if real, ok := pseudonyms[e]; ok {
				d.Claims[i].Evidence[j] = real
			}
		}
	}
}

func (o *OpenAI) chatRequest(p *Prompt, queues []string) openai.ChatCompletionRequest {
	r := openai.ChatCompletionRequest{
		Model: o.cfg.Model,
		Messages: []openai.ChatCompletionMessage{
			{Role: openai.ChatMessageRoleSystem, Content: p.System},
			{Role: openai.ChatMessageRoleUser, Content: p.User},
		},
		MaxTokens: o.cfg.MaxTokens,
	}
	if o.cfg.Temperature != nil {
		r.Temperature = *o.cfg.Temperature
	}
	if o.cfg.Strict {
		r.ResponseFormat = &openai.ChatCompletionResponseFormat{
			Type: openai.ChatCompletionResponseFormatTypeJSONSchema,
			JSONSchema: &openai.ChatCompletionResponseFormatJSONSchema{
				Name:   "triage_draft",
				Schema: DraftSchema(queues),
				Strict: true,
			},
		}
	} else {
		r.ResponseFormat = &openai.ChatCompletionResponseFormat{Type: openai.ChatCompletionResponseFormatTypeJSONObject}
	}
	return r
}

// DraftSchema returns the JSON schema of a draft for the given queues, in
// the form strict structured output requires (every property required,
// additionalProperties false).
func DraftSchema(queues []string) json.RawMessage {
	schema := map[string]any{
		"type":                 "object",
		"additionalProperties": false,
		"required":             []string{"priority", "route", "rationale", "claims", "confidence", "reply_draft"},
		"properties": map[string]any{
			"priority":  map[string]any{"type": "string", "enum": []string{"stat", "asap", "urgent", "routine"}},
			"route":     map[string]any{"type": "string", "enum": queues},
			"rationale": map[string]any{"type": "string"},
			"claims": map[string]any{
				"type": "array",
				"items": map[string]any{
					"type":                 "object",
					"additionalProperties": false,
					"required":             []string{"text", "evidence"},
					"properties": map[string]any{
						"text":     map[string]any{"type": "string"},
						"evidence": map[string]any{"type": "array", "items": map[string]any{"type": "string"}},
					},
				},
			},
			"confidence":  map[string]any{"type": "number"},
			"reply_draft": map[string]any{"type": "string"},
		},
	}
	b, _ := json.Marshal(schema) // maps of strings and slices always marshal
	return b
}

// classify says whether a failed attempt may be retried, with a PHI-free reason.
func classify(ctx context.Context, err error, rec *recorder) (retryable bool, reason string) {
	if ctx.Err() != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			return false, "timed out"
		}
		return false, "cancelled"
	}
	status := 0
	var apiErr *openai.APIError
	var reqErr *openai.RequestError
	switch {
	case errors.As(err, &apiErr):
		status = apiErr.HTTPStatusCode
	case errors.As(err, &reqErr):
		status = reqErr.HTTPStatusCode
	}
	if status == 0 && rec.reqBody == nil {
		// go-openai refused the request before sending it (for example a
		// reasoning model with max_tokens or temperature): a configuration error.
		return false, "request refused by the client library (check Model, MaxTokens and Temperature)"
	}
	if status == 0 && rec.status >= 200 && rec.status < 300 {
		return false, "response is not a chat completion"
	}
	switch {
	case status == http.StatusTooManyRequests:
		return true, "rate limited (HTTP 429)"
	case status == http.StatusRequestTimeout:
		return true, "HTTP 408"
	case status >= 500:
		return true, "server error (HTTP " + strconv.Itoa(status) + ")"
	case status >= 400:
		return false, "request rejected (HTTP " + strconv.Itoa(status) + ")"
	case status != 0:
		return false, "unexpected HTTP " + strconv.Itoa(status)
	}
	return true, "transport error"
}

// backoff returns the delay before the next attempt, and false when the
// server asked for a longer wait than MaxBackoff.
func (o *OpenAI) backoff(attempt int, h http.Header) (time.Duration, bool) {
	if ra := h.Get("Retry-After"); ra != "" {
		if d, ok := parseRetryAfter(ra, o.cfg.Now()); ok {
			if d > o.cfg.MaxBackoff {
				return d, false
			}
			return d, true
		}
	}
	d := o.cfg.BaseBackoff << (attempt - 1)
	if d > o.cfg.MaxBackoff || d <= 0 {
		d = o.cfg.MaxBackoff
	}
	if d > 1 {
		d = d/2 + rand.N(d/2+1) // jitter in [d/2, d]
	}
	return d, true
}

// parseRetryAfter accepts delay-seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if n, err := strconv.Atoi(v); err == nil && n >= 0 {
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		if d < 0 {
			d = 0
		}
		return d, true
	}
	return 0, false
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// recorder is the HTTP doer handed to go-openai for one attempt: it keeps
// the exact request and response bodies, the status and headers, bounds the
// response size, and puts back a zero temperature go-openai dropped.
type recorder struct {
	base           *http.Client
	injectZeroTemp bool

	mu       sync.Mutex
	reqBody  []byte
	respBody []byte
	status   int
	header   http.Header
}

func (r *recorder) Do(req *http.Request) (*http.Response, error) {
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("llm: read request body: %w", err)
		}
		body = b
	}
	if r.injectZeroTemp {
		body = withZeroTemperature(body)
	}
	req.Body = io.NopCloser(bytes.NewReader(body))
	req.ContentLength = int64(len(body))
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	r.mu.Lock()
	r.reqBody = body
	r.mu.Unlock()

	resp, err := r.base.Do(req)
	if err != nil {
		return nil, err
	}
	b, rerr := io.ReadAll(io.LimitReader(resp.Body, MaxResponseBytes+1))
	_ = resp.Body.Close()
	if len(b) > MaxResponseBytes {
		b = b[:MaxResponseBytes] // truncated: decoding fails, which is reported as invalid output
	}
	r.mu.Lock()
	r.respBody, r.status, r.header = b, resp.StatusCode, resp.Header.Clone()
	r.mu.Unlock()
	if rerr != nil {
		return nil, fmt.Errorf("llm: read response body: %w", rerr)
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	resp.ContentLength = int64(len(b))
	return resp, nil
}

// fill copies what this attempt sent and received into c.
func (r *recorder) fill(c *CallRecord) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.reqBody != nil {
		c.RequestBody = r.reqBody
		c.Params = paramsOf(r.reqBody)
	}
	c.ResponseBody = r.respBody
	c.Status = r.status
}

// withZeroTemperature adds "temperature":0 to a JSON object lacking a
// temperature member.
func withZeroTemperature(body []byte) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(body, &m) != nil {
		return body
	}
	if _, ok := m["temperature"]; ok {
		return body
	}
	i := bytes.IndexByte(body, '{')
	if i < 0 {
		return body
	}
	sep := ","
	if len(m) == 0 {
		sep = ""
	}
	out := make([]byte, 0, len(body)+20)
	out = append(out, body[:i+1]...)
	out = append(out, `"temperature":0`+sep...)
	return append(out, body[i+1:]...)
}

// paramsOf decodes the top-level request members other than messages.
func paramsOf(body []byte) map[string]any {
	var m map[string]any
	if json.Unmarshal(body, &m) != nil {
		return nil
	}
	delete(m, "messages")
	return m
}
