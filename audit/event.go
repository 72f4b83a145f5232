package audit

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"time"
	"unicode/utf8"
)

// Action is the coarse kind of an audited operation (FHIR AuditEvent.action).
type Action string

// Actions.
const (
	ActionCreate  Action = "C"
	ActionRead    Action = "R"
	ActionUpdate  Action = "U"
	ActionDelete  Action = "D"
	ActionExecute Action = "E"
)

// Valid reports whether a is one of the five actions.
func (a Action) Valid() bool {
	switch a {
	case ActionCreate, ActionRead, ActionUpdate, ActionDelete, ActionExecute:
		return true
	}
	return false
}

// Outcomes.
const (
	OutcomeSuccess = "success"
	OutcomeFailure = "failure"
	OutcomeDenied  = "denied"
)

// Detail keys with a meaning to the detectors and to Disclosures. Producers
// set them where they know the answer.
const (
	// DetailCareTeam (bool): the actor is on the patient's care team.
	DetailCareTeam = "care_team"
	// DetailBreakGlass (bool): access used an emergency override.
	DetailBreakGlass = "break_glass"
	// DetailCount (number): how many records a read or export returned.
	DetailCount = "count"
	// DetailRecipient (string): who outside Vigil received the data (a disclosure).
	DetailRecipient = "recipient"
)

// Event is one audit record as the producer describes it.
type Event struct {
	TenantID string
	// OccurredAt is truncated to microseconds (PostgreSQL's precision) before
	// hashing. Append records it no earlier than the tenant's previous event,
	// so time and sequence increase together.
	OccurredAt time.Time
	Actor      string // user or service identity (required)
	ActorRole  string
	ClientID   string // OAuth client / device
	OnBehalfOf string
	Action     Action
	// Verb is the specific operation: "intake.receive", "decision.escalate",
	// "decision.decide", "review.approve", "review.read", "auth.deny",
	// "config.tenant", "rules.activate", "audit.export", ...
	Verb       string
	Outcome    string   // "success" | "failure" | "denied"
	PatientRef string   // "Patient/123": a reference, never a name
	Resources  []string // FHIR references, versioned where known
	SourceIP   string
	UserAgent  string
	Purpose    string // purpose of use (e.g. TREAT, HPAYMT, HOPERAT, ETREAT)
	RequestID  string
	DecisionID string // uuid text or ""
	// Detail holds ids, codes, counts, rule ids and hashes: no free-text PHI.
	Detail map[string]any
}

// Appended identifies an event once it is in the chain.
type Appended struct {
	Seq  int64
	Hash []byte
	ID   string
}

// Record is an event as stored: the event plus its place in the chain.
type Record struct {
	Event
	Seq        int64
	ID         string
	EncVersion int
	PrevHash   []byte
	Hash       []byte
	// DetailJSON is the stored detail as PostgreSQL returns it (jsonb text).
	DetailJSON string
}

// EncVersion is the canonical encoding Append writes.
const EncVersion = 1

// HashSize is the size of chain hashes (sha256).
const HashSize = sha256.Size

// genesis is the prev_hash of every tenant's first record.
var genesis = make([]byte, HashSize)

// Sentinel errors.
var (
	// ErrChainBroken is returned (wrapped) by Verify when a chain does not verify.
	ErrChainBroken = errors.New("audit: chain broken")
	// ErrInvalidEvent is returned (wrapped) by Append for an event missing required fields.
	ErrInvalidEvent = errors.New("audit: invalid event")
	// ErrUnknownEncoding is returned for a record whose enc_version this build cannot encode.
	ErrUnknownEncoding = errors.New("audit: unknown encoding version")
)

// Validate checks the fields Append requires.
func (ev *Event) Validate() error {
	var missing []string
	if ev.TenantID == "" {
		missing = append(missing, "tenant")
	}
	if ev.OccurredAt.IsZero() {
		missing = append(missing, "occurred_at")
	}
	if ev.Actor == "" {
		missing = append(missing, "actor")
	}
	if ev.Verb == "" {
		missing = append(missing, "verb")
	}
	if len(missing) > 0 {
		return fmt.Errorf("%w: missing %s", ErrInvalidEvent, strings.Join(missing, ", "))
	}
	if !ev.Action.Valid() {
		return fmt.Errorf("%w: action %q", ErrInvalidEvent, ev.Action)
	}
	switch ev.Outcome {
	case OutcomeSuccess, OutcomeFailure, OutcomeDenied:
	default:
		return fmt.Errorf("%w: outcome %q", ErrInvalidEvent, ev.Outcome)
	}
	if ev.DecisionID != "" && !validUUID(ev.DecisionID) {
		return fmt.Errorf("%w: decision id is not a uuid", ErrInvalidEvent)
	}
	for _, s := range ev.strings() {
		if !utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0 {
			return fmt.Errorf("%w: field is not valid UTF-8 text", ErrInvalidEvent)
		}
	}
	return nil
}

func (ev *Event) strings() []string {
	s := []string{ev.TenantID, ev.Actor, ev.ActorRole, ev.ClientID, ev.OnBehalfOf, ev.Verb,
		ev.PatientRef, ev.SourceIP, ev.UserAgent, ev.Purpose, ev.RequestID}
	return append(s, ev.Resources...)
}

// EncodeCanonical returns the canonical bytes of r for its enc_version.
//
// Encoding version 1 is a byte 0x01 followed by these fields in order, each
// string as a 4-byte big-endian length and its UTF-8 bytes, each integer as 8
// bytes big-endian two's complement:
//
//	tenant_id, seq (int), id (lowercase uuid text), occurred_at (int:
//	microseconds since 1970-01-01T00:00:00Z), actor, actor_role, client_id,
//	on_behalf_of, action, verb, outcome, patient_ref, resources (a 4-byte
//	count, then each string), source_ip, user_agent, purpose, request_id,
//	decision_id (lowercase uuid text or ""), detail (canonical JSON).
//
// Canonical JSON is the stored jsonb value re-encoded with object keys sorted
// by their UTF-8 bytes, no insignificant whitespace, strings escaped as Go's
// encoding/json does without HTML escaping, and numbers exactly as PostgreSQL
// prints them. The record's hash is sha256(prev_hash || canonical bytes).
func EncodeCanonical(r *Record) ([]byte, error) {
	if r.EncVersion != 1 {
		return nil, fmt.Errorf("%w: %d", ErrUnknownEncoding, r.EncVersion)
	}
	detail, err := canonicalJSON(r.DetailJSON)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	b.Grow(256 + len(detail))
	b.WriteByte(1)
	putStr(&b, r.TenantID)
	putInt(&b, r.Seq)
	putStr(&b, r.ID)
	putInt(&b, r.OccurredAt.UnixMicro())
	putStr(&b, r.Actor)
	putStr(&b, r.ActorRole)
	putStr(&b, r.ClientID)
	putStr(&b, r.OnBehalfOf)
	putStr(&b, string(r.Action))
	putStr(&b, r.Verb)
	putStr(&b, r.Outcome)
	putStr(&b, r.PatientRef)
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(r.Resources)))
	b.Write(n[:])
	for _, s := range r.Resources {
		putStr(&b, s)
	}
	putStr(&b, r.SourceIP)
	putStr(&b, r.UserAgent)
	putStr(&b, r.Purpose)
	putStr(&b, r.RequestID)
	putStr(&b, r.DecisionID)
	putStr(&b, string(detail))
	return b.Bytes(), nil
}

// ChainHash returns sha256(prev || canonical).
func ChainHash(prev, canonical []byte) []byte {
	h := sha256.New()
	h.Write(prev)
	h.Write(canonical)
	return h.Sum(nil)
}

func putStr(b *bytes.Buffer, s string) {
	var n [4]byte
	binary.BigEndian.PutUint32(n[:], uint32(len(s)))
	b.Write(n[:])
	b.WriteString(s)
}

func putInt(b *bytes.Buffer, v int64) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(v))
	b.Write(n[:])
}

// canonicalJSON re-encodes a JSON text canonically (see EncodeCanonical).
func canonicalJSON(s string) ([]byte, error) {
	if s == "" || s == "{}" {
		return []byte("{}"), nil
	}
	dec := json.NewDecoder(strings.NewReader(s))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("audit: detail is not JSON: %w", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, errors.New("audit: detail has trailing data")
	}
	var b bytes.Buffer
	if err := writeCanonical(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeCanonical(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		if x {
			b.WriteString("true")
		} else {
			b.WriteString("false")
		}
	case json.Number:
		b.WriteString(string(x))
	case string:
		writeJSONString(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeCanonical(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeJSONString(b, k)
			b.WriteByte(':')
			if err := writeCanonical(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		return fmt.Errorf("audit: unexpected JSON value %T", v)
	}
	return nil
}

func writeJSONString(b *bytes.Buffer, s string) {
	plain := true
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain { // the common case: what encoding/json would write anyway
		b.WriteByte('"')
		b.WriteString(s)
		b.WriteByte('"')
		return
	}
	enc := json.NewEncoder(b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)       // strings always encode
	b.Truncate(b.Len() - 1) // Encode appends '\n'
}

// newUUID returns a random (version 4) uuid in lowercase text form.
func newUUID() string {
	var u [16]byte
	_, _ = rand.Read(u[:])
	u[6] = u[6]&0x0f | 0x40
	u[8] = u[8]&0x3f | 0x80
	var s [36]byte
	hex.Encode(s[0:8], u[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], u[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], u[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], u[8:10])
	s[23] = '-'
	hex.Encode(s[24:], u[10:])
	return string(s[:])
}

func validUUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < 36; i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}
