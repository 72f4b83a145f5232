package fhir

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Store is an in-memory FHIR store with version history, for fixtures, the
// demo and tests. It implements Source and is safe for concurrent use.
// Resources it returns share their Raw bytes with the store: treat them as
// read-only.
type Store struct {
	mu    sync.RWMutex
	now   func() time.Time
	types map[string]map[string][]*stored // type → id → versions (index i is version i+1)
}

// stored is one version with its search index.
type stored struct {
	res     *Resource
	status  string
	subject string // unversioned Type/id, "" if none
	patient string
	sender  string
}

var _ Source = (*Store)(nil)

// NewStore returns an empty Store whose clock is time.Now.
func NewStore() *Store {
	return &Store{now: time.Now, types: map[string]map[string][]*stored{}}
}

// SetClock replaces the clock used for meta.lastUpdated (nil restores time.Now).
func (s *Store) SetClock(now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	s.mu.Lock()
	s.now = now
	s.mu.Unlock()
}

// Put stores raw (a resource with resourceType and id) as a new version. It
// sets meta.versionId ("1", "2", … per resource) and meta.lastUpdated (the
// store's clock, UTC), keeping the rest of meta and the member order, and
// returns the stored Resource, whose Raw (compact JSON) includes that meta.
// Every Put makes a new version, even when the content is unchanged.
func (s *Store) Put(raw []byte) (*Resource, error) {
	h, err := parseHeader(raw)
	if err != nil {
		return nil, fmt.Errorf("fhir: put: %w", err)
	}
	if h.ID == "" {
		return nil, fmt.Errorf("fhir: put %s: id is required: %w", h.ResourceType, ErrInvalid)
	}
	ms, err := objectMembers(raw)
	if err != nil {
		return nil, fmt.Errorf("fhir: put %s: %w", h.ResourceType, err)
	}
	var meta []member
	for _, m := range ms {
		if m.key == "meta" && isJSONObject(m.val) {
			if meta, err = objectMembers(m.val); err != nil {
				return nil, fmt.Errorf("fhir: put %s: meta: %w", h.ResourceType, err)
			}
		}
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	byID := s.types[h.ResourceType]
	if byID == nil {
		byID = map[string][]*stored{}
		s.types[h.ResourceType] = byID
	}
	version := strconv.Itoa(len(byID[h.ID]) + 1)
	updated := s.now().UTC().Format("2006-01-02T15:04:05.000Z07:00")
	vj, _ := marshalNoEscape(version)
	uj, _ := marshalNoEscape(updated)
	meta = setMember(meta, "versionId", vj, "")
	meta = setMember(meta, "lastUpdated", uj, "versionId")
	mj, err := encodeMembers(meta)
	if err != nil {
		return nil, fmt.Errorf("fhir: put %s: %w", h.ResourceType, err)
	}
	ms = setMember(ms, "meta", mj, "id")
	out, err := encodeMembers(ms)
	if err != nil {
		return nil, fmt.Errorf("fhir: put %s: %w", h.ResourceType, err)
	}
	r, err := newResource(out)
	if err != nil {
		return nil, fmt.Errorf("fhir: put %s: %w", h.ResourceType, err)
	}
	f := decodeClinical(out)
	byID[h.ID] = append(byID[h.ID], &stored{
		res:     r,
		status:  f.Status,
		subject: f.Subject.key(),
		patient: f.Patient.key(),
		sender:  f.Sender.key(),
	})
	return r, nil
}

// Read returns the current version of typ/id, or ErrNotFound.
func (s *Store) Read(ctx context.Context, typ, id string) (*Resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fhir: read: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	vs := s.types[typ][id]
	if len(vs) == 0 {
		return nil, fmt.Errorf("fhir: read %s: %w", safeType(typ), ErrNotFound)
	}
	return vs[len(vs)-1].res, nil
}

// VRead returns one version of typ/id, or ErrNotFound.
func (s *Store) VRead(ctx context.Context, typ, id, version string) (*Resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fhir: vread: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	vs := s.types[typ][id]
	n, err := strconv.Atoi(version)
	if err != nil || n < 1 || n > len(vs) || strconv.Itoa(n) != version {
		return nil, fmt.Errorf("fhir: vread %s: %w", safeType(typ), ErrNotFound)
	}
	return vs[n-1].res, nil
}

// Search returns the current versions of typ matching params, ordered by id.
// Supported parameters (repeat a parameter for AND, separate values with
// commas for OR):
//
//   - _id: the resource id;
//   - patient: "Patient/x" or "x"; matches subject or patient referencing that Patient;
//   - subject, sender: "Type/x" (that exact reference) or "x" (any type with id x);
//   - status: the resource's status code.
//
// All other parameters (_count, _sort, date, modifiers such as subject:Patient,
// …) are ignored, so a result can hold more than a full FHIR server would
// return; callers that need a filter apply it locally too.
func (s *Store) Search(ctx context.Context, typ string, params url.Values) ([]*Resource, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("fhir: search: %w", err)
	}
	return s.search(typ, params), nil
}

func (s *Store) search(typ string, params url.Values) []*Resource {
	s.mu.RLock()
	defer s.mu.RUnlock()
	byID := s.types[typ]
	ids := make([]string, 0, len(byID))
	for id := range byID {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	var out []*Resource
	for _, id := range ids {
		vs := byID[id]
		cur := vs[len(vs)-1]
		if cur.matches(params) {
			out = append(out, cur.res)
		}
	}
	return out
}

func (st *stored) matches(params url.Values) bool {
	for name, values := range params {
		for _, v := range values {
			alts := strings.Split(v, ",")
			ok := false
			for _, a := range alts {
				a = strings.TrimSpace(a)
				switch name {
				case "_id":
					ok = ok || a == st.res.ID
				case "status":
					ok = ok || a == st.status
				case "patient":
					want := refParam("Patient", a)
					ok = ok || (want != "" && (st.subject == want || st.patient == want))
				case "subject":
					ok = ok || refMatches(st.subject, a)
				case "sender":
					ok = ok || refMatches(st.sender, a)
				default:
					ok = true // unsupported: ignored
				}
			}
			if !ok {
				return false
			}
		}
	}
	return true
}

// refParam normalises a reference search value for a known target type.
func refParam(typ, v string) string {
	if validID(v) {
		return typ + "/" + v
	}
	r, err := ParseRef(v)
	if err != nil || r.Type != typ {
		return ""
	}
	return r.Unversioned().String()
}

// refMatches compares an indexed reference with a search value "Type/x" or "x".
func refMatches(have, v string) bool {
	if have == "" || v == "" {
		return false
	}
	if validID(v) {
		_, id, _ := strings.Cut(have, "/")
		return id == v
	}
	r, err := ParseRef(v)
	return err == nil && r.Unversioned().String() == have
}

func safeType(typ string) string {
	if validType(typ) {
		return typ
	}
	return "(malformed type)"
}
