package access

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
)

// ErrInsecureTransport is wrapped by CheckOutboundURL and CheckListenAddr
// when plaintext is asked for where it is not allowed.
var ErrInsecureTransport = errors.New("access: insecure transport")

// ServerTLSConfig returns the TLS settings for every Vigil listener: TLS 1.2
// or later, and for TLS 1.2 only ECDHE key exchange with AEAD ciphers
// (AES-GCM, ChaCha20-Poly1305). TLS 1.3 suites are all AEAD and not
// configurable. The caller adds certificates. Each call returns a new value.
func ServerTLSConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		CipherSuites: []uint16{
			tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256,
			tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384,
			tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256,
			tls.TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256,
		},
	}
}

// ClientTLSConfig returns the TLS settings for outbound calls (FHIR, LLM,
// JWKS): TLS 1.2 or later with the same cipher list.
func ClientTLSConfig() *tls.Config { return ServerTLSConfig() }

// CheckOutboundURL accepts an absolute https URL with a host and no
// credentials in it. Plain http is accepted only when allowInsecureLoopback
// is set and the host is loopback (localhost, 127.0.0.0/8, ::1).
func CheckOutboundURL(raw string, allowInsecureLoopback bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("access: outbound url: %w: unparseable", ErrInvalidInput)
	}
	if u.Host == "" || u.Hostname() == "" {
		return fmt.Errorf("access: outbound url: %w: host required", ErrInvalidInput)
	}
	if u.User != nil {
		return fmt.Errorf("access: outbound url: %w: credentials in url", ErrInvalidInput)
	}
	switch strings.ToLower(u.Scheme) {
	case "https":
		return nil
	case "http":
		if !allowInsecureLoopback {
			return fmt.Errorf("access: outbound url: %w: https required", ErrInsecureTransport)
		}
		if !isLoopbackHost(u.Hostname()) {
			return fmt.Errorf("access: outbound url: %w: plain http only to a loopback host", ErrInsecureTransport)
		}
		return nil
	}
	return fmt.Errorf("access: outbound url: %w: scheme must be https", ErrInvalidInput)
}

// CheckListenAddr reports whether a plaintext (non-TLS) listener may bind
// addr ("host:port"). It may only with the development flag plaintextDev
// and a loopback host; an empty host (all interfaces) is not loopback.
func CheckListenAddr(addr string, plaintextDev bool) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("access: listen address: %w: want host:port", ErrInvalidInput)
	}
	if !plaintextDev {
		return fmt.Errorf("access: listen address: %w: plaintext needs the development flag (configure TLS)", ErrInsecureTransport)
	}
	if !isLoopbackHost(host) {
		return fmt.Errorf("access: listen address: %w: plaintext only on a loopback address", ErrInsecureTransport)
	}
	return nil
}

func isLoopbackHost(h string) bool {
	h = strings.TrimSuffix(strings.ToLower(h), ".")
	if h == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(h, "[]"))
	return ip != nil && ip.IsLoopback()
}
