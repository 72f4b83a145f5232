package fhir

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"
)

var snapNow = time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC)

// newestObservation returns Alfreda's newest Observation (the test trigger).
func newestObservation(t testing.TB, src Source) Ref {
	t.Helper()
	obs, err := src.Search(context.Background(), "Observation", url.Values{"patient": {alfreda}})
	if err != nil || len(obs) == 0 {
		t.Fatalf("search: %v", err)
	}
	var best Ref
	var bestAt time.Time
	for _, o := range obs {
		at := observationTime(decodeClinical(o.Raw))
		if at.After(bestAt) {
			best, bestAt = o.Ref(), at
		}
	}
	return best
}

// paramBlind is a Source whose Search ignores every parameter.
type paramBlind struct{ *Store }

func (p paramBlind) Search(ctx context.Context, typ string, _ url.Values) ([]*Resource, error) {
	return p.Store.Search(ctx, typ, nil)
}

func buildFor(t testing.TB, src Source, trigger Ref, opts ContextOptions) *Snapshot {
	t.Helper()
	ctx := context.Background()
	trig, patient, err := ReadTrigger(ctx, src, trigger)
	if err != nil {
		t.Fatalf("ReadTrigger: %v", err)
	}
	s, err := BuildSnapshot(ctx, src, trig, patient, opts)
	if err != nil {
		t.Fatalf("BuildSnapshot: %v", err)
	}
	return s
}

func TestBuildSnapshotFixturePatient(t *testing.T) {
	t.Parallel()
	st := setupFixtures(t)
	trigger := newestObservation(t, st)
	opts := ContextOptions{Now: snapNow}
	s1 := buildFor(t, st, trigger, opts)
	s2 := buildFor(t, st, trigger, opts)
	if s1.Hash != s2.Hash || s1.Hash != HashEntries(s1.Entries()) {
		t.Fatal("hash not stable across builds")
	}
	if s1.Patient == nil || s1.Patient.ID != alfreda || s1.Trigger.Ref() != trigger {
		t.Fatalf("trigger/patient wrong: %v %v", s1.Trigger.Ref(), s1.Patient)
	}
	counts := map[string]int{}
	for i, r := range s1.Context {
		counts[r.Type]++
		if r.Ref().Unversioned() == trigger.Unversioned() || r.Type == "Patient" {
			t.Fatal("context holds the trigger or the patient")
		}
		if i > 0 {
			p := s1.Context[i-1]
			if p.Type > r.Type || p.Type == r.Type && p.ID >= r.ID {
				t.Fatal("context not sorted by type then id")
			}
		}
	}
	// Alfreda: 79 Observations (one is the trigger), 2 active MedicationRequests, 3 Conditions.
	if counts["Observation"] != 78 || counts["MedicationRequest"] == 0 || counts["Condition"] == 0 {
		t.Fatalf("context counts = %v", counts)
	}
	entries := s1.Entries()
	if entries[0].Type != "Observation" || entries[1].Type != "Patient" || len(entries) != 2+len(s1.Context) {
		t.Fatalf("entries order wrong: %v", entries[:2])
	}

	t.Run("same over HTTP and with a server that ignores params", func(t *testing.T) {
		t.Parallel()
		c := testClient(t, fhirMux(NewHandler(st)))
		if got := buildFor(t, c, trigger, opts); got.Hash != s1.Hash {
			t.Fatal("snapshot over HTTP differs from the store's")
		}
		if got := buildFor(t, paramBlind{st}, trigger, opts); got.Hash != s1.Hash {
			t.Fatal("local filtering does not make the snapshot independent of server params")
		}
	})
	t.Run("pinned trigger", func(t *testing.T) {
		t.Parallel()
		pinned := trigger
		pinned.Version = "1"
		if got := buildFor(t, st, pinned, opts); got.Hash != s1.Hash {
			t.Fatal("vread trigger gives another snapshot")
		}
	})
	t.Run("windows and caps", func(t *testing.T) {
		t.Parallel()
		s := buildFor(t, st, trigger, ContextOptions{Now: snapNow, MaxObservations: 5})
		if n := countType(s, "Observation"); n != 5 {
			t.Fatalf("MaxObservations 5 kept %d", n)
		}
		w := buildFor(t, st, trigger, ContextOptions{Now: snapNow, ObservationWindow: 2 * 365 * 24 * time.Hour})
		for _, r := range w.Context {
			if r.Type != "Observation" {
				continue
			}
			at := observationTime(decodeClinical(r.Raw))
			if at.Before(snapNow.Add(-2*365*24*time.Hour)) || at.After(snapNow) {
				t.Fatalf("observation at %v outside the window", at)
			}
		}
		if n := countType(w, "Observation"); n == 0 || n >= 78 {
			t.Fatalf("window kept %d observations", n)
		}
		past := buildFor(t, st, trigger, ContextOptions{Now: time.Date(1990, 1, 1, 0, 0, 0, 0, time.UTC)})
		if countType(past, "Observation") != 0 {
			t.Fatal("observations after Now were kept")
		}
	})
	t.Run("marshal round trip", func(t *testing.T) {
		t.Parallel()
		b1, err := json.Marshal(s1)
		if err != nil {
			t.Fatal(err)
		}
		b2, _ := s1.MarshalJSON()
		if !bytes.Equal(b1, b2) {
			t.Fatal("json.Marshal and MarshalJSON differ")
		}
		got, err := UnmarshalSnapshot(b1)
		if err != nil {
			t.Fatalf("UnmarshalSnapshot: %v", err)
		}
		if got.Hash != s1.Hash || len(got.Context) != len(s1.Context) || got.Patient.SHA256 != s1.Patient.SHA256 {
			t.Fatal("round trip changed the snapshot")
		}
		b3, _ := json.Marshal(got)
		if !bytes.Equal(b1, b3) {
			t.Fatal("marshal is not reproducible after a round trip")
		}
		if r, ok := got.Lookup(trigger.String()); !ok || r.SHA256 != s1.Trigger.SHA256 {
			t.Fatal("Lookup trigger failed")
		}
	})
}

func countType(s *Snapshot, typ string) int {
	n := 0
	for _, r := range s.Context {
		if r.Type == typ {
			n++
		}
	}
	return n
}

func TestUnmarshalSnapshotRejectsTampering(t *testing.T) {
	t.Parallel()
	st := setupFixtures(t)
	s := buildFor(t, st, newestObservation(t, st), ContextOptions{Now: snapNow, MaxObservations: 3})
	good, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	tamper := func(f func(w map[string]any)) []byte {
		var w map[string]any
		if err := json.Unmarshal(good, &w); err != nil {
			t.Fatal(err)
		}
		f(w)
		b, _ := json.Marshal(w)
		return b
	}
	setRaw := func(r map[string]any, raw []byte) { r["raw"] = base64.StdEncoding.EncodeToString(raw) }
	ctx0 := func(w map[string]any) map[string]any { return w["context"].([]any)[0].(map[string]any) }
	tests := []struct {
		name string
		in   []byte
	}{
		{"raw bytes changed", tamper(func(w map[string]any) {
			r := ctx0(w)
			raw, _ := base64.StdEncoding.DecodeString(r["raw"].(string))
			setRaw(r, bytes.Replace(raw, []byte(`{`), []byte(`{ `), 1))
		})},
		{"raw and sha changed, hash not", tamper(func(w map[string]any) {
			r := ctx0(w)
			raw := []byte(`{"resourceType":"Observation","id":"` + r["id"].(string) + `","status":"amended"}`)
			setRaw(r, raw)
			r["sha256"] = Hash(raw)
		})},
		{"versionId changed", tamper(func(w map[string]any) { ctx0(w)["versionId"] = "9" })},
		{"id changed", tamper(func(w map[string]any) { ctx0(w)["id"] = "other" })},
		{"entry dropped", tamper(func(w map[string]any) { w["context"] = w["context"].([]any)[1:] })},
		{"entries reordered", tamper(func(w map[string]any) {
			c := w["context"].([]any)
			c[0], c[1] = c[1], c[0]
		})},
		{"hash changed", tamper(func(w map[string]any) { w["hash"] = strings.Repeat("0", 64) })},
		{"unknown version", tamper(func(w map[string]any) { w["v"] = 2 })},
		{"no trigger", tamper(func(w map[string]any) { delete(w, "trigger") })},
		{"unknown field", tamper(func(w map[string]any) { w["extra"] = 1 })},
		{"not json", []byte("{")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if _, err := UnmarshalSnapshot(tt.in); !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestSnapshotCommunicationsAndFilters(t *testing.T) {
	t.Parallel()
	st := NewStore()
	put := func(s string) {
		t.Helper()
		if _, err := st.Put([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	put(`{"resourceType":"Patient","id":"p1"}`)
	put(`{"resourceType":"Communication","id":"trigger","status":"completed","subject":{"reference":"Patient/p1"},"sender":{"reference":"Patient/p1"},"sent":"2026-01-10T00:00:00Z"}`)
	for i := range 25 {
		put(fmt.Sprintf(`{"resourceType":"Communication","id":"in%02d","status":"completed","sender":{"reference":"Patient/p1"},"sent":"2026-01-%02dT08:00:00Z"}`, i, i%9+1))
	}
	put(`{"resourceType":"Communication","id":"out1","status":"completed","subject":{"reference":"Patient/p1"},"sender":{"reference":"Practitioner/d"},"sent":"2026-01-09T09:00:00Z"}`)
	put(`{"resourceType":"Communication","id":"other","status":"completed","subject":{"reference":"Patient/p2"},"sent":"2026-01-09T09:00:00Z"}`)
	put(`{"resourceType":"Condition","id":"c-active","clinicalStatus":{"coding":[{"code":"active"}]},"subject":{"reference":"Patient/p1"}}`)
	put(`{"resourceType":"Condition","id":"c-missing","subject":{"reference":"Patient/p1"}}`)
	put(`{"resourceType":"Condition","id":"c-resolved","clinicalStatus":{"coding":[{"code":"resolved"}]},"subject":{"reference":"Patient/p1"}}`)
	put(`{"resourceType":"Condition","id":"c-error","verificationStatus":{"coding":[{"code":"entered-in-error"}]},"subject":{"reference":"Patient/p1"}}`)
	put(`{"resourceType":"MedicationRequest","id":"m-active","status":"active","subject":{"reference":"Patient/p1"}}`)
	put(`{"resourceType":"MedicationRequest","id":"m-stopped","status":"stopped","subject":{"reference":"Patient/p1"}}`)
	put(`{"resourceType":"AllergyIntolerance","id":"al","patient":{"reference":"Patient/p1"}}`)
	put(`{"resourceType":"Observation","id":"o-undated","status":"final","subject":{"reference":"Patient/p1"}}`)

	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	s := buildFor(t, paramBlind{st}, Ref{Type: "Communication", ID: "trigger"}, ContextOptions{Now: now})
	var ids []string
	comms := 0
	for _, r := range s.Context {
		if r.Type == "Communication" {
			comms++
			if r.ID == "other" || r.ID == "trigger" {
				t.Fatalf("context holds %s", r.ID)
			}
			continue
		}
		ids = append(ids, r.ID)
	}
	if comms != MaxPriorCommunications {
		t.Fatalf("communications = %d, want %d", comms, MaxPriorCommunications)
	}
	if _, ok := s.Lookup("Communication/out1"); !ok {
		t.Fatal("newest clinician message missing")
	}
	if got := strings.Join(ids, ","); got != "al,c-active,c-missing,m-active,o-undated" {
		t.Fatalf("context = %s", got)
	}
	w := buildFor(t, st, Ref{Type: "Communication", ID: "trigger"}, ContextOptions{Now: now, CommunicationWindow: 36 * time.Hour, ObservationWindow: time.Hour})
	if n := countType(w, "Communication"); n != 3 { // out1, in08, in17 (Jan 9)
		t.Fatalf("window kept %d communications", n)
	}
	if countType(w, "Observation") != 0 {
		t.Fatal("undated observation kept despite a window")
	}
	if _, ok := s.Lookup("Communication/trigger/_history/2"); ok {
		t.Fatal("Lookup accepted a wrong version")
	}
	if r, ok := s.Lookup("Patient/p1/_history/1"); !ok || r != s.Patient {
		t.Fatal("Lookup patient by version failed")
	}
}

func TestBuildSnapshotOptionsAndEdges(t *testing.T) {
	t.Parallel()
	st := NewStore()
	org, _ := st.Put([]byte(`{"resourceType":"Organization","id":"o"}`))
	pat, _ := st.Put([]byte(`{"resourceType":"Patient","id":"p"}`))
	ctx := context.Background()
	if _, err := BuildSnapshot(ctx, st, org, nil, ContextOptions{}); err == nil || !strings.Contains(err.Error(), "Now") {
		t.Fatalf("missing Now: %v", err)
	}
	s, err := BuildSnapshot(ctx, st, org, nil, ContextOptions{Now: snapNow})
	if err != nil || s.Patient != nil || len(s.Context) != 0 || len(s.Entries()) != 1 {
		t.Fatalf("no-patient snapshot: %v", err)
	}
	trig, patient, err := ReadTrigger(ctx, st, Ref{Type: "Patient", ID: "p"})
	if err != nil || trig != pat || patient != pat {
		t.Fatalf("patient trigger: %v", err)
	}
	ps, err := BuildSnapshot(ctx, st, trig, patient, ContextOptions{Now: snapNow})
	if err != nil || len(ps.Entries()) != 1 {
		t.Fatalf("patient trigger snapshot: %v", err)
	}
	b, _ := json.Marshal(ps)
	back, err := UnmarshalSnapshot(b)
	if err != nil || back.Hash != ps.Hash || back.Patient != back.Trigger {
		t.Fatalf("patient trigger round trip: %v", err)
	}
	if _, _, err := ReadTrigger(ctx, st, Ref{Type: "Observation", ID: "missing"}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing trigger: %v", err)
	}
	obs, _ := st.Put([]byte(`{"resourceType":"Observation","id":"x","subject":{"reference":"Patient/gone"}}`))
	if _, _, err := ReadTrigger(ctx, st, obs.Ref()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("missing patient: %v", err)
	}
}

func BenchmarkBuildSnapshot(b *testing.B) {
	st := setupFixtures(b)
	trigger := newestObservation(b, st)
	ctx := context.Background()
	trig, patient, err := ReadTrigger(ctx, st, trigger)
	if err != nil {
		b.Fatal(err)
	}
	opts := ContextOptions{Now: snapNow, ObservationWindow: 5 * 365 * 24 * time.Hour}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := BuildSnapshot(ctx, st, trig, patient, opts); err != nil {
			b.Fatal(err)
		}
	}
}
