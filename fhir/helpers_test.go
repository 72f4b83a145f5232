package fhir

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"sync"
	"testing"
	"time"
)

const (
	fixtureDir = "../internal/fixtures/synthea"
	// alfreda is the Patient id of Alfreda_Wyman_*.json.
	alfreda = "6d23a95e-7e18-4201-90ec-9501fa89fbd2"
)

var fixtureClock = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

// fixtureStore loads the embedded fixtures once per test binary run.
var fixtureStore = sync.OnceValues(func() (*Store, error) {
	s := NewStore()
	s.SetClock(func() time.Time { return fixtureClock })
	_, err := s.LoadFS(os.DirFS(fixtureDir), ".")
	return s, err
})

func setupFixtures(tb testing.TB) *Store {
	tb.Helper()
	s, err := fixtureStore()
	if err != nil {
		tb.Fatalf("load fixtures: %v", err)
	}
	return s
}

// testClient returns a Client for a test server with tiny backoff.
func testClient(tb testing.TB, h http.Handler, mod ...func(*ClientConfig)) *Client {
	tb.Helper()
	srv := httptest.NewServer(h)
	tb.Cleanup(srv.Close)
	cfg := ClientConfig{
		BaseURL:               srv.URL + "/fhir",
		AllowInsecureLoopback: true,
		BaseBackoff:           time.Millisecond,
		MaxAttempts:           4,
	}
	for _, m := range mod {
		m(&cfg)
	}
	c, err := NewClient(cfg)
	if err != nil {
		tb.Fatalf("NewClient: %v", err)
	}
	return c
}

// fhirMux mounts a handler under /fhir as a real server would.
func fhirMux(h http.Handler) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("/fhir/", http.StripPrefix("/fhir", h))
	return mux
}

func ctxT(tb testing.TB) context.Context {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	tb.Cleanup(cancel)
	return ctx
}
