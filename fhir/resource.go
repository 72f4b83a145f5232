package fhir

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// Ref names one resource, optionally pinned to a version.
type Ref struct {
	Type    string `json:"type"`
	ID      string `json:"id"`
	Version string `json:"version,omitempty"`
}

// String renders Type/id or Type/id/_history/version.
func (r Ref) String() string {
	if r.Version == "" {
		return r.Type + "/" + r.ID
	}
	return r.Type + "/" + r.ID + "/_history/" + r.Version
}

// Unversioned returns r without its version.
func (r Ref) Unversioned() Ref { return Ref{Type: r.Type, ID: r.ID} }

// ParseRef parses "Type/id", "Type/id/_history/v", or an absolute URL ending in either.
// Errors wrap ErrInvalid and never quote the input (a reference can identify a patient).
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Ref{}, fmt.Errorf("fhir: empty reference: %w", ErrInvalid)
	}
	if u, err := url.Parse(s); err == nil && u.IsAbs() {
		s = strings.TrimPrefix(u.Path, "/")
	}
	parts := strings.Split(s, "/")
	// Take the last 2 or 4 segments so base-URL prefixes are ignored.
	if n := len(parts); n >= 4 && parts[n-2] == "_history" {
		parts = parts[n-4:]
	} else if n >= 2 {
		parts = parts[n-2:]
	} else {
		return Ref{}, fmt.Errorf("fhir: reference is not Type/id: %w", ErrInvalid)
	}
	r := Ref{Type: parts[0], ID: parts[1]}
	if len(parts) == 4 {
		r.Version = parts[3]
	}
	if !validType(r.Type) || !validID(r.ID) || (len(parts) == 4 && !validID(r.Version)) {
		return Ref{}, fmt.Errorf("fhir: reference is not Type/id[/_history/version]: %w", ErrInvalid)
	}
	return r, nil
}

func validType(s string) bool {
	if s == "" || s[0] < 'A' || s[0] > 'Z' {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validID follows the FHIR id type: [A-Za-z0-9\-\.]{1,64}, minus "." and ".."
// (they would be path segments in a REST URL).
func validID(s string) bool {
	if len(s) == 0 || len(s) > 64 || s == "." || s == ".." {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// Resource is one FHIR resource as the server sent it. Raw keeps the original
// bytes: hashing and storage use them, never a re-encoding of a typed struct.
type Resource struct {
	Type        string          `json:"resourceType"`
	ID          string          `json:"id"`
	VersionID   string          `json:"versionId,omitempty"`
	LastUpdated string          `json:"lastUpdated,omitempty"`
	SHA256      string          `json:"sha256"`
	Raw         json.RawMessage `json:"resource"`
}

// Ref returns the resource's reference pinned to its version (unversioned if the server sent none).
func (r *Resource) Ref() Ref { return Ref{Type: r.Type, ID: r.ID, Version: r.VersionID} }

// String keeps resource content out of logs and error messages: only the type is shown.
func (r *Resource) String() string { return "fhir.Resource(" + r.Type + ")" }

// ErrNotFound means the server answered that the resource does not exist (404/410).
var ErrNotFound = errors.New("fhir: resource not found")

// ErrUnavailable means the server could not be reached or kept failing after the bounded retries.
var ErrUnavailable = errors.New("fhir: server unavailable")

// ErrInvalid means the server or a caller supplied content that is not valid FHIR for the purpose.
var ErrInvalid = errors.New("fhir: invalid resource")

// Source reads resources. The REST Client, and the in-memory Store used for
// fixtures, both implement it.
type Source interface {
	// Read returns the current version of Type/id.
	Read(ctx context.Context, typ, id string) (*Resource, error)
	// VRead returns one version of Type/id.
	VRead(ctx context.Context, typ, id, version string) (*Resource, error)
	// Search returns every match, following Bundle.link[next] across pages.
	Search(ctx context.Context, typ string, params url.Values) ([]*Resource, error)
}

// Hash returns the hex sha256 of b.
func Hash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// ContextOptions bound what a snapshot pulls besides the trigger and the patient.
type ContextOptions struct {
	// Now is the reference time for the windows below (required: rules and snapshots take no clock).
	Now time.Time
	// ObservationWindow: if > 0, only Observations effective/issued within this window before Now;
	// 0 means no time bound (MaxObservations still applies).
	ObservationWindow time.Duration
	// MaxObservations caps the number of Observations kept, newest first (default 200).
	MaxObservations int
	// CommunicationWindow: if > 0, only prior Communications sent within this window; 0 means no bound
	// (the newest 20 are kept).
	CommunicationWindow time.Duration
}
