package llmtest

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	openai "github.com/sashabaranov/go-openai"
)

// Response is what the server sends for one request.
type Response struct {
	// Status is the HTTP status (default 200).
	Status int
	// Header is added to the response headers.
	Header http.Header
	// Content, when Body is nil, is sent as the assistant message of a
	// well-formed chat completion.
	Content string
	// FinishReason of the completion (default "stop").
	FinishReason string
	// Body, when non-nil, is sent verbatim instead of a completion.
	Body []byte
	// Delay is waited (or until the client goes away) before answering.
	Delay time.Duration
	// Release, when non-nil, blocks the answer until it is closed or the
	// client goes away.
	Release <-chan struct{}
}

// Handler decides the response to one request. raw is the exact body received.
type Handler func(req openai.ChatCompletionRequest, raw []byte) Response

// Server is a running test server. Close is registered with t.Cleanup.
type Server struct {
	// URL is the base URL to configure a client with (ends in /v1).
	URL string

	srv *httptest.Server
	h   Handler

	mu       sync.Mutex
	requests [][]byte
}

// New starts a server answering with h.
func New(t testing.TB, h Handler) *Server {
	t.Helper()
	s := &Server{h: h}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	s.URL = s.srv.URL + "/v1"
	t.Cleanup(s.srv.Close)
	return s
}

// Requests returns a copy of every request body received, in order.
func (s *Server) Requests() [][]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([][]byte, len(s.requests))
	for i, r := range s.requests {
		out[i] = append([]byte(nil), r...)
	}
	return out
}

// Calls returns the number of chat completion requests received.
func (s *Server) Calls() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.requests)
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || !strings.HasSuffix(r.URL.Path, "/chat/completions") {
		http.Error(w, `{"error":{"message":"not found","type":"invalid_request_error"}}`, http.StatusNotFound)
		return
	}
	raw, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, `{"error":{"message":"unreadable body","type":"invalid_request_error"}}`, http.StatusBadRequest)
		return
	}
	s.mu.Lock()
	s.requests = append(s.requests, raw)
	n := len(s.requests)
	s.mu.Unlock()

	var req openai.ChatCompletionRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		writeJSON(w, http.StatusBadRequest, `{"error":{"message":"invalid JSON","type":"invalid_request_error"}}`)
		return
	}
	resp := s.h(req, raw)
	if resp.Delay > 0 {
		t := time.NewTimer(resp.Delay)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		}
	}
	if resp.Release != nil {
		select {
		case <-resp.Release:
		case <-r.Context().Done():
			return
		}
	}
	for k, vs := range resp.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	status := resp.Status
	if status == 0 {
		status = http.StatusOK
	}
	if resp.Body != nil {
		w.WriteHeader(status)
		_, _ = w.Write(resp.Body)
		return
	}
	model := req.Model
	if model == "" {
		model = "test-model"
	}
	fr := resp.FinishReason
	if fr == "" {
		fr = "stop"
	}
	body := map[string]any{
		"id":      fmt.Sprintf("chatcmpl-test-%d", n),
		"object":  "chat.completion",
		"created": 1700000000,
		"model":   model + "-served",
		"choices": []map[string]any{{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": resp.Content},
			"finish_reason": fr,
		}},
		"usage": map[string]any{
			"prompt_tokens":     len(raw) / 4,
			"completion_tokens": len(resp.Content) / 4,
			"total_tokens":      len(raw)/4 + len(resp.Content)/4,
		},
	}
	b, _ := json.Marshal(body)
	writeJSON(w, status, string(b))
}

func writeJSON(w http.ResponseWriter, status int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = io.WriteString(w, body)
}

// Answer returns a well-formed completion whose message content is content.
func Answer(content string) Response { return Response{Content: content} }

// Garbage returns a 200 response whose body is not a chat completion.
func Garbage() Response {
	return Response{Body: []byte("<html><body>502 upstream hiccup</body></html>\x00\xff")}
}

// Status returns an OpenAI-style error with the given HTTP status and, when
// retryAfter is not empty, a Retry-After header.
func Status(code int, retryAfter string) Response {
	r := Response{Status: code, Body: []byte(fmt.Sprintf(`{"error":{"message":"test status %d","type":"server_error"}}`, code))}
	if retryAfter != "" {
		r.Header = http.Header{"Retry-After": {retryAfter}}
	}
	return r
}

// Hang blocks until release is closed or the client goes away, then answers
// with an empty completion.
func Hang(release <-chan struct{}) Response { return Response{Release: release, Content: "{}"} }

// Slow answers with an empty object after d (or when the client goes away).
func Slow(d time.Duration) Response { return Response{Delay: d, Content: "{}"} }

// Fixed answers every request with r.
func Fixed(r Response) Handler {
	return func(openai.ChatCompletionRequest, []byte) Response { return r }
}

// Sequence answers the i-th request with rs[i]; requests past the end get
// the last response.
func Sequence(rs ...Response) Handler {
	var mu sync.Mutex
	i := 0
	return func(openai.ChatCompletionRequest, []byte) Response {
		mu.Lock()
		defer mu.Unlock()
		r := rs[min(i, len(rs)-1)]
		i++
		return r
	}
}
