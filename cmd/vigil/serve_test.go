package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"
)

// lockedBuffer collects a logger's output across goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// selfSigned returns a certificate for 127.0.0.1 and a pool trusting it.
func selfSigned(t *testing.T) (tls.Certificate, *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vigil-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}

// startServer serves h with the production server settings (or the given
// timeouts) on a loopback port, over TLS when cert is given.
func startServer(t *testing.T, logger *slog.Logger, to httpTimeouts, cert *tls.Certificate) (*http.Server, string) {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok") })
	srv := newHTTPServer(h, logger, to)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		if cert != nil {
			srv.TLSConfig.Certificates = []tls.Certificate{*cert}
			_ = srv.ServeTLS(ln, "", "")
		} else {
			_ = srv.Serve(ln)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return srv, ln.Addr().String()
}

// The listener's TLS settings (access.ServerTLSConfig through newHTTPServer)
// refuse TLS 1.1 and non-ECDHE suites and serve a TLS 1.2 client.
func TestServeTLSVersions(t *testing.T) {
	t.Parallel()
	cert, pool := selfSigned(t)
	logs := &lockedBuffer{}
	_, addr := startServer(t, slog.New(slog.NewJSONHandler(logs, nil)), defaultHTTPTimeouts(), &cert)

	get := func(cfg *tls.Config) error {
		cfg.RootCAs, cfg.ServerName = pool, "127.0.0.1"
		c := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}
		resp, err := c.Get("https://" + addr + "/")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != 200 || string(b) != "ok" {
			t.Errorf("status %d body %q", resp.StatusCode, b)
		}
		return nil
	}
	cases := []struct {
		name string
		cfg  *tls.Config
		ok   bool
	}{
		{"TLS 1.1", &tls.Config{MinVersion: tls.VersionTLS11, MaxVersion: tls.VersionTLS11}, false},
		{"TLS 1.0", &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}, false},
		{"TLS 1.2 with a CBC suite only", &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12,
			CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA}}, false},
		{"TLS 1.2", &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12}, true},
		{"TLS 1.3", &tls.Config{MinVersion: tls.VersionTLS13}, true},
	}
	for _, tc := range cases {
		err := get(tc.cfg)
		if tc.ok && err != nil {
			t.Errorf("%s client refused: %v", tc.name, err)
		}
		if !tc.ok && err == nil {
			t.Errorf("%s client served", tc.name)
		}
	}
	// The server's own error log goes through the structured logger.
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(logs.String(), "TLS handshake error") && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !strings.Contains(logs.String(), "TLS handshake error") {
		t.Errorf("refused handshakes not logged through the structured logger: %q", logs.String())
	}
}

// serve refuses plaintext unless asked for on a loopback address, and needs
// TLS files otherwise; both stop startup before anything is opened.
func TestServeRefusesPlaintextOffLoopback(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		env  map[string]string
		want string // in stderr
	}{
		{"plaintext on all interfaces", map[string]string{"VIGIL_DEV_PLAINTEXT": "true", "VIGIL_LISTEN_ADDR": ":8443"}, "VIGIL_LISTEN_ADDR"},
		{"plaintext on 0.0.0.0", map[string]string{"VIGIL_DEV_PLAINTEXT": "true", "VIGIL_LISTEN_ADDR": "0.0.0.0:8443"}, "loopback"},
		{"plaintext on a LAN address", map[string]string{"VIGIL_DEV_PLAINTEXT": "true", "VIGIL_LISTEN_ADDR": "10.0.0.5:8443"}, "loopback"},
		{"plaintext on a host name", map[string]string{"VIGIL_DEV_PLAINTEXT": "true", "VIGIL_LISTEN_ADDR": "vigil.example.org:8443"}, "loopback"},
		{"no TLS and no flag", map[string]string{"VIGIL_LISTEN_ADDR": "127.0.0.1:0"}, "VIGIL_TLS_CERT"},
		{"certificate without key", map[string]string{"VIGIL_TLS_CERT": "/nonexistent/cert.pem", "VIGIL_LISTEN_ADDR": "127.0.0.1:0"}, "VIGIL_TLS_KEY"},
		{"bad flag", map[string]string{"VIGIL_DEV_PLAINTEXT": "yes please", "VIGIL_LISTEN_ADDR": "127.0.0.1:0"}, "VIGIL_DEV_PLAINTEXT"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var out, errb bytes.Buffer
			g := &globals{Stdout: &out, Stderr: &errb, Getenv: func(k string) string { return tc.env[k] }, Logger: slog.New(slog.DiscardHandler)}
			if code := runServe(context.Background(), g, nil); code != 1 {
				t.Fatalf("exit %d, want 1 (stderr %q)", code, errb.String())
			}
			if !strings.Contains(errb.String(), tc.want) {
				t.Fatalf("stderr %q does not name %s", errb.String(), tc.want)
			}
		})
	}
	// Plaintext on loopback passes the transport check and stops at the next
	// missing setting (the key file), which shows the check is what refused above.
	var errb bytes.Buffer
	env := map[string]string{"VIGIL_DEV_PLAINTEXT": "true", "VIGIL_LISTEN_ADDR": "127.0.0.1:0"}
	g := &globals{Stdout: io.Discard, Stderr: &errb, Getenv: func(k string) string { return env[k] }, Logger: slog.New(slog.DiscardHandler)}
	if code := runServe(context.Background(), g, nil); code != 1 || !strings.Contains(errb.String(), "VIGIL_KEY_FILE") || strings.Contains(errb.String(), "loopback") {
		t.Fatalf("loopback plaintext: exit %d stderr %q, want a VIGIL_KEY_FILE error only", code, errb.String())
	}
}

// A slow-loris client (headers trickled a byte at a time, never finished) is
// cut off by the server's header timeout. The bound is generous: this asserts
// that the server closes the connection, not how fast.
func TestServeCutsOffSlowLoris(t *testing.T) {
	t.Parallel()
	to := defaultHTTPTimeouts()
	if to.ReadHeader <= 0 || to.Read <= 0 || to.Write <= 0 || to.Idle <= 0 {
		t.Fatalf("production timeouts must all be set: %+v", to)
	}
	_, addr := startServer(t, slog.New(slog.DiscardHandler), httpTimeouts{ReadHeader: 300 * time.Millisecond, Read: time.Second,
		Write: time.Second, Idle: time.Second}, nil)
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	closed := make(chan error, 1)
	go func() {
		// Whatever the server sends (nothing, or a 408), it then closes.
		_, err := io.Copy(io.Discard, conn)
		if err == nil {
			err = io.EOF
		}
		closed <- err
	}()
	header := "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: " + strings.Repeat("a", 100000)
	deadline := time.After(60 * time.Second)
	for i := 0; ; i++ {
		select {
		case <-closed:
			return // cut off
		case <-deadline:
			t.Fatalf("after %d header bytes over 60 s the server still holds the connection", i)
		case <-time.After(20 * time.Millisecond):
		}
		if _, err := conn.Write([]byte{header[i%len(header)]}); err != nil {
			if errors.Is(err, net.ErrClosed) {
				t.Fatal("test closed its own connection")
			}
			return // the server closed (reset) the connection
		}
	}
}
