package fhir

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestClientReadVReadSearch(t *testing.T) {
	t.Parallel()
	st := setupFixtures(t)
	c := testClient(t, fhirMux(NewHandler(st)))
	ctx := ctxT(t)

	p, err := c.Read(ctx, "Patient", alfreda)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	want, _ := st.Read(ctx, "Patient", alfreda)
	if p.SHA256 != want.SHA256 || string(p.Raw) != string(want.Raw) || p.VersionID != "1" || p.LastUpdated == "" {
		t.Fatalf("Read = %+v, want the stored version", p)
	}
	v, err := c.VRead(ctx, "Patient", alfreda, "1")
	if err != nil || v.SHA256 != want.SHA256 {
		t.Fatalf("VRead: %v", err)
	}

	tests := []struct {
		name   string
		typ    string
		params url.Values
		want   int
	}{
		{"all observations, pages of 7", "Observation", url.Values{"patient": {"Patient/" + alfreda}, "_count": {"7"}}, -1},
		{"default page size", "Observation", url.Values{"subject": {"Patient/" + alfreda}}, -1},
		{"status filter", "MedicationRequest", url.Values{"patient": {alfreda}, "status": {"active,on-hold"}}, -1},
		{"nothing", "Observation", url.Values{"patient": {"Patient/none"}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := c.Search(ctx, tt.typ, tt.params)
			if err != nil {
				t.Fatalf("Search: %v", err)
			}
			direct, _ := st.Search(ctx, tt.typ, tt.params)
			if tt.want >= 0 && len(got) != tt.want {
				t.Fatalf("got %d, want %d", len(got), tt.want)
			}
			if len(got) != len(direct) {
				t.Fatalf("client got %d, store has %d", len(got), len(direct))
			}
			for i := range got {
				if got[i].SHA256 != direct[i].SHA256 || got[i].VersionID != direct[i].VersionID {
					t.Fatalf("result %d differs from the store's", i)
				}
			}
		})
	}
}

func TestClientSearchPreservesRawBytes(t *testing.T) {
	t.Parallel()
	// A pretty-printed bundle: each Resource.Raw must be the exact entry bytes.
	res := "{\n  \"resourceType\": \"Observation\",\n  \"id\": \"o1\",\n  \"meta\": {\"versionId\": \"4\"},\n  \"note\": \"<b>&amp;</b>\"\n}"
	body := `{"resourceType":"Bundle","type":"searchset","entry":[{"resource":` + res +
		`,"search":{"mode":"match"}},{"resource":{"resourceType":"Patient","id":"p"},"search":{"mode":"include"}}]}`
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Accept") != "application/fhir+json" {
			t.Errorf("Accept = %q", r.Header.Get("Accept"))
		}
		_, _ = w.Write([]byte(body))
	}))
	got, err := c.Search(ctxT(t), "Observation", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || string(got[0].Raw) != res || got[0].SHA256 != Hash([]byte(res)) || got[0].VersionID != "4" {
		t.Fatalf("got %+v", got)
	}
}

func TestClientRetries(t *testing.T) {
	t.Parallel()
	patient := []byte(`{"resourceType":"Patient","id":"p1","meta":{"versionId":"2"}}`)
	tests := []struct {
		name      string
		failures  int // answers before success (-1: never succeeds)
		status    int
		header    map[string]string
		wantErr   error
		wantCalls int32
	}{
		{"503 then success", 2, 503, nil, nil, 3},
		{"429 with Retry-After seconds", 1, 429, map[string]string{"Retry-After": "1"}, nil, 2},
		{"429 with Retry-After date", 1, 429, map[string]string{"Retry-After": time.Now().Add(-time.Hour).UTC().Format(http.TimeFormat)}, nil, 2},
		{"persistent 500", -1, 500, nil, ErrUnavailable, 4},
		{"404", -1, 404, nil, ErrNotFound, 1},
		{"410", -1, 410, nil, ErrNotFound, 1},
		{"400", -1, 400, nil, ErrInvalid, 1},
		{"401", -1, 401, nil, ErrInvalid, 1},
		{"Retry-After beyond MaxRetryTime", -1, 429, map[string]string{"Retry-After": "3600"}, ErrUnavailable, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var calls atomic.Int32
			c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := calls.Add(1)
				if tt.failures < 0 || int(n) <= tt.failures {
					for k, v := range tt.header {
						w.Header().Set(k, v)
					}
					w.WriteHeader(tt.status)
					return
				}
				_, _ = w.Write(patient)
			}), func(c *ClientConfig) { c.MaxRetryTime = 30 * time.Second })
			r, err := c.Read(ctxT(t), "Patient", "p1")
			if tt.wantErr == nil {
				if err != nil || r.VersionID != "2" {
					t.Fatalf("Read = %v, %v", r, err)
				}
			} else if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got := calls.Load(); got != tt.wantCalls {
				t.Fatalf("calls = %d, want %d", got, tt.wantCalls)
			}
			if tt.wantErr != nil && IsRetryable(err) != (tt.wantErr == ErrUnavailable) {
				t.Fatalf("IsRetryable(%v) wrong", err)
			}
			if tt.wantErr != nil && strings.Contains(err.Error(), "p1") {
				t.Fatalf("error names the resource id: %v", err)
			}
		})
	}
}

func TestClientNetworkErrorIsUnavailable(t *testing.T) {
	t.Parallel()
	c, err := NewClient(ClientConfig{BaseURL: "http://127.0.0.1:1/fhir", AllowInsecureLoopback: true, BaseBackoff: time.Millisecond, MaxAttempts: 2})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.Read(ctxT(t), "Patient", "secret-id")
	if !errors.Is(err, ErrUnavailable) || !IsRetryable(err) {
		t.Fatalf("err = %v, want ErrUnavailable", err)
	}
	if strings.Contains(err.Error(), "secret-id") {
		t.Fatalf("error names the id: %v", err)
	}
}

func TestClientContextCancelStopsRetries(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			cancel()
		}
		w.WriteHeader(503)
	}), func(c *ClientConfig) { c.BaseBackoff = time.Hour; c.MaxRetryTime = 2 * time.Hour })
	_, err := c.Read(ctx, "Patient", "p1")
	if !errors.Is(err, context.Canceled) || IsRetryable(err) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if calls.Load() != 1 {
		t.Fatalf("calls = %d, want 1", calls.Load())
	}
}

func TestClientRejectsWrongResource(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		body string
		call func(*Client) error
	}{
		{"other id", `{"resourceType":"Patient","id":"other"}`, func(c *Client) error { _, err := c.Read(context.Background(), "Patient", "p1"); return err }},
		{"other type", `{"resourceType":"Observation","id":"p1"}`, func(c *Client) error { _, err := c.Read(context.Background(), "Patient", "p1"); return err }},
		{"other version", `{"resourceType":"Patient","id":"p1","meta":{"versionId":"9"}}`, func(c *Client) error {
			_, err := c.VRead(context.Background(), "Patient", "p1", "1")
			return err
		}},
		{"not json", `<html>`, func(c *Client) error { _, err := c.Read(context.Background(), "Patient", "p1"); return err }},
		{"search not a bundle", `{"resourceType":"Patient","id":"p1"}`, func(c *Client) error { _, err := c.Search(context.Background(), "Patient", nil); return err }},
		{"next link elsewhere", `{"resourceType":"Bundle","type":"searchset","link":[{"relation":"next","url":"https://evil.example/fhir/Patient?page=2"}]}`, func(c *Client) error {
			_, err := c.Search(context.Background(), "Patient", nil)
			return err
		}},
		{"malformed id", ``, func(c *Client) error { _, err := c.Read(context.Background(), "Patient", "../x"); return err }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte(tt.body)) }))
			if err := tt.call(c); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestClientBodyLimit(t *testing.T) {
	t.Parallel()
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(`{"resourceType":"Patient","id":"p1","x":"`))
		_, _ = w.Write([]byte(strings.Repeat("a", MaxBodyBytes)))
		_, _ = w.Write([]byte(`"}`))
	}))
	if _, err := c.Read(ctxT(t), "Patient", "p1"); !errors.Is(err, ErrInvalid) {
		t.Fatalf("err = %v, want ErrInvalid", err)
	}
}

func TestClientMaxPages(t *testing.T) {
	t.Parallel()
	st := setupFixtures(t)
	c := testClient(t, fhirMux(NewHandler(st)), func(c *ClientConfig) { c.MaxPages = 2 })
	_, err := c.Search(ctxT(t), "Observation", url.Values{"patient": {alfreda}, "_count": {"5"}})
	if !errors.Is(err, ErrInvalid) || !strings.Contains(err.Error(), "MaxPages") {
		t.Fatalf("err = %v, want a MaxPages error", err)
	}
}

func TestClientBearerToken(t *testing.T) {
	t.Parallel()
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok-1" {
			w.WriteHeader(401)
			return
		}
		_, _ = w.Write([]byte(`{"resourceType":"Patient","id":"p1"}`))
	}), func(c *ClientConfig) {
		c.TokenSource = func(context.Context) (string, error) { return "tok-1", nil }
	})
	if _, err := c.Read(ctxT(t), "Patient", "p1"); err != nil {
		t.Fatal(err)
	}
}

func TestNewClientConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		cfg     ClientConfig
		wantErr string // substring naming the setting; "" for success
	}{
		{"https", ClientConfig{BaseURL: "https://ehr.example/fhir"}, ""},
		{"missing", ClientConfig{}, "BaseURL"},
		{"http refused", ClientConfig{BaseURL: "http://127.0.0.1:8080/fhir"}, "AllowInsecureLoopback"},
		{"http to remote refused", ClientConfig{BaseURL: "http://ehr.example/fhir", AllowInsecureLoopback: true}, "AllowInsecureLoopback"},
		{"http to 10/8 refused", ClientConfig{BaseURL: "http://10.0.0.1/fhir", AllowInsecureLoopback: true}, "AllowInsecureLoopback"},
		{"http loopback v4", ClientConfig{BaseURL: "http://127.1.2.3:8080/fhir", AllowInsecureLoopback: true}, ""},
		{"http loopback v6", ClientConfig{BaseURL: "http://[::1]:8080/fhir", AllowInsecureLoopback: true}, ""},
		{"http localhost", ClientConfig{BaseURL: "http://localhost:8080", AllowInsecureLoopback: true}, ""},
		{"credentials in URL", ClientConfig{BaseURL: "https://u:p@ehr.example/fhir"}, "credentials"},
		{"ftp", ClientConfig{BaseURL: "ftp://ehr.example/fhir"}, "https"},
		{"relative", ClientConfig{BaseURL: "/fhir"}, "BaseURL"},
		{"negative timeout", ClientConfig{BaseURL: "https://ehr.example", Timeout: -1}, "Timeout"},
		{"negative pages", ClientConfig{BaseURL: "https://ehr.example", MaxPages: -1}, "MaxPages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := NewClient(tt.cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("NewClient: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
			}
		})
	}
	d := ClientConfig{}.WithDefaults()
	if d.Timeout != 10*time.Second || d.MaxAttempts != 5 || d.MaxRetryTime != 2*time.Minute || d.BaseBackoff != 200*time.Millisecond || d.MaxPages != 50 || d.HTTPClient == nil {
		t.Fatalf("defaults = %+v", d)
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		in   string
		want time.Duration
	}{
		{"", 0}, {"3", 3 * time.Second}, {"-1", 0}, {"soon", 0},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0},
	}
	for _, tt := range tests {
		if got := parseRetryAfter(tt.in, now); got != tt.want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	for attempt := 1; attempt < 40; attempt++ {
		d := backoff(100*time.Millisecond, attempt)
		if d <= 0 || d > maxBackoff {
			t.Fatalf("backoff(%d) = %v", attempt, d)
		}
	}
}

func TestClientTransientFailuresBecomeUnavailable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		h    http.HandlerFunc
		mod  func(*ClientConfig)
	}{
		{"per-request timeout", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() },
			func(c *ClientConfig) { c.Timeout = 20 * time.Millisecond; c.MaxAttempts = 2 }},
		{"token source failing", func(w http.ResponseWriter, r *http.Request) { t.Error("request sent without a token") },
			func(c *ClientConfig) {
				c.TokenSource = func(context.Context) (string, error) { return "", errors.New("idp down") }
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := testClient(t, tt.h, tt.mod)
			_, err := c.Read(ctxT(t), "Patient", "p1")
			if !errors.Is(err, ErrUnavailable) || !IsRetryable(err) {
				t.Fatalf("err = %v, want ErrUnavailable", err)
			}
		})
	}
}

func TestClientRefusesCrossOriginRedirect(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	c := testClient(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		http.Redirect(w, r, "https://elsewhere.example/fhir/Patient/p1", http.StatusFound)
	}))
	_, err := c.Read(ctxT(t), "Patient", "p1")
	if !errors.Is(err, ErrInvalid) || IsRetryable(err) || calls.Load() != 1 {
		t.Fatalf("err = %v after %d calls, want ErrInvalid at once", err, calls.Load())
	}
}
