package access

import (
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestServerTLSConfigRefusesTLS11(t *testing.T) {
	t.Parallel()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("ok"))
	}))
	srv.TLS = ServerTLSConfig()
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // refused handshakes are expected
	srv.StartTLS()
	t.Cleanup(srv.Close)
	roots := srv.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs

	get := func(minV, maxV uint16) (*tls.ConnectionState, error) {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, MinVersion: minV, MaxVersion: maxV,
		}}}
		defer c.CloseIdleConnections()
		resp, err := c.Get(srv.URL)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		return resp.TLS, nil
	}
	tests := []struct {
		name       string
		minV, maxV uint16
		ok         bool
	}{
		{"TLS 1.1 refused", tls.VersionTLS10, tls.VersionTLS11, false},
		{"TLS 1.0 refused", tls.VersionTLS10, tls.VersionTLS10, false},
		{"TLS 1.2 accepted", tls.VersionTLS12, tls.VersionTLS12, true},
		{"TLS 1.3 accepted", tls.VersionTLS13, tls.VersionTLS13, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			st, err := get(tt.minV, tt.maxV)
			if tt.ok != (err == nil) {
				t.Fatalf("err = %v, want ok=%v", err, tt.ok)
			}
			if tt.ok && st.Version != tt.maxV {
				t.Fatalf("negotiated %x", st.Version)
			}
		})
	}

	t.Run("TLS 1.2 with a CBC-only client refused", func(t *testing.T) {
		t.Parallel()
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{
			RootCAs: roots, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA},
		}}}
		defer c.CloseIdleConnections()
		if resp, err := c.Get(srv.URL); err == nil {
			resp.Body.Close()
			t.Fatal("CBC suite accepted")
		}
	})
}

func TestServerTLSConfigSuites(t *testing.T) {
	t.Parallel()
	insecure := map[uint16]bool{}
	for _, s := range tls.InsecureCipherSuites() {
		insecure[s.ID] = true
	}
	cfg := ServerTLSConfig()
	if cfg.MinVersion != tls.VersionTLS12 {
		t.Fatalf("MinVersion = %x", cfg.MinVersion)
	}
	for _, id := range cfg.CipherSuites {
		name := tls.CipherSuiteName(id)
		if insecure[id] || !(strings.Contains(name, "GCM") || strings.Contains(name, "CHACHA20_POLY1305")) || !strings.Contains(name, "ECDHE") {
			t.Errorf("suite %s is not ECDHE+AEAD", name)
		}
	}
}

func TestCheckOutboundURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		url      string
		loopback bool
		want     error // nil, ErrInvalidInput or ErrInsecureTransport
	}{
		{"https://fhir.example/r4", false, nil},
		{"HTTPS://fhir.example", false, nil},
		{"http://fhir.example/r4", false, ErrInsecureTransport},
		{"http://fhir.example/r4", true, ErrInsecureTransport},
		{"http://127.0.0.1:8080/jwks", false, ErrInsecureTransport},
		{"http://127.0.0.1:8080/jwks", true, nil},
		{"http://127.3.4.5/jwks", true, nil},
		{"http://[::1]:9/jwks", true, nil},
		{"http://localhost:9/jwks", true, nil},
		{"http://localhost.evil.example/jwks", true, ErrInsecureTransport},
		{"http://0.0.0.0/jwks", true, ErrInsecureTransport},
		{"https://user:pw@fhir.example", false, ErrInvalidInput},
		{"ftp://fhir.example", false, ErrInvalidInput},
		{"/relative", false, ErrInvalidInput},
		{"https://", false, ErrInvalidInput},
		{"::", false, ErrInvalidInput},
	}
	for _, tt := range tests {
		t.Run(tt.url, func(t *testing.T) {
			t.Parallel()
			err := CheckOutboundURL(tt.url, tt.loopback)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("CheckOutboundURL(%q, %v) = %v, want %v", tt.url, tt.loopback, err, tt.want)
			}
		})
	}
}

func TestCheckListenAddr(t *testing.T) {
	t.Parallel()
	tests := []struct {
		addr string
		dev  bool
		ok   bool
	}{
		{"127.0.0.1:8080", true, true},
		{"[::1]:8080", true, true},
		{"localhost:8080", true, true},
		{"127.0.0.1:8080", false, false},
		{":8080", true, false},
		{"0.0.0.0:8080", true, false},
		{"10.0.0.5:8080", true, false},
		{"nonsense", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			t.Parallel()
			if err := CheckListenAddr(tt.addr, tt.dev); (err == nil) != tt.ok {
				t.Fatalf("CheckListenAddr(%q, %v) = %v", tt.addr, tt.dev, err)
			}
		})
	}
}
