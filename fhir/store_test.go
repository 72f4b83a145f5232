package fhir

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	fhirmodels "github.com/samply/golang-fhir-models/fhir-models/fhir"
)

func TestStoreLoadsAllSharedSynthea(t *testing.T) {
	t.Parallel()
	const dir = "../../shared/fixtures/synthea"
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared Synthea fixtures not present at %s (only on development machines): %v", dir, err)
	}
	s := NewStore()
	n, err := s.LoadFS(os.DirFS(dir), ".")
	if err != nil {
		t.Fatalf("LoadFS: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	want := 0
	for _, f := range files {
		b, _ := os.ReadFile(f)
		var bundle struct{ Entry []json.RawMessage }
		if err := json.Unmarshal(b, &bundle); err != nil {
			t.Fatal(err)
		}
		want += len(bundle.Entry)
	}
	if len(files) != 20 || n != want {
		t.Fatalf("loaded %d resources from %d files, want %d from 20", n, len(files), want)
	}
	// No urn:uuid reference survives when its target is in the bundle.
	obs, _ := s.Search(context.Background(), "Observation", nil)
	for _, o := range obs[:50] {
		if strings.Contains(string(o.Raw), "urn:uuid:") {
			t.Fatalf("Observation still holds a urn:uuid reference")
		}
	}
}

func TestStoreLoadBundleRewritesReferences(t *testing.T) {
	t.Parallel()
	s := setupFixtures(t)
	ctx := context.Background()
	obs, err := s.Search(ctx, "Observation", url.Values{"patient": {"Patient/" + alfreda}})
	if err != nil || len(obs) != 79 {
		t.Fatalf("Search = %d, %v; want 79", len(obs), err)
	}
	var o struct {
		Subject   struct{ Reference string } `json:"subject"`
		Encounter struct{ Reference string } `json:"encounter"`
		Meta      struct {
			VersionID   string `json:"versionId"`
			LastUpdated string `json:"lastUpdated"`
			Tag         []struct{ Code string }
		} `json:"meta"`
	}
	if err := json.Unmarshal(obs[0].Raw, &o); err != nil {
		t.Fatal(err)
	}
	if o.Subject.Reference != "Patient/"+alfreda || !strings.HasPrefix(o.Encounter.Reference, "Encounter/") {
		t.Fatalf("references not rewritten: %+v", o)
	}
	if o.Meta.VersionID != "1" || o.Meta.LastUpdated != "2026-01-02T03:04:05.000Z" || len(o.Meta.Tag) != 1 {
		t.Fatalf("meta = %+v", o.Meta)
	}
	// The typed models accept what the store serves.
	if _, err := fhirmodels.UnmarshalObservation(obs[0].Raw); err != nil {
		t.Fatalf("samply decode: %v", err)
	}
}

func TestStorePutVersions(t *testing.T) {
	t.Parallel()
	s := NewStore()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	s.SetClock(func() time.Time { return now })
	ctx := context.Background()
	r1, err := s.Put([]byte(`{"resourceType":"Observation","id":"o1","status":"preliminary","subject":{"reference":"Patient/p1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	now = now.Add(time.Hour)
	r2, err := s.Put([]byte(`{"resourceType":"Observation","id":"o1","meta":{"versionId":"77","source":"lab"},"status":"final","subject":{"reference":"Patient/p1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r1.VersionID != "1" || r2.VersionID != "2" || r2.LastUpdated != "2026-03-01T13:00:00.000Z" {
		t.Fatalf("versions %q %q, lastUpdated %q", r1.VersionID, r2.VersionID, r2.LastUpdated)
	}
	want := `{"resourceType":"Observation","id":"o1","meta":{"versionId":"2","lastUpdated":"2026-03-01T13:00:00.000Z","source":"lab"},"status":"final","subject":{"reference":"Patient/p1"}}`
	if string(r2.Raw) != want {
		t.Fatalf("Raw = %s\nwant  %s", r2.Raw, want)
	}
	if cur, _ := s.Read(ctx, "Observation", "o1"); cur != r2 {
		t.Fatal("Read does not return the newest version")
	}
	if v1, _ := s.VRead(ctx, "Observation", "o1", "1"); v1 != r1 {
		t.Fatal("VRead 1 does not return the first version")
	}
	for _, v := range []string{"0", "3", "01", "x"} {
		if _, err := s.VRead(ctx, "Observation", "o1", v); !errors.Is(err, ErrNotFound) {
			t.Fatalf("VRead %q: %v", v, err)
		}
	}
	if got, _ := s.Search(ctx, "Observation", url.Values{"status": {"preliminary"}}); len(got) != 0 {
		t.Fatal("search matched a superseded version")
	}
	for _, bad := range []string{`{"resourceType":"Observation"}`, `[]`, `{"id":"x"}`, `{"resourceType":"Observation","id":"a/b"}`, `{`} {
		if _, err := s.Put([]byte(bad)); !errors.Is(err, ErrInvalid) {
			t.Fatalf("Put(%s) = %v, want ErrInvalid", bad, err)
		}
	}
}

func TestStoreSearchParams(t *testing.T) {
	t.Parallel()
	s := NewStore()
	for _, r := range []string{
		`{"resourceType":"Communication","id":"c1","status":"completed","subject":{"reference":"Patient/p1"},"sender":{"reference":"Practitioner/d1"}}`,
		`{"resourceType":"Communication","id":"c2","status":"in-progress","sender":{"reference":"Patient/p1"}}`,
		`{"resourceType":"Communication","id":"c3","status":"completed","subject":{"reference":"Patient/p2"}}`,
		`{"resourceType":"AllergyIntolerance","id":"a1","patient":{"reference":"https://ehr.example/fhir/Patient/p1"}}`,
	} {
		if _, err := s.Put([]byte(r)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		typ    string
		params url.Values
		want   string
	}{
		{"Communication", url.Values{"subject": {"Patient/p1"}}, "c1"},
		{"Communication", url.Values{"subject": {"p1"}}, "c1"},
		{"Communication", url.Values{"sender": {"Patient/p1"}}, "c2"},
		{"Communication", url.Values{"patient": {"p1"}}, "c1"},
		{"Communication", url.Values{"status": {"completed"}}, "c1,c3"},
		{"Communication", url.Values{"status": {"completed,in-progress"}, "_id": {"c2,c3"}}, "c2,c3"},
		{"Communication", url.Values{"unknown": {"x"}, "_count": {"1"}}, "c1,c2,c3"},
		{"AllergyIntolerance", url.Values{"patient": {"Patient/p1"}}, "a1"},
		{"Condition", nil, ""},
	}
	for _, tt := range tests {
		got, err := s.Search(context.Background(), tt.typ, tt.params)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, r := range got {
			ids = append(ids, r.ID)
		}
		if strings.Join(ids, ",") != tt.want {
			t.Errorf("Search(%s, %v) = %v, want %s", tt.typ, tt.params, ids, tt.want)
		}
	}
}

func TestStoreLoadFSSingleResourceAndErrors(t *testing.T) {
	t.Parallel()
	fsys := fstest.MapFS{
		"d/a.json":   {Data: []byte(`{"resourceType":"Patient","id":"p9"}`)},
		"d/b.json":   {Data: []byte(`{"resourceType":"Bundle","type":"collection","entry":[{"fullUrl":"urn:uuid:0b6c1d0e-1111-2222-3333-444455556666","resource":{"resourceType":"Observation","subject":{"reference":"urn:uuid:p-unknown"}}}]}`)},
		"d/skip.txt": {Data: []byte(`nope`)},
	}
	s := NewStore()
	n, err := s.LoadFS(fsys, "d")
	if err != nil || n != 2 {
		t.Fatalf("LoadFS = %d, %v", n, err)
	}
	if _, err := s.Read(context.Background(), "Observation", "0b6c1d0e-1111-2222-3333-444455556666"); err != nil {
		t.Fatalf("id from fullUrl: %v", err)
	}
	for name, b := range map[string]string{
		"history bundle": `{"resourceType":"Bundle","type":"history","entry":[]}`,
		"not json":       `Alice Smith`,
		"no id":          `{"resourceType":"Bundle","type":"batch","entry":[{"resource":{"resourceType":"Patient"}}]}`,
	} {
		_, err := NewStore().LoadFS(fstest.MapFS{"x.json": {Data: []byte(b)}}, ".")
		if !errors.Is(err, ErrInvalid) || strings.Contains(err.Error(), "Alice") {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestHandler(t *testing.T) {
	t.Parallel()
	st := setupFixtures(t)
	srv := httptest.NewServer(fhirMux(NewHandler(st)))
	t.Cleanup(srv.Close)
	get := func(t *testing.T, path string) (int, []byte) {
		t.Helper()
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/fhir+json") {
			t.Fatalf("Content-Type = %q", ct)
		}
		return resp.StatusCode, b
	}
	tests := []struct {
		name, path string
		status     int
	}{
		{"read", "/fhir/Patient/" + alfreda, 200},
		{"vread", "/fhir/Patient/" + alfreda + "/_history/1", 200},
		{"vread missing", "/fhir/Patient/" + alfreda + "/_history/2", 404},
		{"read missing", "/fhir/Patient/nobody", 404},
		{"bad path", "/fhir/Patient/a/b", 404},
		{"bad count", "/fhir/Observation?_count=x", 400},
		{"metadata", "/fhir/metadata", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			code, body := get(t, tt.path)
			if code != tt.status {
				t.Fatalf("status = %d, want %d", code, tt.status)
			}
			if code >= 400 {
				oo, err := fhirmodels.UnmarshalOperationOutcome(body)
				if err != nil || len(oo.Issue) != 1 {
					t.Fatalf("not an OperationOutcome: %v", err)
				}
			}
		})
	}
	t.Run("searchset paging", func(t *testing.T) {
		t.Parallel()
		code, body := get(t, "/fhir/Observation?patient="+alfreda+"&_count=30")
		if code != 200 {
			t.Fatalf("status %d", code)
		}
		b, err := fhirmodels.UnmarshalBundle(body)
		if err != nil {
			t.Fatalf("samply decode: %v", err)
		}
		if *b.Total != 79 || len(b.Entry) != 30 || len(b.Link) != 2 || b.Link[1].Relation != "next" {
			t.Fatalf("total %d, entries %d, links %+v", *b.Total, len(b.Entry), b.Link)
		}
		if !strings.HasPrefix(b.Link[1].Url, srv.URL+"/fhir/Observation?") || !strings.Contains(b.Link[1].Url, PageOffsetParam+"=30") {
			t.Fatalf("next = %s", b.Link[1].Url)
		}
		if !strings.HasPrefix(*b.Entry[0].FullUrl, srv.URL+"/fhir/Observation/") {
			t.Fatalf("fullUrl = %s", *b.Entry[0].FullUrl)
		}
	})
	t.Run("method not allowed", func(t *testing.T) {
		t.Parallel()
		resp, err := http.Post(srv.URL+"/fhir/Patient", "application/fhir+json", strings.NewReader(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 405 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})
}

func TestRewriteStrings(t *testing.T) {
	t.Parallel()
	m := map[string]string{"urn:uuid:a": "Patient/a"}
	tests := []struct{ in, want string }{
		{`{"r":"urn:uuid:a"}`, `{"r":"Patient/a"}`},
		{`{"r":"urn:uuid:ab","s":["urn:uuid:a"]}`, `{"r":"urn:uuid:ab","s":["Patient/a"]}`},
		{`{"r":"x\"urn:uuid:a\""}`, `{"r":"x\"urn:uuid:a\""}`},
		{`{"urn:uuid:a":1}`, `{"Patient/a":1}`},
	}
	for _, tt := range tests {
		if got := string(rewriteStrings([]byte(tt.in), m)); got != tt.want {
			t.Errorf("rewrite(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}
