package fhir

import (
	"context"
	"fmt"
	"golang.org/x/sync/errgroup"
	"net/url"
	"slices"
	"strings"
	"time"
)

// Snapshot defaults.
const (
	// DefaultMaxObservations is ContextOptions.MaxObservations when it is 0.
	DefaultMaxObservations = 200
	// MaxPriorCommunications is how many prior Communications a snapshot keeps (newest first).
	MaxPriorCommunications = 20
	// snapshotSearchCount is the _count sent with context searches.
	snapshotSearchCount = "200"
)

// Entry pins one resource of a snapshot.
type Entry struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	VersionID string `json:"versionId"`
	SHA256    string `json:"sha256"`
}

// Snapshot is what one triage saw: the trigger, its patient and the clinical
// context, each pinned by version and sha256, with one hash over the listing.
type Snapshot struct {
	// Trigger is the resource that caused the triage.
	Trigger *Resource
	// Patient is the Patient the trigger names; nil when it names none. When
	// the trigger is itself a Patient, Patient is the trigger.
	Patient *Resource
	// Context is sorted by Type then ID and excludes the trigger and patient.
	Context []*Resource
	// Hash is HashEntries(Entries()).
	Hash string
}

// ReadTrigger reads the trigger (VRead when trigger.Version is set, else
// Read) and then the Patient it names (see PatientRefOf), if any; patient is
// nil when the trigger names no patient and is trig when the trigger is a Patient.
func ReadTrigger(ctx context.Context, src Source, trigger Ref) (trig, patient *Resource, err error) {
	if !validType(trigger.Type) || !validID(trigger.ID) {
		return nil, nil, fmt.Errorf("fhir: read trigger: malformed reference: %w", ErrInvalid)
	}
	if trigger.Version != "" {
		trig, err = src.VRead(ctx, trigger.Type, trigger.ID, trigger.Version)
	} else {
		trig, err = src.Read(ctx, trigger.Type, trigger.ID)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("fhir: read trigger: %w", err)
	}
	pref, ok := PatientRefOf(trig)
	if !ok {
		return trig, nil, nil
	}
	if trig.Type == "Patient" {
		return trig, trig, nil
	}
	if pref.Version != "" {
		patient, err = src.VRead(ctx, "Patient", pref.ID, pref.Version)
	} else {
		patient, err = src.Read(ctx, "Patient", pref.ID)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("fhir: read trigger's patient: %w", err)
	}
	return trig, patient, nil
}

// BuildSnapshot pulls the patient's clinical context from src and pins it
// with trig and patient. opts.Now is required. The context holds:
//
//   - Observations within opts.ObservationWindow before Now (by
//     effective[x], else issued; undated ones only when there is no window),
//     newest first, at most MaxObservations (default 200);
//   - MedicationRequests with status active;
//   - Conditions whose clinicalStatus is active, recurrence or relapse, or missing;
//   - AllergyIntolerances;
//   - prior Communications with the patient as subject or sender, within
//     opts.CommunicationWindow (by sent, else received), newest 20.
//
// Resources marked entered-in-error (status or verificationStatus) are left
// out, and so is anything dated after Now. Every filter is applied locally,
// so a server that ignores search parameters gives the same snapshot. With a
// nil patient the context is empty.
func BuildSnapshot(ctx context.Context, src Source, trig, patient *Resource, opts ContextOptions) (*Snapshot, error) {
	if trig == nil {
		return nil, fmt.Errorf("fhir: build snapshot: trigger is required: %w", ErrInvalid)
	}
	if opts.Now.IsZero() {
		return nil, fmt.Errorf("fhir: build snapshot: ContextOptions.Now is required")
	}
	if opts.ObservationWindow < 0 || opts.CommunicationWindow < 0 || opts.MaxObservations < 0 {
		return nil, fmt.Errorf("fhir: build snapshot: ContextOptions windows and MaxObservations must not be negative")
	}
	if opts.MaxObservations == 0 {
		opts.MaxObservations = DefaultMaxObservations
	}
	if patient != nil && patient.Type != "Patient" {
		return nil, fmt.Errorf("fhir: build snapshot: patient is a %s: %w", patient.Type, ErrInvalid)
	}
	s := &Snapshot{Trigger: trig, Patient: patient}
	if patient != nil {
		b := &builder{src: src, opts: opts, patient: "Patient/" + patient.ID, skip: map[string]bool{
			trig.Type + "/" + trig.ID: true,
			"Patient/" + patient.ID:   true,
		}}
		ctxRes, err := b.build(ctx)
		if err != nil {
			return nil, err
		}
		s.Context = ctxRes
	}
	s.Hash = HashEntries(s.Entries())
	return s, nil
}

type builder struct {
	src     Source
	opts    ContextOptions
	patient string // Patient/id
	skip    map[string]bool
}

// dated is a resource with its ordering time (zero when undated).
type dated struct {
	res *Resource
	at  time.Time
}

func (b *builder) build(ctx context.Context) ([]*Resource, error) {
	isPatients := func(f clinicalFields) bool { return f.Subject.key() == b.patient || f.Sender.key() == b.patient }
	searches := []struct {
		typ    string
		params url.Values
		keep   func(clinicalFields) bool
	}{
		{"Observation", url.Values{"patient": {b.patient}}, func(f clinicalFields) bool { return f.Subject.key() == b.patient }},
		{"MedicationRequest", url.Values{"patient": {b.patient}, "status": {"active"}}, func(f clinicalFields) bool {
			return f.Subject.key() == b.patient && f.Status == "active"
		}},
		{"Condition", url.Values{"patient": {b.patient}}, func(f clinicalFields) bool {
			return f.Subject.key() == b.patient &&
				(f.ClinicalStatus == nil || len(f.ClinicalStatus.Coding) == 0 || f.ClinicalStatus.hasCode("active", "recurrence", "relapse"))
		}},
		{"AllergyIntolerance", url.Values{"patient": {b.patient}}, func(f clinicalFields) bool { return f.Patient.key() == b.patient }},
		{"Communication", url.Values{"subject": {b.patient}}, isPatients},
		{"Communication", url.Values{"sender": {b.patient}}, isPatients},
	}
	// The searches are independent: run them at once, so a remote server's
	// latency is paid once rather than six times.
	results := make([][]fetched, len(searches))
	g, gctx := errgroup.WithContext(ctx)
	for i, sr := range searches {
		g.Go(func() error {
			var err error
			results[i], err = b.fetch(gctx, sr.typ, sr.params, sr.keep)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	var out []*Resource
	out = append(out, b.newest(results[0], b.opts.ObservationWindow, b.opts.MaxObservations, observationTime)...)
	out = append(out, resources(results[1])...)
	out = append(out, resources(results[2])...)
	out = append(out, resources(results[3])...)
	msgs := append(results[4], results[5]...)
	out = append(out, b.newest(msgs, b.opts.CommunicationWindow, MaxPriorCommunications, communicationTime)...)

	out = dedupe(out)
	slices.SortFunc(out, func(a, c *Resource) int {
		if n := strings.Compare(a.Type, c.Type); n != 0 {
			return n
		}
		return strings.Compare(a.ID, c.ID)
	})
	return out, nil
}

// fetched is a search result with its decoded fields.
type fetched struct {
	res *Resource
	f   clinicalFields
}

func (b *builder) fetch(ctx context.Context, typ string, params url.Values, keep func(clinicalFields) bool) ([]fetched, error) {
	params.Set("_count", snapshotSearchCount)
	rs, err := b.src.Search(ctx, typ, params)
	if err != nil {
		return nil, fmt.Errorf("fhir: build snapshot: %w", err)
	}
	var out []fetched
	for _, r := range rs {
		if r == nil || r.Type != typ || b.skip[r.Type+"/"+r.ID] {
			continue
		}
		f := decodeClinical(r.Raw)
		if f.Status == "entered-in-error" || f.VerificationStatus.hasCode("entered-in-error") || !keep(f) {
			continue
		}
		out = append(out, fetched{r, f})
	}
	return out, nil
}

// newest keeps resources within window before Now (all dated ≤ Now, plus
// undated ones, when window is 0), newest first, at most limit.
func (b *builder) newest(in []fetched, window time.Duration, limit int, when func(clinicalFields) time.Time) []*Resource {
	var ds []dated
	for _, x := range in {
		at := when(x.f)
		switch {
		case at.IsZero():
			if window > 0 {
				continue
			}
		case at.After(b.opts.Now):
			continue
		case window > 0 && at.Before(b.opts.Now.Add(-window)):
			continue
		}
		ds = append(ds, dated{x.res, at})
	}
	slices.SortFunc(ds, func(a, c dated) int {
		if n := c.at.Compare(a.at); n != 0 {
			return n // newest first; undated (zero) last
		}
		if n := strings.Compare(a.res.Type, c.res.Type); n != 0 {
			return n
		}
		return strings.Compare(a.res.ID, c.res.ID)
	})
	ds = dedupeDated(ds)
	if len(ds) > limit {
		ds = ds[:limit]
	}
	out := make([]*Resource, len(ds))
	for i, d := range ds {
		out[i] = d.res
	}
	return out
}

func dedupeDated(ds []dated) []dated {
	seen := map[string]bool{}
	out := ds[:0]
	for _, d := range ds {
		k := d.res.Type + "/" + d.res.ID
		if !seen[k] {
			seen[k] = true
			out = append(out, d)
		}
	}
	return out
}

func resources(fs []fetched) []*Resource {
	out := make([]*Resource, len(fs))
	for i, x := range fs {
		out[i] = x.res
	}
	return out
}

func dedupe(rs []*Resource) []*Resource {
	seen := map[string]bool{}
	out := rs[:0]
	for _, r := range rs {
		k := r.Type + "/" + r.ID
		if !seen[k] {
			seen[k] = true
			out = append(out, r)
		}
	}
	return out
}

func observationTime(f clinicalFields) time.Time {
	for _, s := range []string{f.EffectiveDateTime, f.EffectiveInstant, periodTime(f), f.Issued} {
		if t, ok := parseFHIRTime(s); ok {
			return t
		}
	}
	return time.Time{}
}

func periodTime(f clinicalFields) string {
	if f.EffectivePeriod == nil {
		return ""
	}
	if f.EffectivePeriod.End != "" {
		return f.EffectivePeriod.End
	}
	return f.EffectivePeriod.Start
}

func communicationTime(f clinicalFields) time.Time {
	for _, s := range []string{f.Sent, f.Received} {
		if t, ok := parseFHIRTime(s); ok {
			return t
		}
	}
	return time.Time{}
}

// parseFHIRTime parses FHIR dateTime/instant values (a partial date is the
// start of its year, month or day, in UTC).
func parseFHIRTime(s string) (time.Time, bool) {
	if s == "" {
		return time.Time{}, false
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02", "2006-01", "2006"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// Entries lists the trigger, the patient (unless it is the trigger) and the
// context, in that order.
func (s *Snapshot) Entries() []Entry {
	rs := s.Resources()
	out := make([]Entry, len(rs))
	for i, r := range rs {
		out[i] = Entry{Type: r.Type, ID: r.ID, VersionID: r.VersionID, SHA256: r.SHA256}
	}
	return out
}

// Resources returns the trigger, the patient (unless it is the trigger) and
// the context, in that order.
func (s *Snapshot) Resources() []*Resource {
	out := make([]*Resource, 0, 2+len(s.Context))
	if s.Trigger != nil {
		out = append(out, s.Trigger)
	}
	if s.Patient != nil && !sameResource(s.Patient, s.Trigger) {
		out = append(out, s.Patient)
	}
	return append(out, s.Context...)
}

func sameResource(a, b *Resource) bool {
	return a != nil && b != nil && a.Type == b.Type && a.ID == b.ID
}

// Lookup finds a resource of the snapshot by "Type/id" or
// "Type/id/_history/v" (or an absolute URL ending in either); a version, when
// given, must match the pinned one.
func (s *Snapshot) Lookup(ref string) (*Resource, bool) {
	r, err := ParseRef(ref)
	if err != nil {
		return nil, false
	}
	for _, res := range s.Resources() {
		if res.Type == r.Type && res.ID == r.ID {
			if r.Version != "" && r.Version != res.VersionID {
				return nil, false
			}
			return res, true
		}
	}
	return nil, false
}
